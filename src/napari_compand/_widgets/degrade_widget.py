"""Degrade widget: quantize (Eq. 2) or halftone an image layer into a new layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, SpinBox
from napari.qt.threading import GeneratorWorker
from numpy.typing import ArrayLike

from .._validation import guess_rgb, plane_indices
from ..degrade import Degradation, DegradationMode, max_bits
from ..vocabulary import DIFFUSION_METHODS, HALFTONE_METHODS
from ._common import (
    WidgetActions,
    add_or_replace,
    derived_layer,
    image_layer_choices,
    layer_data,
    start_job,
    status_label,
)

if TYPE_CHECKING:
    import napari

__all__ = ["DegradeWidget"]


def _degrade_job(data: ArrayLike, spec: Degradation, rgb: bool):
    """Worker body: loads and checks the data, yields per finished plane, returns the result."""
    result = yield from spec.steps(data, rgb=rgb)
    return result


class DegradeWidget(WidgetActions, Container):
    """Pick an image layer and a degradation; adds ``<name> [<degradation>]``.

    The new layer keeps the source's scale, translate and rgb flag and records
    the degradation in ``layer.metadata["napari_compand"]``. The work runs in a
    napari thread worker with a progress bar (one step per 2D plane); the input
    layer is never modified.
    """

    TITLE = "Degrade"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._image = ComboBox(label="image", choices=lambda _: image_layer_choices(viewer))
        self._mode = ComboBox(label="mode", choices=[m.value for m in DegradationMode])
        self._bits = SpinBox(label="bits", min=1, max=7, value=3)
        self._method = ComboBox(label="method", choices=HALFTONE_METHODS, value="floyd-steinberg")
        self._serpentine = CheckBox(text="serpentine scan")
        self._run_button = PushButton(text="Degrade")
        self._status = status_label()
        super().__init__(
            widgets=[
                self._image,
                self._mode,
                self._bits,
                self._method,
                self._serpentine,
                self._run_button,
                self._status,
            ]
        )
        self.worker: GeneratorWorker | None = None
        for control in (self._image, self._mode, self._method):
            control.changed.connect(self._sync_controls)
        self._run_button.clicked.connect(self.run)
        self._sync_controls()

    def spec(self) -> Degradation:
        """The degradation the controls describe."""
        return Degradation(
            mode=self._mode.value,
            bits=self._bits.value,
            method=self._method.value,
            serpentine=self._serpentine.value,
        )

    def run(self) -> GeneratorWorker | None:
        """Degrade the chosen layer in a thread worker; returns the started worker."""
        source = self._image.value
        if source is None:
            self._fail("add or open an image layer first")
            return None
        try:
            spec = self.spec()
            data = layer_data(source)
            rgb = guess_rgb(data, source.rgb)
            if isinstance(data, np.ndarray):  # instant checks; lazy data is checked in the worker
                spec.steps(data, rgb=rgb).close()
        except (TypeError, ValueError) as err:
            self._fail(str(err))
            return None
        name = f"{source.name} [{spec.label}]"
        metadata = spec.layer_metadata(source.name)

        def add_result(result: np.ndarray) -> None:
            add_or_replace(self._viewer, derived_layer(source, result, name, metadata))
            self._status.value = f"added {name!r}"

        total = len(plane_indices(data.shape, rgb))
        self._run_button.enabled = False
        self._status.value = f"degrading {source.name!r}..."
        self.worker = start_job(
            _degrade_job,
            data,
            spec,
            rgb,
            total=total,
            desc=f"Degrade {name}",
            on_result=add_result,
            on_error=self._fail,
            on_finished=self._set_idle,
        )
        return self.worker

    def _sync_controls(self, *_: object) -> None:
        quantizing = self._mode.value == DegradationMode.QUANTIZE.value
        self._bits.visible = quantizing
        self._method.visible = not quantizing
        # a scan order exists for the row-by-row kernels only
        self._serpentine.visible = not quantizing and self._method.value in DIFFUSION_METHODS
        layer = self._image.value
        if layer is not None and not layer.multiscale:
            self._bits.max = max_bits(layer.data.dtype)
