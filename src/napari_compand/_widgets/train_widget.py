"""Train widget: train one model per chosen loss layer in a napari thread worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_info

from .._device import available_devices
from .._io import check_output, collect_images, read_image, unused_path
from ..checkpoints import export_weights, read_metadata
from ..models import RESUNET_SIZES, ModelConfig
from ..training import (
    SCALE_COPIES,
    Progress,
    StateChange,
    TrainingConfig,
    TrainingImages,
    TrainingQueue,
    best_path,
)
from ..vocabulary import (
    HALFTONE_METHODS,
    HALFTONE_SET_NAMES,
    HALFTONE_SETS_IN_WORDS,
    LIMITS,
    MIXED_HALFTONES,
    Arch,
    LossLayer,
    LrSchedule,
    Task,
)
from ..zoo import register_session_model
from ._common import WidgetActions, image_layer_choices, layer_data, status_label
from ._loss_plot import LossPlot

if TYPE_CHECKING:
    import napari

__all__ = ["TrainWidget", "output_paths", "resumable_path"]

SOURCE_LAYERS = "image layers"
SOURCE_FOLDER = "folder"
#: The loss choice that trains with a pixel loss only (PSNR-oriented, no VGG19).
PIXEL_LOSS = "pixel"


#: Largest noise standard deviation (8-bit levels) of the "noisy crops" option.
NOISE_SIGMA = 10.0
#: Share of the noisy colour crops whose noise is one field for all channels (camera-like);
#: the rest get independent noise per channel (micrograph-like). The zoo's recipe.
NOISE_SHARED = 0.5
#: What the output check box is called (named in the error about an existing file).
REPLACE_TEXT = "replace existing files"


def output_paths(out: Path, layers: list[str]) -> list[Path]:
    """One checkpoint per loss layer: ``out`` itself, or ``<stem>_<layer><suffix>``.

    A name without a suffix gets ``.safetensors``; another suffix is refused
    (``ValueError``), so a checkpoint never lands in, say, ``photo.png``.
    """
    out = out if out.suffix else out.with_suffix(".safetensors")
    if out.suffix.lower() != ".safetensors":
        raise ValueError(f"the output must be a .safetensors file, got {out.name}")
    if len(layers) == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{layer}{out.suffix}") for layer in layers]


def _range(name: str) -> dict[str, int]:
    """A spin box's ``min``/``max`` from the settings' one source of bounds."""
    low, high = LIMITS[name]
    return {"min": int(low), "max": int(high)}


def _layer_images(layers: list) -> list[np.ndarray]:
    """2D grey or RGB images from layers; stacks are split into their planes."""
    images = []
    for layer in layers:
        data = np.asarray(layer_data(layer))
        spatial = 3 if layer.rgb else 2
        images.extend(data.reshape((-1,) + data.shape[data.ndim - spatial :]))
    return images


def resumable_path(out: Path) -> Path:
    """Where the run's resumable state (weights + Adam's moments) is kept next to ``out``:
    ``model.safetensors`` -> ``model.resume.safetensors``."""
    return out.with_name(f"{out.stem}.resume{out.suffix}")


def companions(out: Path, validated: bool = False) -> tuple[Path, ...]:
    """The files a run into ``out`` writes beside it: its :func:`resumable_path` and, with
    held-out images (``validated``), the weights of its best validation
    (:func:`~napari_compand.training.best_path`: ``model-best.safetensors``) and the
    full-precision copy the run keeps while it trains."""
    files = (resumable_path(out),)
    if validated:
        files += (best_path(out), best_path(resumable_path(out)))
    return files


def check_outputs(outputs: list[Path], replace: bool, validated: bool = False) -> None:
    """Before training: every checkpoint and its :func:`companions` are new files in a
    writable folder, unless ``replace`` (:class:`~napari_compand._io.OutputError`)."""
    for out in outputs:
        for path in (out, *companions(out, validated)):
            check_output(path, overwrite=replace, how_to_replace=f"tick '{REPLACE_TEXT}'")


def _unused_output(out: Path) -> Path:
    """``out``, or the first ``<stem>_N.safetensors`` whose files do not exist yet."""
    return unused_path(out, lambda p: companions(p, validated=True))


def held_out_split(images: list, held_out: int, what: str = "images") -> tuple[list, list]:
    """``(training, validation)``: the last ``held_out`` of ``images`` are kept for validation.

    Raises
    ------
    ValueError
        If fewer than one image would be left to train on.
    """
    if held_out < 0:
        raise ValueError(f"held-out images must be 0 or more, got {held_out}")
    if held_out and held_out >= len(images):
        raise ValueError(
            f"{held_out} held-out images leave none of the {len(images)} {what} to train on; "
            "hold out fewer"
        )
    cut = len(images) - held_out
    return images[:cut], images[cut:]


def _train_job(queue_holder: list, make_queue, weights: list[Path]):
    """Worker body: builds the data (off the GUI thread), then trains the queue.

    Each run trains into its :func:`resumable_path`; when it finishes or stops, its
    weights are exported (fp16, without optimizer state) to ``weights[index]``, the
    light file that Restore and Compare load, and the update names that file. With
    held-out images, the weights of the best validation are exported the same way to
    :func:`~napari_compand.training.best_path` of ``weights[index]``; the one ``best``
    update, after the last, names that file (the run's own ``best`` updates name a
    full-precision copy that is removed here, so they are not passed on).
    """
    queue = make_queue()
    queue_holder.append(queue)
    for index, update in queue.run():
        saved = isinstance(update, StateChange) and update.state in ("finished", "stopped")
        if saved and update.path is not None:
            path = export_weights(update.path, weights[index], half=True)
            yield index, StateChange(update.state, update.iteration, path, update.message)
            kept = best_path(update.path)
            if kept.exists():
                best = export_weights(kept, best_path(weights[index]), half=True)
                kept.unlink()  # the full-precision copy the run kept while it trained
                yield index, StateChange("best", update.iteration, best, "best validation")
        elif not (isinstance(update, StateChange) and update.state == "best"):
            yield index, update


def _best_in_words(path: Path) -> str:
    """``model-best.safetensors (31.20 dB at iteration 700)``."""
    best = read_metadata(path)["best"]
    return f"{path.name} ({best['psnr']:.2f} dB at iteration {best['iteration']})"


class TrainWidget(WidgetActions, Container):
    """Choose images, task, network and losses; trains in the background.

    The losses are ``pixel`` (mean squared error: the highest PSNR) and the
    paper's VGG19 layers. Every loss gets its own checkpoint (``model_conv1_1.safetensors`` ...
    when several are chosen), trained one after another. **Stop** ends the
    current run with a checkpoint of its last finished iteration and skips the
    rest. Finished checkpoints are offered to the restore tools at once.
    """

    TITLE = "Train"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        defaults = TrainingConfig()
        self._viewer = viewer
        self._source = ComboBox(label="images from", choices=[SOURCE_LAYERS, SOURCE_FOLDER])
        self._layers = Select(label="image layers", choices=lambda _: image_layer_choices(viewer))
        self._folder = FileEdit(label="folder", mode="d")
        self._task = ComboBox(
            label="task", choices=[t.value for t in Task], value=defaults.task.value
        )
        self._bits = SpinBox(label="bits", **_range("bits"), value=defaults.bits)
        self._method = ComboBox(
            label="halftone",
            choices=(*HALFTONE_METHODS, *HALFTONE_SET_NAMES),
            value=defaults.halftone_method,
            tooltip="a set draws one of its halftones per crop: "
            + "; ".join(f"{name}: {words}" for name, words in HALFTONE_SETS_IN_WORDS.items())
            + f" ({MIXED_HALFTONES}: for halftones of unknown origin)",
        )
        self._loss_layers = Select(
            label="losses",
            choices=[PIXEL_LOSS, *(m.value for m in LossLayer)],
            value=[PIXEL_LOSS],
            tooltip="one model per choice: pixel = mean squared error (highest PSNR); "
            "convN_1 = the paper's VGG19 perceptual loss at that layer",
        )
        self._iterations = SpinBox(
            label="iterations", **_range("iterations"), value=defaults.iterations
        )
        self._batch = SpinBox(label="batch size", **_range("batch_size"), value=defaults.batch_size)
        self._crop = SpinBox(
            label="crop size", **_range("crop_size"), step=16, value=defaults.crop_size
        )
        self._arch = ComboBox(
            label="network",
            choices=[a.value for a in Arch],
            value=Arch.RESUNET.value,
            tooltip="resunet: full-resolution residual U-Net (the zoo's defaults); "
            "unet: the paper's U-Net",
        )
        self._size = ComboBox(label="network size", choices=list(RESUNET_SIZES), value="S")
        self._width = SpinBox(label="model width (ngf)", **_range("ngf"), value=defaults.model.ngf)
        self._depth = SpinBox(label="model depth", **_range("depth"), value=defaults.model.depth)
        self._residual = CheckBox(
            text="correct a classical base (Gaussian blur / mid-bin)",
            value=True,
            tooltip="the network learns a correction to a fixed reconstruction and starts "
            "equal to it: much better models from short (CPU) trainings; off = the paper's "
            "plain U-Net",
        )
        self._grey = FloatSpinBox(
            label="grey crops",
            min=0.0,
            max=1.0,
            step=0.1,
            value=0.3,
            tooltip="share of grey training crops, so the model also restores grey images",
        )
        self._noisy = FloatSpinBox(
            label="noisy crops",
            min=0.0,
            max=1.0,
            step=0.1,
            value=0.0,
            tooltip="share of training crops given Gaussian noise (standard deviation up to "
            f"{NOISE_SIGMA:g} levels of 255; in colour, half of them the same noise in every "
            "channel) before they are degraded: for noisy images such as micrographs, where a "
            "model trained on clean photographs can restore below mid-bin",
        )
        self._held_out = SpinBox(
            label="held-out images",
            min=0,
            max=10_000,
            value=0,
            tooltip="the last N images (files in name order, or layer planes) are not "
            "trained on: the model is scored on them ten times per run and the weights of "
            "its best score are also saved, as <name>-best.safetensors (long runs on few "
            "images can get worse on new ones)",
        )
        self._copies = CheckBox(
            text="also at 0.7 and 0.5 of their size",
            value=False,
            tooltip="train on each image also downscaled (Lanczos): more detail per pixel "
            "and cleaner targets from JPEGs; the zoo's defaults gained 0.06-0.13 dB from it",
        )
        self._schedule = ComboBox(
            label="lr schedule", choices=[s.value for s in LrSchedule], value="cosine"
        )
        self._device = ComboBox(label="device", choices=available_devices())
        self._workers = SpinBox(
            label="crop workers",
            min=0,
            max=os.cpu_count() or 1,
            value=0,
            tooltip="processes that cut and degrade the next training crops while the "
            "network trains on the current ones (the same crops as without them): for a GPU, "
            "which otherwise waits for noisy or Bayer crops; on a CPU leave 0, since the "
            "crops and the network share its cores",
        )
        self._out = FileEdit(
            label="output",
            mode="w",
            filter="*.safetensors",
            value=_unused_output(Path.home() / "napari-compand" / "model.safetensors"),
            tooltip="the trained model (fp16 weights); its resumable state goes to "
            "<name>.resume.safetensors beside it",
        )
        self._replace = CheckBox(
            text=REPLACE_TEXT,
            value=False,
            tooltip="allow training into an output whose files exist already "
            "(they are replaced when the run saves)",
        )
        self._start = PushButton(text="Train")
        self._stop = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.progress.native.setFormat("%v / %m iterations")
        self._status = status_label()
        super().__init__(
            widgets=[
                self._source,
                self._layers,
                self._folder,
                self._task,
                self._bits,
                self._method,
                self._loss_layers,
                self._iterations,
                self._batch,
                self._crop,
                self._arch,
                self._size,
                self._width,
                self._depth,
                self._residual,
                self._grey,
                self._noisy,
                self._held_out,
                self._copies,
                self._schedule,
                self._device,
                self._workers,
                self._out,
                self._replace,
                self._start,
                self._stop,
                self.progress,
                self._status,
            ]
        )
        self.loss_plot = LossPlot()
        self.native.layout().addWidget(self.loss_plot)
        self.worker: GeneratorWorker | None = None
        self.finished_paths: list[Path] = []
        #: The weights of each run's best validation (with held-out images).
        self.best_paths: list[Path] = []
        self._queue_holder: list[TrainingQueue] = []
        self._source.changed.connect(self._sync_controls)
        self._task.changed.connect(self._sync_controls)
        self._arch.changed.connect(self._sync_controls)
        self._start.clicked.connect(self.start)
        self._stop.clicked.connect(self.stop)
        self._sync_controls()

    def configs(self) -> list[tuple[TrainingConfig, Path]]:
        """The runs the controls describe (validated)."""
        layers = list(self._loss_layers.value)
        if not layers:
            raise ValueError("choose at least one loss")
        base: dict = {"base": "none"}
        if self._residual.value:
            base = (
                {"base": "bin", "bits": self._bits.value}
                if self._task.value == Task.EXPAND.value
                else {"base": "gaussian"}  # ModelConfig's sigma: HALFTONE_BLUR_SIGMA
            )
        widths, blocks = RESUNET_SIZES[self._size.value]
        model = ModelConfig(
            arch=self._arch.value,
            widths=widths,
            blocks=blocks,
            ngf=self._width.value,
            depth=self._depth.value,
            max_channels=max(self._width.value * 8, 64),
            **base,
        )
        runs = []
        for layer, out in zip(layers, output_paths(Path(self._out.value), layers), strict=True):
            loss = (
                {"perceptual_weight": 0.0, "pixel_weight": 1.0}
                if layer == PIXEL_LOSS
                else {"loss_layer": layer}
            )
            config = TrainingConfig(
                task=self._task.value,
                bits=self._bits.value,
                halftone_method=self._method.value,
                **loss,
                iterations=self._iterations.value,
                batch_size=self._batch.value,
                crop_size=self._crop.value,
                grey_fraction=self._grey.value,
                noise_fraction=self._noisy.value,
                noise_sigma=NOISE_SIGMA,
                noise_shared=NOISE_SHARED,
                lr_schedule=self._schedule.value,
                device=self._device.value,
                model=model,
                **self._validation_interval(),
            )
            runs.append((config, out))
        return runs

    def _validation_interval(self) -> dict[str, int]:
        """With held-out images: ten validations per run (else the config's default)."""
        if not self._held_out.value:
            return {}
        return {"validate_every": max(1, self._iterations.value // 10)}

    def start(self) -> GeneratorWorker | None:
        """Start training in a thread worker; returns the worker."""
        try:
            runs = self.configs()
            validated = self._held_out.value > 0
            check_outputs([out for _, out in runs], self._replace.value, validated)
            make_images = self._image_source(runs[0][0])
        except (TypeError, ValueError, OSError) as err:
            self._fail(str(err))
            return None
        self._queue_holder = []
        self.finished_paths = []
        self.best_paths = []
        self._total = sum(config.iterations for config, _ in runs)
        self._done_before = 0
        self.progress.max = self._total
        self.progress.value = 0
        self.loss_plot.clear()
        workers = self._workers.value

        def make_queue() -> TrainingQueue:
            train, validation = make_images()
            return TrainingQueue(
                [(c, resumable_path(out)) for c, out in runs], train, validation, workers=workers
            )

        worker = create_worker(
            _train_job,
            self._queue_holder,
            make_queue,
            [out for _, out in runs],
            _progress={"desc": "Training"},
            _ignore_errors=True,
        )
        worker.yielded.connect(self._on_update)
        worker.errored.connect(lambda err: self._fail(f"training failed: {err}"))
        worker.finished.connect(self._set_idle)
        self._start.enabled = False
        self._stop.enabled = True
        self._status.value = "loading images..."
        self._runs = runs
        self.worker = worker
        worker.start()
        return worker

    def stop(self) -> None:
        """Stop after the current iteration; a checkpoint is written."""
        if self._queue_holder:
            self._queue_holder[0].stop()
        elif self.worker is not None:
            self.worker.quit()  # still loading images: nothing to save yet
        self._status.value = "stopping..."

    def _image_source(self, config: TrainingConfig):
        """A function (run in the worker) that builds ``(training, validation)`` images;
        validation is ``None`` unless images are held out (:func:`held_out_split`)."""
        channels = config.model.channels
        scales = SCALE_COPIES if self._copies.value else (1.0,)
        held_out = self._held_out.value
        if self._source.value == SOURCE_FOLDER:
            folder = Path(self._folder.value)
            if not folder.is_dir():
                raise ValueError(f"choose a folder of training images (got {folder})")
            if not held_out:
                return lambda: (
                    TrainingImages.from_paths([folder], config.degradations, channels, scales),
                    None,
                )
            files = collect_images([folder])
            train_files, val_files = held_out_split(files, held_out, f"images in {folder}")

            def load(paths: list[Path], what: str, at: tuple[float, ...]) -> TrainingImages:
                description = f"{folder}: {len(paths)} {what} images ({paths[0].name} ...)"
                images = [read_image(p) for p in paths]
                return TrainingImages(images, config.degradations, channels, description, scales=at)

            return lambda: (
                load(train_files, "training", scales),
                load(val_files, "held-out", (1.0,)),
            )
        layers = list(self._layers.value)
        if not layers:
            raise ValueError("choose at least one image layer to train on")
        names = ", ".join(layer.name for layer in layers)
        planes = _layer_images(layers)  # views, no copies
        train, validation = held_out_split(planes, held_out, "image planes of the chosen layers")

        def build() -> tuple[TrainingImages, TrainingImages | None]:
            source = f"napari layers: {names}"
            if not validation:
                return TrainingImages(
                    train, config.degradations, channels, source, scales=scales
                ), None
            held = f"the last {len(validation)} of their {len(planes)} planes"
            images = TrainingImages(
                train, config.degradations, channels, f"{source}, without {held}", scales=scales
            )
            return images, TrainingImages(
                validation, config.degradations, channels, f"{source}, {held}"
            )

        return build

    def _on_update(self, item: tuple) -> None:
        index, update = item
        config, _ = self._runs[index]
        if isinstance(update, Progress):
            self.progress.value = min(self._done_before + update.iteration, self._total)
            self.loss_plot.add(update.iteration, update.loss)
            self._status.value = (
                f"{config.loss_name}: {update.iteration}/{update.iterations}, "
                f"loss {update.loss:.4g}, {update.images_per_s:.1f} img/s, "
                f"ETA {update.eta_s / 60:.1f} min"
            )
        elif isinstance(update, StateChange):
            if update.state == "started":
                self.loss_plot.start_curve()
                self._status.value = f"{config.loss_name}: {update.message}"
            elif update.state == "best":
                self.best_paths.append(update.path)
                register_session_model(update.path)
            elif update.state in ("finished", "stopped") and update.path is not None:
                self._done_before += config.iterations
                self.finished_paths.append(update.path)
                register_session_model(update.path)
                show_info(f"Train: {update.state} at iteration {update.iteration}: {update.path}")
        else:  # Validation
            self._status.value = (
                f"{config.loss_name}: validation PSNR {update.psnr:.2f} dB "
                f"at iteration {update.iteration}"
            )

    def _sync_controls(self, *_: object) -> None:
        from_layers = self._source.value == SOURCE_LAYERS
        self._layers.visible = from_layers
        self._folder.visible = not from_layers
        expand = self._task.value == Task.EXPAND.value
        self._bits.visible = expand
        self._method.visible = not expand
        resunet = self._arch.value == Arch.RESUNET.value
        self._size.visible = resunet
        self._width.visible = not resunet
        self._depth.visible = not resunet

    def _set_idle(self) -> None:
        self._start.enabled = True
        self._stop.enabled = False
        if self.finished_paths:
            saved = ", ".join(
                f"{p.name} ({p.stat().st_size / 2**20:.1f} MB)" for p in self.finished_paths
            )
            self._status.value = (
                f"saved: {saved}; resumable state (napari-compand train --resume): "
                + ", ".join(resumable_path(p).name for p in self.finished_paths)
            )
            if self.best_paths:
                self._status.value += "; best validation: " + ", ".join(
                    _best_in_words(p) for p in self.best_paths
                )
            # the next run proposes a new name instead of replacing this one
            self._out.value = _unused_output(Path(self._out.value))
