"""Training the restoration networks (Qt-free): config, data, engine, checkpoints."""

from .checkpoints import (
    Checkpoint,
    CheckpointError,
    export_weights,
    load_checkpoint,
    save_checkpoint,
)
from .config import Device, LrSchedule, Task, TrainingConfig
from .data import TrainingImages
from .engine import Progress, StateChange, Trainer, TrainingQueue, TrainingUpdate, Validation

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Device",
    "LrSchedule",
    "Progress",
    "StateChange",
    "Task",
    "Trainer",
    "TrainingConfig",
    "TrainingImages",
    "TrainingQueue",
    "TrainingUpdate",
    "Validation",
    "export_weights",
    "load_checkpoint",
    "save_checkpoint",
]
