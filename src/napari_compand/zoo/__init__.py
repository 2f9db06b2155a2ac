"""Models available for restoration.

For now this holds the models trained during this Python session (e.g. from the
napari Train widget), so restore tools can offer them without a restart; the
shipped pretrained checkpoints join this registry with the restoration release.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["on_session_model_added", "register_session_model", "session_models"]

_SESSION: list[Path] = []
_LISTENERS: list[Callable[[Path], None]] = []


def register_session_model(path: str | Path) -> None:
    """Make a checkpoint trained in this session available to restore tools."""
    path = Path(path).resolve()
    if path not in _SESSION:
        _SESSION.append(path)
        for listener in list(_LISTENERS):
            listener(path)


def session_models() -> list[Path]:
    """Checkpoints registered in this session, oldest first."""
    return list(_SESSION)


def on_session_model_added(callback: Callable[[Path], None]) -> None:
    """Call ``callback(path)`` whenever a model is registered."""
    _LISTENERS.append(callback)
