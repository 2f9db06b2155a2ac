"""The training engine: a generator of typed updates, shared by the CLI and napari.

>>> trainer = Trainer(config, images, out="model.safetensors")   # doctest: +SKIP
>>> for update in trainer.run():                                  # doctest: +SKIP
...     print(update)

``trainer.stop()`` (from any thread) ends the run at the next iteration boundary
with a checkpoint of the last finished iteration. A run resumed from that file
continues with the same weights, optimizer state and iteration count, and since
the batch of iteration ``i`` depends only on ``(seed, rank, i)`` it produces the
same model as an uninterrupted run.

With validation images, the weights of the best validation so far are also kept,
in :func:`best_path` of ``out`` (``model-best.safetensors``; a ``best`` update
says when it changes).

Under ``torchrun`` (``torch.distributed`` initialised) the model is wrapped in
DistributedDataParallel, every process draws its own batches, and only rank 0
writes files and reports validation.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .. import __version__
from .._device import resolve_device, training_autocast
from ..checkpoints import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ..losses import PerceptualLoss
from ..metrics import psnr, ssim
from ..models import (
    ModelConfig,
    build_model,
    deeper_version,
    grey_version,
    with_threshold_map,
)
from ..vocabulary import Arch, PixelLoss, Task
from .config import TrainingConfig
from .data import TrainingImages

__all__ = [
    "NonFiniteLossError",
    "Progress",
    "StateChange",
    "Trainer",
    "TrainingQueue",
    "TrainingUpdate",
    "Validation",
    "best_path",
    "recipe_of",
]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped with its last finite weights."""


def recipe_of(checkpoint: Checkpoint) -> TrainingConfig:
    """The training recipe recorded in a checkpoint (what ``resume`` continues).

    Raises
    ------
    CheckpointError
        If the file has no recipe or an invalid one.
    """
    recipe = checkpoint.metadata.get("recipe")
    if recipe is None:
        raise CheckpointError(
            f"{checkpoint.path} records no training recipe, so it cannot be resumed; "
            "use it as a warm start (init) instead"
        )
    try:
        return TrainingConfig.from_dict(recipe)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{checkpoint.path}: invalid training recipe: {err}") from err


#: Size and number of the centre crops used for validation.
VALIDATION_CROP = 256
VALIDATION_IMAGES = 8


@dataclass(frozen=True)
class Progress:
    """After each iteration: loss of that batch, throughput and time left."""

    iteration: int
    iterations: int
    loss: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Validation:
    """Mean PSNR (dB) and SSIM of the model on the validation crops."""

    iteration: int
    psnr: float
    ssim: float


@dataclass(frozen=True)
class StateChange:
    """``started``, ``checkpoint`` (file written), ``best`` (a validation beat every earlier
    one; its weights are in :func:`best_path`), ``stopped`` or ``finished``."""

    state: Literal["started", "checkpoint", "best", "stopped", "finished"]
    iteration: int
    path: Path | None = None
    message: str = ""


TrainingUpdate = Progress | Validation | StateChange


def best_path(out: str | Path) -> Path:
    """Where a run writing ``out`` keeps the weights of its best validation.

    >>> best_path("runs/model.safetensors").name
    'model-best.safetensors'
    """
    out = Path(out)
    return out.with_name(f"{out.stem}-best{out.suffix}")


# Settings a resumed run must share with the run it continues.
_RESUME_KEYS = (
    "task",
    "bits",
    "halftone_method",
    "loss_layer",
    "loss_after_relu",
    "model",
    "seed",
    "batch_size",
    "crop_size",
    "lr",
    "lr_schedule",
    "beta1",
    "beta2",
    "pixel_weight",
    "perceptual_weight",
    "pixel_loss",
    "grey_fraction",
    "noise_fraction",
    "noise_sigma",
    "noise_shared",
    "vgg_weights",
)


class Trainer:
    """Train a :class:`~napari_compand.models.Restorer` with the perceptual loss.

    Parameters
    ----------
    config
        The recipe.
    data
        Training images (their degradation must match ``config``).
    out
        Checkpoint file to write (``None``: keep the model in memory only).
    val_data
        Validation images; PSNR/SSIM on their centre crops every
        ``config.validate_every`` iterations and at the end. The weights of the
        best one are kept in :func:`best_path` of ``out``.
    resume
        Checkpoint to continue from (same recipe; ``config.iterations`` may be larger).
    init
        Checkpoint whose weights start this run (warm start; same architecture,
        fresh optimizer, iteration 0).
    validation_images
        How many of ``val_data``'s images give a centre crop for validation.
    workers
        Processes that make the batches ahead (:meth:`TrainingImages.batches`; the same
        batches as without them). They pay where the device waits for crops, as a GPU
        does for noisy ones; 0 (default) makes each batch in the training loop.
        :attr:`data_seconds` says how long the loop waited for batches.
    """

    def __init__(
        self,
        config: TrainingConfig,
        data: TrainingImages,
        out: str | Path | None = None,
        *,
        val_data: TrainingImages | None = None,
        resume: str | Path | None = None,
        init: str | Path | None = None,
        validation_images: int = VALIDATION_IMAGES,
        workers: int = 0,
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers}")
        if data.degradations != config.degradations:
            raise ValueError(
                f"training images are degraded as "
                f"{', '.join(d.label for d in data.degradations)!r} but the config asks for "
                f"{', '.join(d.label for d in config.degradations)!r}"
            )
        if data.channels != config.model.channels:
            raise ValueError(
                f"images have {data.channels} channels, the model {config.model.channels}"
            )
        if resume is not None and init is not None:
            raise ValueError("give either resume or init, not both")
        self.config = config
        self.data = data
        self.val_data = val_data
        self.workers = workers
        #: Seconds :meth:`run` has waited for training batches (making them, or for the
        #: worker processes); compare with the run's wall time.
        self.data_seconds = 0.0
        self.out = Path(out) if out is not None else None
        self.device = resolve_device(config.device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())  # torchrun sets it
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self._stop = threading.Event()
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.init_source: str | None = None

        torch.manual_seed(config.seed)
        self.model = build_model(config.model)
        if init is not None:
            self._warm_start(load_checkpoint(init))
        self.model.to(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        self.loss_fn: PerceptualLoss | None = None
        if config.perceptual_weight:
            self.loss_fn = PerceptualLoss(
                config.loss_layer, config.vgg_weights, after_relu=config.loss_after_relu
            ).to(self.device)
        self._pixel_loss = F.l1_loss if config.pixel_loss is PixelLoss.L1 else F.mse_loss
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
        )
        if resume is not None:
            self._resume(load_checkpoint(resume))
        self.network: torch.nn.Module = self.model
        if dist.is_initialized():
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.cuda else None
            )
        self._autocast = training_autocast(self.device, config.amp)
        #: Whether steps run in bf16 mixed precision (``config.amp`` where the device has it).
        self.mixed_precision = not isinstance(self._autocast, nullcontext)
        # validation scores in float32 on the CPU: bf16's 8-bit mantissa would blur the
        # 40-50 dB scores of the high-bit models that keep-best compares
        self._val_autocast = self._autocast if self.cuda else nullcontext()
        self._val_batch = None
        if val_data is not None and self.rank == 0:  # only rank 0 reports validation
            self._val_batch = val_data.center_crops(
                VALIDATION_CROP, validation_images, config.model.threshold_map
            )

    # -- public ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the run to end after the current iteration (thread-safe)."""
        self._stop.set()

    def stop_on_signals(self) -> None:
        """Make Ctrl-C (SIGINT) and SIGTERM (``kill``, job schedulers) :meth:`stop` the run,
        which then ends with a checkpoint. For command-line processes (call it from the main
        thread); it also covers runs started in the background (``nohup ... &``), where the
        shell makes the process ignore Ctrl-C's SIGINT."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop())

    @property
    def writes_files(self) -> bool:
        """Only rank 0 of a distributed run writes checkpoints."""
        return self.out is not None and self.rank == 0

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        """One optimizer step on a batch; returns the loss."""
        self.network.train()
        inputs = self._to_device(inputs)
        targets = self._to_device(targets)
        with self._autocast:
            prediction = self.network(inputs)
            loss = prediction.new_zeros(())
            if self.loss_fn is not None:
                loss = loss + self.config.perceptual_weight * self.loss_fn(prediction, targets)
            if self.config.pixel_weight:
                pixel = self._pixel_loss(prediction.float(), targets)
                loss = loss + self.config.pixel_weight * pixel
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss became {value} at iteration {self.iteration + 1}; the weights were "
                "not updated (try a lower learning rate or loss weights)"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr_at(self.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return value

    def run(self) -> Iterator[TrainingUpdate]:
        """Train to ``config.iterations``; yields :data:`TrainingUpdate` objects."""
        config = self.config
        precision = f" in {self.precision} precision" if self.mixed_precision else ""
        yield StateChange(
            "started", self.iteration, message=f"training on {self.device}{precision}"
        )
        batches = self.data.batches(
            config.seed,
            self.rank,
            self.iteration,
            config.batch_size,
            config.crop_size,
            workers=self.workers,
            device=self.device,
            grey_fraction=config.grey_fraction,
            threshold_map=config.model.threshold_map,
            noise_fraction=config.noise_fraction,
            noise_sigma=config.noise_sigma,
            noise_shared=config.noise_shared,
        )
        try:
            yield from self._iterate(batches)
        finally:
            batches.close()  # stops the worker processes

    def _iterate(
        self, batches: Generator[tuple[torch.Tensor, torch.Tensor], None, None]
    ) -> Iterator[TrainingUpdate]:
        config = self.config
        seconds_per_iteration: float | None = None
        while self.iteration < config.iterations:
            if self._stop.is_set():
                path = self._save()
                yield StateChange("stopped", self.iteration, path, "stopped by request")
                return
            started = time.perf_counter()
            inputs, targets = next(batches)
            self.data_seconds += time.perf_counter() - started
            try:
                loss = self.step(inputs, targets)
            except NonFiniteLossError as err:
                path = self._save()  # the weights are still those of the last finite step
                where = f"; the last finite weights (iteration {self.iteration}) are in {path}"
                raise NonFiniteLossError(f"{err}{where if path else ''}") from None
            self.iteration += 1
            elapsed = time.perf_counter() - started
            seconds_per_iteration = (
                elapsed
                if seconds_per_iteration is None
                else 0.9 * seconds_per_iteration + 0.1 * elapsed
            )
            yield Progress(
                self.iteration,
                config.iterations,
                loss,
                config.batch_size * self.world_size / max(elapsed, 1e-9),
                seconds_per_iteration * (config.iterations - self.iteration),
            )
            last = self.iteration == config.iterations
            if self._val_batch is not None and (
                last or (config.validate_every and self.iteration % config.validate_every == 0)
            ):
                validation = self.validate()
                yield validation
                best = self._save_if_best(validation)
                if best is not None:
                    yield StateChange(
                        "best",
                        self.iteration,
                        best,
                        f"validation PSNR {validation.psnr:.2f} dB, the best so far",
                    )
            if (
                not last
                and config.checkpoint_every
                and self.iteration % config.checkpoint_every == 0
            ):
                path = self._save()
                if path is not None:
                    yield StateChange("checkpoint", self.iteration, path)
        path = self._save()
        yield StateChange("finished", self.iteration, path)

    def validate(self) -> Validation:
        """PSNR/SSIM (uint8, colour) of the model on the validation crops."""
        inputs, targets = self._val_batch
        self.model.eval()
        outputs = []
        chunk = 16 if self.cuda else 4
        with torch.inference_mode():
            for start in range(0, len(inputs), chunk):
                batch = self._to_device(inputs[start : start + chunk])
                with self._val_autocast:
                    outputs.append(self.model(batch).float().clamp(0, 1).cpu())
        self.model.train()
        predicted = _to_uint8(torch.cat(outputs))
        clean = _to_uint8(targets)
        rgb = clean.shape[-1] == 3
        image_psnr = [psnr(c, p, rgb=rgb) for c, p in zip(clean, predicted, strict=True)]
        image_ssim = [ssim(c, p, rgb=rgb) for c, p in zip(clean, predicted, strict=True)]
        result = Validation(self.iteration, float(np.mean(image_psnr)), float(np.mean(image_ssim)))
        self.history.append(
            {"iteration": result.iteration, "psnr": result.psnr, "ssim": result.ssim}
        )
        return result

    @property
    def precision(self) -> str:
        """What the steps run in: ``"bf16 mixed"`` or ``"float32"`` (``config.amp`` only asks
        for bf16; devices without it fall back)."""
        return "bf16 mixed" if self.mixed_precision else "float32"

    def metadata(self) -> dict:
        """What the checkpoint records about this run."""
        config = self.config
        record = {
            "package_version": __version__,
            "task": config.task.value,
            "loss_layer": config.loss_layer.value if config.perceptual_weight else "none",
            "loss": config.loss_name,
            "architecture": config.model.to_dict(),
            "recipe": config.to_dict(),
            "data": self.data.description,
            "validation_data": None if self.val_data is None else self.val_data.description,
            "iterations_done": self.iteration,
            "validation": self.history,
            "init": self.init_source,
            "world_size": self.world_size,
            "device": str(self.device),
            "precision": self.precision,
        }
        if config.task is Task.EXPAND:
            record["bits"] = config.bits
        else:
            record["halftone_method"] = config.halftone_method
            if len(config.degradations) > 1:
                record["halftone_methods"] = [d.label for d in config.degradations]
        return record

    # -- internals ---------------------------------------------------------------

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if self.cuda else batch

    def _save(self) -> Path | None:
        if not self.writes_files:
            return None
        return save_checkpoint(self.out, self.model, self.metadata(), self.optimizer)

    def _save_if_best(self, validation: Validation) -> Path | None:
        """Keep the weights of a validation that beats every earlier one of the run.

        Long runs on few images overfit: their last weights can be worse on unseen
        images than earlier ones (measured: the 1-bit default's GPU stage fell from
        18.74 to 18.24 dB on Set5 + Set14 while gaining 1.46 dB on its training
        images). The best validation's weights (no optimizer state) go to
        :func:`best_path` of ``out``, with ``"best"`` (iteration, PSNR, SSIM) in
        their metadata.
        """
        earlier = [record["psnr"] for record in self.history[:-1]]
        if not self.writes_files or (earlier and validation.psnr <= max(earlier)):
            return None
        best = {"iteration": validation.iteration, "psnr": validation.psnr, "ssim": validation.ssim}
        return save_checkpoint(best_path(self.out), self.model, {**self.metadata(), "best": best})

    def _warm_start(self, checkpoint: Checkpoint) -> None:
        source, mine = checkpoint.model_config, self.config.model
        state = checkpoint.model_state
        model = None
        if (source.channels, mine.channels) == (3, 1):  # a grey model from a colour one
            model = grey_version(checkpoint.build_model())
            source = model.config
        if _grows_into(source, mine):  # a larger ResUNet from a smaller one
            model = deeper_version(model or checkpoint.build_model(), mine.blocks)
            source = model.config
        if mine.threshold_map and not source.threshold_map:  # learns to read the map
            model = with_threshold_map(model or checkpoint.build_model())
            source = model.config
        if model is not None:
            state = model.state_dict()
        if not source.same_weights_as(mine):
            raise CheckpointError(
                f"{checkpoint.path}: its architecture {checkpoint.model_config} differs from "
                f"this run's {mine}; warm starts need the same architecture "
                "(the base and its bits or sigma may differ, a grey model may start "
                "from a colour one, a ResUNet from one with fewer blocks or without "
                "a threshold map)"
            )
        self.model.load_state_dict(state)
        self.init_source = str(checkpoint.path)

    def _resume(self, checkpoint: Checkpoint) -> None:
        recorded = recipe_of(checkpoint)
        differing = [k for k in _RESUME_KEYS if getattr(recorded, k) != getattr(self.config, k)]
        if differing:
            raise CheckpointError(
                f"{checkpoint.path} was trained with other settings ({', '.join(differing)}); "
                "resume needs the same recipe"
            )
        if checkpoint.optimizer_state is None:
            raise CheckpointError(
                f"{checkpoint.path} holds no optimizer state; use it as init instead"
            )
        done = checkpoint.metadata.get("iterations_done")
        if not isinstance(done, int) or isinstance(done, bool) or done < 0:
            raise CheckpointError(f"{checkpoint.path}: 'iterations_done' is missing or invalid")
        if done > self.config.iterations:
            raise ValueError(
                f"{checkpoint.path} already has {done} iterations, "
                f"more than {self.config.iterations}"
            )
        self.model.load_state_dict(checkpoint.model_state)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.iteration = done
        self.history = list(checkpoint.metadata.get("validation", []))
        self.init_source = checkpoint.metadata.get("init")


def _grows_into(source: ModelConfig, target: ModelConfig) -> bool:
    """Whether ``target`` is ``source`` with more residual blocks at some level."""
    return (
        source.arch is target.arch is Arch.RESUNET
        and source.channels == target.channels
        and source.widths == target.widths
        and source.blocks != target.blocks
        and len(source.blocks) == len(target.blocks)
        and all(s <= t for s, t in zip(source.blocks, target.blocks, strict=True))
    )


class TrainingQueue:
    """Several runs one after another (e.g. one per loss layer), stoppable as a whole.

    Parameters
    ----------
    runs
        ``(config, out)`` pairs, trained in order on the same ``data``.
    data, val_data, workers
        As for :class:`Trainer`.
    """

    def __init__(
        self,
        runs: list[tuple[TrainingConfig, Path]],
        data: TrainingImages,
        val_data: TrainingImages | None = None,
        *,
        workers: int = 0,
    ) -> None:
        if not runs:
            raise ValueError("nothing to train: no runs given")
        self.runs = runs
        self.data = data
        self.val_data = val_data
        self.workers = workers
        self.current: Trainer | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop the current run (it saves a checkpoint) and skip the rest."""
        self._stop.set()
        if self.current is not None:
            self.current.stop()

    def run(self) -> Iterator[tuple[int, TrainingUpdate]]:
        """Yields ``(run index, update)`` for every update of every run."""
        for index, (config, out) in enumerate(self.runs):
            if self._stop.is_set():
                return
            self.current = Trainer(
                config, self.data, out, val_data=self.val_data, workers=self.workers
            )
            if self._stop.is_set():  # stop() came while the trainer was being built
                self.current.stop()
            for update in self.current.run():
                yield index, update


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in [0, 1] -> uint8 ``(N, H, W, C)`` (C = 1 squeezed)."""
    array = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array
