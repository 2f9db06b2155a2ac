"""Restore widget: expand bit depth or inverse-halftone an image layer with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    PushButton,
    SpinBox,
)
from napari.qt.threading import GeneratorWorker

from .. import zoo
from .._device import available_devices
from ..checkpoints import CheckpointError
from ..inference import least_tile_size
from ..vocabulary import Task
from ._common import WidgetActions, image_layer_choices, status_label
from ._restoration import (
    degradation_note,
    layer_degradation,
    model_choices,
    start_restoration,
    task_of,
)

if TYPE_CHECKING:
    import napari

    from ..degrade import Degradation

__all__ = ["RestoreWidget"]

_FROM_FILE = "checkpoint file..."


class RestoreWidget(WidgetActions, Container):
    """Pick an image layer, task and model; adds ``<name> [<task> <model>]``.

    The task (and bit depth) is preselected from the layer's degradation
    metadata when the layer was made by the Degrade widget or a sample. Models
    are the shipped ones for the task, those trained in this session, or a
    checkpoint file. Inference runs in a thread worker with progress and cancel.
    """

    TITLE = "Restore"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._image = ComboBox(label="image", choices=lambda _: image_layer_choices(viewer))
        self._task = ComboBox(label="task", choices=[(task.label, task.value) for task in Task])
        self._bits = SpinBox(label="input bits", min=1, max=7, value=3)
        self._model = ComboBox(label="model", choices=self._model_choices)
        self._file = FileEdit(label="checkpoint", filter="*.safetensors", mode="r")
        self._consistent = CheckBox(
            text="keep in quantization bin",
            value=False,
            tooltip="clamp each pixel into the Eq. 2 bin of its low-bit input, so the "
            "result re-quantizes to the input (never lowers PSNR)",
        )
        self._ensemble = ComboBox(
            label="views",
            choices=[
                ("2: the image and a turned or shifted copy", 2),
                ("1: fastest", 1),
                ("8 (4x the time of 2)", 8),
            ],
            value=2,
            tooltip="self-ensemble: the restorations of several copies of the image are "
            "averaged (expansion: turned and mirrored copies; inverse halftoning: copies "
            "shifted by a pixel or a few, as error diffusion has a direction); N views take "
            "N times the time. 2 gave +0.07 to +0.16 dB over 1 on Set5 + Set14 at 1-4 bits "
            "and +0.04 to +0.06 dB on halftones; 8 up to another +0.05",
        )
        self._device = ComboBox(label="device", choices=["auto", *available_devices()])
        self._tile = SpinBox(
            label="tile size",
            min=64,
            max=8192,
            step=64,
            value=1024,
            tooltip="large images are restored tile by tile; the smallest size is the "
            "model's seam-free minimum",
        )
        self._run_button = PushButton(text="Restore")
        self._status = status_label()
        super().__init__(
            widgets=[
                self._image,
                self._task,
                self._bits,
                self._model,
                self._file,
                self._consistent,
                self._ensemble,
                self._device,
                self._tile,
                self._run_button,
                self._status,
            ]
        )
        self.worker: GeneratorWorker | None = None
        #: The selected layer's degradation, detected once per selection (not per task change)
        self._layer_spec: Degradation | None = None
        self._image.changed.connect(self._follow_layer)
        self._task.changed.connect(self._refresh_models)
        self._bits.changed.connect(self._refresh_models)
        self._model.changed.connect(self._sync_controls)
        self._file.changed.connect(self._sync_controls)
        self._run_button.clicked.connect(self.run)
        disconnect = zoo.on_session_model_added(lambda _path: self._refresh_models())
        self.native.destroyed.connect(disconnect)
        self._follow_layer()

    def _model_choices(self, _widget=None) -> list[tuple[str, str]]:
        choices = model_choices(self._task.value, self._bits.value)
        session = [c for c in model_choices() if c[1].startswith("session/")]
        return choices + [c for c in session if c not in choices] + [(_FROM_FILE, _FROM_FILE)]

    def selected_model(self) -> str:
        """Zoo name or checkpoint path of the chosen model."""
        if self._model.value == _FROM_FILE:
            return str(self._file.value)
        return self._model.value

    def run(self) -> GeneratorWorker | None:
        """Restore the chosen layer in a thread worker; returns the started worker."""
        source = self._image.value
        if source is None:
            self._fail("add or open an image layer first")
            return None
        model = self.selected_model()
        if self._model.value == _FROM_FILE and not Path(model).is_file():
            self._fail(f"choose a checkpoint file (got {model!r})")
            return None
        try:
            worker = start_restoration(
                self._viewer,
                source,
                model,
                on_error=self._fail,
                on_done=lambda layer: setattr(self._status, "value", f"added {layer.name!r}"),
                on_finished=self._set_idle,
                device=self._device.value,
                tile_size=self._tile.value,
                consistent=self._task.value == Task.EXPAND and self._consistent.value,
                self_ensemble=self._ensemble.value,
            )
        except (FileNotFoundError, CheckpointError, TypeError, ValueError, RuntimeError) as err:
            self._fail(str(err))
            return None
        self._run_button.enabled = False
        self._status.value = f"restoring {source.name!r}..."
        self.worker = worker
        return worker

    def _follow_layer(self, *_: object) -> None:
        layer = self._image.value
        self._layer_spec = layer_degradation(layer) if layer is not None else None
        guess = task_of(self._layer_spec)
        if guess is not None:
            task, bits = guess
            self._task.value = task.value
            if bits is not None:
                self._bits.value = bits
        self._refresh_models()
        self._status.value = degradation_note(layer, self._layer_spec)  # why these choices

    def _refresh_models(self, *_: object) -> None:
        self._model.reset_choices()
        try:
            halftoned = self._image.value is not None and self._task.value == Task.INVERSE_HALFTONE
            halftone = self._layer_spec if halftoned else None  # its method matters
            best = zoo.default_model(self._task.value, self._bits.value, halftone)
        except KeyError:
            best = None
        if best in self._model.choices:
            self._model.value = best
        self._sync_controls()

    def _sync_controls(self, *_: object) -> None:
        expand = self._task.value == Task.EXPAND
        self._bits.visible = expand
        self._consistent.visible = expand
        self._file.visible = self._model.value == _FROM_FILE
        self._follow_tile_minimum()

    def _follow_tile_minimum(self) -> None:
        """Let the tile size go no lower than the chosen model's seam-free minimum."""
        try:
            least = least_tile_size(self.selected_model())  # loads (and caches) the model
        except (FileNotFoundError, CheckpointError, TypeError, ValueError):
            return  # no file chosen yet, or a bad one: said when Restore is pressed
        self._tile.min = least
        self._tile.tooltip = (
            f"large images are restored tile by tile; {least} px is the smallest tile "
            "this model restores without seams"
        )
