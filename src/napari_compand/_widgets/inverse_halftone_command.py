"""The "Inverse halftone" command (Layers > Filter, and the layer list's context menu)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari.layers import Image
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import show_error, show_info

from .. import zoo
from ..checkpoints import CheckpointError
from ..vocabulary import Task
from ._restoration import layer_degradation, start_restoration

if TYPE_CHECKING:
    import napari

__all__ = ["inverse_halftone"]


def inverse_halftone(viewer: napari.viewer.Viewer) -> GeneratorWorker | None:
    """Restore the selected image layer with the default inverse-halftoning model.

    Adds ``<name> [inverse halftone <model>]`` when done; progress shows in
    napari's activity dock, where the run can also be cancelled.
    """
    layer = viewer.layers.selection.active
    if not isinstance(layer, Image):
        show_error("Inverse halftone: select an image layer first")
        return None

    def fail(message: str) -> None:
        show_error(f"Inverse halftone: {message}")

    try:
        return start_restoration(
            viewer,
            layer,
            zoo.default_model(Task.INVERSE_HALFTONE, halftone=layer_degradation(layer)),
            on_error=fail,
            on_done=lambda new: show_info(f"Inverse halftone: added {new.name!r}"),
        )
    except (KeyError, FileNotFoundError, CheckpointError, TypeError, ValueError) as err:
        fail(str(err))
        return None
