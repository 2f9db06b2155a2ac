"""Compare models widget: one layer through several models, stacked along a 'model' axis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton, Select
from napari.layers import Image
from napari.qt.threading import GeneratorWorker

from .._validation import dtype_max, guess_rgb
from ..checkpoints import CheckpointError
from ..degrade import METADATA_KEY
from ..inference import load_model, restore_steps, tile_count
from ..metrics import psnr, ssim
from ..vocabulary import Task
from ._common import WidgetActions, image_layer_choices, layer_data, start_job, status_label
from ._restoration import guess_task, model_choices, output_label

if TYPE_CHECKING:
    import napari

__all__ = ["CompareWidget", "stacked_layer"]

_NO_REFERENCE = "none"


def _compare_job(data, models, rgb, reference):
    """Restore ``data`` with each model; returns ``(stack, scores or None)``."""
    data = np.asarray(data)  # lazy (dask, zarr) layers are read once, not once per model
    outputs = []
    for model in models:
        outputs.append((yield from restore_steps(data, model, rgb=rgb)))
    scores = None
    if reference is not None:
        reference = np.asarray(reference)
        if reference.shape != np.shape(data):
            raise ValueError(
                f"the reference layer's shape {reference.shape} differs from the image's "
                f"{np.shape(data)}"
            )
        data_range = dtype_max(outputs[0].dtype)
        scores = [
            (
                psnr(reference, out, data_range=data_range, rgb=rgb),
                ssim(reference, out, data_range=data_range, rgb=rgb),
            )
            for out in outputs
        ]
    return np.stack(outputs), scores


def stacked_layer(source: Image, stack: np.ndarray, names: list[str]) -> Image:
    """A layer of ``stack`` (model, ...source axes) keeping the source's scale and translate."""
    axis_labels = ("model", *source.axis_labels)
    return Image(
        stack,
        name=f"{source.name} [compare {' | '.join(names)}]",
        rgb=source.rgb,
        scale=(1.0, *source.scale),
        translate=(0.0, *source.translate),
        axis_labels=axis_labels,
        colormap=source.colormap.name if not source.rgb else None,
        contrast_limits=(0.0, dtype_max(stack.dtype)),
        metadata={METADATA_KEY: {"comparison": {"models": names}, "source": source.name}},
    )


class CompareWidget(WidgetActions, Container):
    """Restore one image layer with several models and stack the results.

    The new layer has a leading ``model`` axis (one plane per model, in the
    order listed in its name and metadata), so napari's slider flips between
    them. With a reference layer (the clean image), PSNR and SSIM of each
    model are shown.
    """

    TITLE = "Compare models"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._image = ComboBox(label="image", choices=lambda _: image_layer_choices(viewer))
        self._preferred: list[str] = []
        self._models = Select(label="models", choices=self._model_choices)
        self._reference = ComboBox(
            label="reference",
            choices=lambda _: [(_NO_REFERENCE, _NO_REFERENCE), *image_layer_choices(viewer)],
        )
        self._run_button = PushButton(text="Compare")
        self._status = status_label()
        super().__init__(
            widgets=[self._image, self._models, self._reference, self._run_button, self._status]
        )
        self.worker: GeneratorWorker | None = None
        self.scores: list[tuple[str, float, float]] = []
        self.result: Image | None = None
        self._labels: list[str] = []
        self._image.changed.connect(self._default_models)
        self._run_button.clicked.connect(self.run)
        viewer.dims.events.current_step.connect(self._show_current_model)
        viewer.layers.events.removed.connect(self._show_current_model)
        self._default_models()

    def _model_choices(self, _: object = None) -> list[tuple[str, str]]:
        """All models; the preselected ones and the rest of their task first, so they are
        visible without scrolling."""
        choices = model_choices()
        rank = {name: i for i, name in enumerate(self._preferred)}
        return sorted(choices, key=lambda choice: rank.get(choice[1], len(rank)))

    def _default_models(self, *_: object) -> None:
        """conv1_1 and conv5_1 of the image's task (metadata, else its pixels; inverse
        halftone if unknown), listed first with the rest of that task."""
        task, bits = guess_task(self._image.value) or (Task.INVERSE_HALFTONE, None)
        names = [name for _, name in model_choices(task, bits)]
        wanted = [n for n in names if n.endswith(("/conv1_1", "/conv5_1"))] or names[:2]
        self._preferred = wanted + [n for n in names if n not in wanted]
        self._models.choices = ()  # refilled in the new order (a refresh only adds at the end)
        self._models.choices = self._model_choices
        self._models.value = wanted

    def current_model(self) -> str | None:
        """The label of the model whose plane the viewer shows now (``None``: no result)."""
        layer = self.result
        if layer is None or layer not in self._viewer.layers or not self._labels:
            return None
        axis = self._viewer.dims.ndim - layer.ndim  # the layer's leading 'model' axis
        index = int(self._viewer.dims.current_step[axis])
        return self._labels[min(max(index, 0), len(self._labels) - 1)]

    def _show_current_model(self, *_: object) -> None:
        """Name the current plane's model (and its scores) in the viewer's text overlay."""
        overlay = self._viewer.canvas.overlays.text
        label = self.current_model()
        if label is None:
            if self._labels:  # our comparison was removed: clear what we showed
                overlay.visible = False
                self._labels = []
            return
        text = f"model: {label}"
        scores = {name: (p, s) for name, p, s in self.scores}
        if label in scores:
            p, s = scores[label]
            text += f"   PSNR {p:.2f} dB   SSIM {s:.4f}"
        overlay.text = text
        overlay.visible = True

    def run(self) -> GeneratorWorker | None:
        """Start the comparison in a thread worker; returns the worker."""
        source = self._image.value
        names = list(self._models.value)
        reference = self._reference.value
        if source is None:
            return self._fail("add or open an image layer first")
        if not names:
            return self._fail("select at least one model")
        try:
            models = [load_model(name) for name in names]
            data = layer_data(source)
            rgb = guess_rgb(data, source.rgb)
            total = sum(tile_count(data.shape, m, rgb=rgb) for m in models)
            ref_data = None if reference in (None, _NO_REFERENCE) else layer_data(reference)
        except (FileNotFoundError, CheckpointError, TypeError, ValueError) as err:
            return self._fail(str(err))
        labels = [output_label(m) for m in models]

        def add_result(result: tuple[np.ndarray, Any]) -> None:
            stack, scores = result
            self.result = self._viewer.add_layer(stacked_layer(source, stack, labels))
            self._labels = labels
            if scores is None:
                self.scores = []
                self._status.value = "planes: " + ", ".join(
                    f"{i}: {label}" for i, label in enumerate(labels)
                )
            else:
                self.scores = [(label, p, s) for label, (p, s) in zip(labels, scores, strict=True)]
                self._status.value = "\n".join(
                    f"{i}: {label}  PSNR {p:.2f} dB  SSIM {s:.4f}"
                    for i, (label, p, s) in enumerate(self.scores)
                )
            self._viewer.dims.set_current_step(self._viewer.dims.ndim - self.result.ndim, 0)
            self._show_current_model()

        self._run_button.enabled = False
        self._status.value = f"restoring {source.name!r} with {len(models)} models..."
        self.worker = start_job(
            _compare_job,
            data,
            models,
            rgb,
            ref_data,
            total=total,
            desc=f"Compare models on {source.name}",
            on_result=add_result,
            on_error=self._fail,
            on_finished=self._set_idle,
        )
        return self.worker
