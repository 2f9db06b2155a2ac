"""Helpers shared by the widgets: layer choices, input arrays, derived layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Label
from napari.layers import Image
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error
from napari.utils.progress import cancelable_progress
from qtpy.QtWidgets import QSizePolicy

from .._validation import dtype_max
from ..degrade import METADATA_KEY

if TYPE_CHECKING:
    import napari

__all__ = [
    "WidgetActions",
    "add_or_replace",
    "derived_layer",
    "image_layer_choices",
    "layer_data",
    "reference_layer_choices",
    "start_job",
    "status_label",
    "track_progress",
]

# running workers, kept referenced until they finish (a command has no widget to hold them)
_RUNNING: set[GeneratorWorker] = set()


def image_layer_choices(viewer: napari.viewer.Viewer) -> list[tuple[str, Image]]:
    """``(name, layer)`` choices of the viewer's image layers, top layer first."""
    return [(layer.name, layer) for layer in reversed(viewer.layers) if isinstance(layer, Image)]


class WidgetActions:
    """What every action widget shares (mixed into a magicgui ``Container``).

    An error goes to the widget's status line (``self._status``) and to napari's
    notifications, prefixed with :attr:`TITLE`; the run button
    (``self._run_button``) is enabled again when the widget's worker ends.
    """

    TITLE = ""

    def _set_idle(self) -> None:
        self._run_button.enabled = True

    def _fail(self, message: str) -> None:
        self._status.value = f"error: {message}"
        show_error(f"{self.TITLE}: {message}")


def status_label() -> Label:
    """A status line that wraps long messages instead of widening the dock.

    Its width follows the dock (horizontal size policy ``Ignored``), so a long
    error message grows the label's height, never the dock's width.
    """
    label = Label(value="")
    label.native.setWordWrap(True)
    policy = label.native.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.native.setSizePolicy(policy)
    return label


def reference_layer_choices(viewer: napari.viewer.Viewer) -> list[tuple[str, Image]]:
    """Image layer choices for a clean reference: layers this plugin did not make
    (no degradation or restoration record in their metadata) first, top first."""
    choices = image_layer_choices(viewer)
    return sorted(choices, key=lambda choice: METADATA_KEY in choice[1].metadata)


def layer_data(layer: Image) -> Any:
    """The layer's full-resolution data, not yet materialised.

    numpy-backed layers give their array; lazy (dask, zarr) data is returned as
    is so that thread workers, not the GUI thread, load it. Callers never write
    into it.

    Raises
    ------
    ValueError
        For multiscale (pyramid) layers, which would need every level redone.
    """
    if layer.multiscale:
        raise ValueError(
            f"layer {layer.name!r} is multiscale; open its full-resolution level as a "
            "plain image layer first"
        )
    return layer.data


#: Public Image attributes a derived layer copies from its source (geometry and look).
_KEPT_ATTRIBUTES = (
    "affine",
    "attenuation",
    "axis_labels",
    "blending",
    "colormap",
    "custom_interpolation_kernel_2d",
    "depiction",
    "experimental_clipping_planes",
    "gamma",
    "interpolation2d",
    "interpolation3d",
    "iso_threshold",
    "opacity",
    "plane",
    "projection_mode",
    "rendering",
    "rgb",
    "rotate",
    "scale",
    "shear",
    "translate",
    "units",
)


def derived_layer(source: Image, data: np.ndarray, name: str, metadata: dict[str, Any]) -> Image:
    """A new image layer of ``data`` that keeps ``source``'s geometry and look.

    Scale, translate, rotation, rgb flag, colormap, blending, axis labels and the
    like come from the source; ``name`` and extra ``metadata`` are new, and the
    contrast limits span the full range of ``data``'s dtype.
    """
    state = {key: getattr(source, key) for key in _KEPT_ATTRIBUTES if hasattr(source, key)}
    state["name"] = name
    state["metadata"] = {**source.metadata, **metadata}
    state["contrast_limits"] = (0.0, dtype_max(data.dtype))
    return Image(data, **state)


def add_or_replace(viewer: napari.viewer.Viewer, layer: Image) -> Image:
    """Add ``layer``, or put its data into the earlier result it repeats.

    An earlier result is replaced when a layer of the same name was made by this
    plugin from the same source with the same record (same degradation, or same
    model and task). A result the user renamed has another name and stays, as do
    layers of the same name that the plugin did not make. Returns the layer now
    in the viewer.
    """
    record = layer.metadata.get(METADATA_KEY)
    if layer.name in viewer.layers:
        earlier = viewer.layers[layer.name]
        if isinstance(earlier, Image) and earlier.metadata.get(METADATA_KEY) == record:
            earlier.data = layer.data
            return earlier
    return viewer.add_layer(layer)


def track_progress(worker: GeneratorWorker, total: int, desc: str) -> cancelable_progress:
    """A progress bar in napari's activity dock, one step per value the worker yields.

    Its *Cancel* button quits the worker at its next yield (between planes or
    tiles). Connect before ``worker.start()``.
    """
    bar = cancelable_progress(total=total, desc=desc)

    def step(_: object) -> None:
        if bar.is_canceled:
            worker.quit()
        else:
            bar.update(1)

    worker.yielded.connect(step)
    worker.finished.connect(bar.close)
    return bar


def start_job(
    job: Callable,
    *args: Any,
    total: int,
    desc: str,
    on_result: Callable[[Any], None],
    on_error: Callable[[str], None],
    on_finished: Callable[[], None] | None = None,
) -> GeneratorWorker:
    """Run generator ``job(*args)`` in a napari thread worker with a cancelable progress bar.

    ``on_result`` gets the job's return value, ``on_error`` the message of an
    exception it raised; ``on_finished`` runs in every case (also after a cancel).
    """
    worker = create_worker(job, *args, _ignore_errors=True)  # errors go to on_error
    worker.progress_bar = track_progress(worker, total, desc)
    worker.returned.connect(on_result)
    worker.errored.connect(lambda err: on_error(str(err)))
    _RUNNING.add(worker)
    worker.finished.connect(lambda: _RUNNING.discard(worker))
    if on_finished is not None:
        worker.finished.connect(on_finished)
    worker.start()
    return worker
