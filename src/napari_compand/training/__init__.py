"""Training the restoration networks (Qt-free): config, data, engine.

The checkpoint file format is core: :mod:`napari_compand.checkpoints`.
"""

from .config import Device, LrSchedule, Task, TrainingConfig
from .data import TrainingImages
from .engine import Progress, StateChange, Trainer, TrainingQueue, TrainingUpdate, Validation

__all__ = [
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
]
