"""Training the restoration networks (Qt-free): config, data, engine.

The checkpoint file format is core: :mod:`napari_compand.checkpoints`; the task,
device and schedule names live in :mod:`napari_compand.vocabulary`. The names
below are loaded on first use, so importing the package (as the command line
does to build its parser) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: public name -> the submodule that defines it
_HOMES = {
    "TrainingConfig": "config",
    "TrainingImages": "data",
    "SCALE_COPIES": "data",
    "Progress": "engine",
    "StateChange": "engine",
    "Trainer": "engine",
    "TrainingQueue": "engine",
    "TrainingUpdate": "engine",
    "Validation": "engine",
    "best_path": "engine",
    "Device": "..vocabulary",
    "LrSchedule": "..vocabulary",
    "Task": "..vocabulary",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _HOMES[name]
    module = import_module(home if home.startswith("..") else f".{home}", __name__)
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
