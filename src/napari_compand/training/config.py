"""Validated training settings (the paper's recipe, scaled by the caller).

Every field is bounded and checked on construction, so a bad value fails before
any data is read; enums are the single source of the valid choices (used by the
CLI and the Train widget).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

from ..degrade import (
    HALFTONE_METHODS,
    HALFTONE_SETS,
    MIXED_HALFTONES,
    Degradation,
    DegradationMode,
)
from ..models import ModelConfig
from ..vocabulary import (
    BIT_BASES,
    LIMITS,
    ORDERED_METHODS,
    Arch,
    Device,
    LossLayer,
    LrSchedule,
    PixelLoss,
    Task,
)

__all__ = ["Device", "LrSchedule", "PixelLoss", "Task", "TrainingConfig"]


@dataclass(frozen=True)
class TrainingConfig:
    """One training run.

    Parameters
    ----------
    task
        :class:`Task`.
    bits
        Input bit depth for ``expand`` (1..7).
    halftone_method
        Halftoning method for ``inverse-halftone`` (see ``HALFTONE_METHODS``), or a
        set of them, one drawn per crop (:data:`~napari_compand.degrade.HALFTONE_SETS`):
        ``mixed`` (ten common halftones), ``ordered`` (Bayer 4x4 and 8x8),
        ``floyd-steinberg-scans`` (raster and serpentine).
    loss_layer
        VGG19 layer of the perceptual loss (:class:`~napari_compand.losses.LossLayer`).
    loss_after_relu
        Compare VGG19 activations after the layer's ReLU (default) or before it.
    perceptual_weight
        Weight of the perceptual term (1: the paper; 0: a pixel loss only, no VGG19).
    pixel_weight
        Weight of an added pixel term (0: the paper's pure perceptual loss).
        The perceptual term uses the embedded Caffe VGG19 on the 0..255 scale, so
        a pixel term on [0, 1] images needs a large weight to matter (e.g. 1e4).
    pixel_loss
        :class:`PixelLoss` of the pixel term.
    grey_fraction
        Share of training crops made from a grey version of the image (the same
        grey plane in every channel, degraded as grey), so a colour model also
        restores grey images. 0 keeps every crop in colour.
    noise_fraction, noise_sigma
        Share of training crops whose clean target first gets Gaussian noise, with a
        standard deviation drawn per crop uniformly from 0 to ``noise_sigma`` (8-bit
        levels; the same noise in every channel of a grey crop), and is then degraded.
        Real images such as micrographs are noisy, and inside a noisy region the position
        of a value inside its quantization bin cannot be predicted: a network trained on
        clean photographs alone restores those regions below mid-bin
        (docs/results.md). 0 keeps every crop clean.
    noise_shared
        Share of noisy colour crops whose noise is one field for all channels, as in
        camera photographs whose colour was demosaiced or JPEG-compressed with
        subsampled chroma (their noise is mostly in the luminance); the other noisy
        colour crops get independent noise per channel, as in multichannel
        micrographs. Independent noise alone teaches a network that agreeing channels
        are no evidence, and colour restoration of JPEG photographs suffers
        (docs/results.md).
    vgg_weights
        ``"embedded"``, ``"imagenet"`` or a path (see :class:`PerceptualLoss`).
    crop_size, batch_size, iterations
        Random square crops per batch, batch size, optimizer steps.
    lr, beta1, beta2
        Adam settings (paper: lr 2e-4).
    lr_schedule
        :class:`LrSchedule` (paper: ``constant``).
    seed
        Seeds the model initialisation and the crop sequence.
    device
        :class:`Device`.
    amp
        Mixed precision (bf16 autocast, float32 weights and loss) on CUDA and on CPUs
        that compute bf16 natively (AVX-512 BF16, AMX), where a step takes about half
        as long; ignored elsewhere (:func:`~napari_compand._device.training_autocast`).
    validate_every
        Validation PSNR/SSIM every this many iterations (0: only at the end).
    checkpoint_every
        Write the checkpoint every this many iterations (0: only at the end/stop).
    model
        :class:`~napari_compand.models.ModelConfig` of the network.
    """

    task: Task = Task.INVERSE_HALFTONE
    bits: int = 3
    halftone_method: str = "floyd-steinberg"
    loss_layer: LossLayer = LossLayer.CONV1_1
    loss_after_relu: bool = True
    perceptual_weight: float = 1.0
    pixel_weight: float = 0.0
    pixel_loss: PixelLoss = PixelLoss.MSE
    grey_fraction: float = 0.0
    noise_fraction: float = 0.0
    noise_sigma: float = 8.0
    noise_shared: float = 0.0
    vgg_weights: str = "embedded"
    crop_size: int = 128
    batch_size: int = 16
    iterations: int = 1000
    lr: float = 2e-4
    lr_schedule: LrSchedule = LrSchedule.CONSTANT
    beta1: float = 0.9
    beta2: float = 0.999
    seed: int = 0
    device: Device = Device.AUTO
    amp: bool = True
    validate_every: int = 250
    checkpoint_every: int = 250
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "task", _enum(Task, self.task, "task"))
        set_(self, "loss_layer", _enum(LossLayer, self.loss_layer, "loss layer"))
        set_(self, "device", _enum(Device, self.device, "device"))
        set_(self, "lr_schedule", _enum(LrSchedule, self.lr_schedule, "lr schedule"))
        set_(self, "pixel_loss", _enum(PixelLoss, self.pixel_loss, "pixel loss"))
        if isinstance(self.model, dict):
            set_(self, "model", ModelConfig(**self.model))
        if not isinstance(self.model, ModelConfig):
            raise TypeError(
                f"model must be a ModelConfig or its dict form, got {self.model!r} "
                f"({type(self.model).__name__})"
            )
        _bounded("bits", self.bits)
        if self.halftone_method not in (*HALFTONE_METHODS, *HALFTONE_SETS):
            raise ValueError(
                f"unknown halftone method {self.halftone_method!r}; "
                f"valid methods: {', '.join((*HALFTONE_METHODS, *HALFTONE_SETS))}"
            )
        _bounded("crop_size", self.crop_size)
        _bounded("batch_size", self.batch_size)
        _bounded("iterations", self.iterations)
        _bounded("validate_every", self.validate_every)
        _bounded("checkpoint_every", self.checkpoint_every)
        _bounded("seed", self.seed)
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr must be in (0, 1], got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        if not 0 <= self.grey_fraction <= 1:
            raise ValueError(f"grey_fraction must be in [0, 1], got {self.grey_fraction}")
        if not 0 <= self.noise_fraction <= 1:
            raise ValueError(f"noise_fraction must be in [0, 1], got {self.noise_fraction}")
        if not 0 < self.noise_sigma <= 64:
            raise ValueError(f"noise_sigma must be in (0, 64] levels, got {self.noise_sigma}")
        if not 0 <= self.noise_shared <= 1:
            raise ValueError(f"noise_shared must be in [0, 1], got {self.noise_shared}")
        for name in ("pixel_weight", "perceptual_weight"):
            weight = getattr(self, name)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {weight}")
        if self.pixel_weight == 0 and self.perceptual_weight == 0:
            raise ValueError("pixel_weight and perceptual_weight are both 0: nothing to learn")
        if (
            self.model.arch is Arch.UNET
            and self.batch_size == 1
            and self.crop_size <= 2**self.model.depth
        ):
            raise ValueError(
                "batch_size 1 with crops no larger than the network's bottleneck "
                f"(2**depth = {2**self.model.depth}) leaves BatchNorm a single value; "
                "use a larger batch or crop"
            )
        if self.model.base in BIT_BASES and (
            self.task is not Task.EXPAND or self.model.bits != self.bits
        ):
            raise ValueError(
                f"the {self.model.base.value} base needs task 'expand' and model.bits equal to bits"
            )
        if self.model.threshold_map and not all(
            d.method in ORDERED_METHODS for d in self.degradations
        ):
            raise ValueError(
                "a threshold map needs ordered-dither inputs: halftone method 'ordered', "
                "'bayer-4x4' or 'bayer-8x8'"
            )
        if self.model.threshold_map and self.noise_fraction > 0:
            raise ValueError(
                "noisy crops are dithered on their own, so their thresholds do not follow the "
                "image's threshold map: use noise_fraction 0 with a threshold-map model"
            )

    @property
    def degradations(self) -> tuple[Degradation, ...]:
        """The degradations that make the network's inputs (one per crop, drawn evenly)."""
        if self.task is Task.EXPAND:
            return (Degradation(DegradationMode.QUANTIZE, bits=self.bits),)
        if self.halftone_method in HALFTONE_SETS:
            return tuple(
                Degradation(DegradationMode.HALFTONE, method=m, serpentine=s)
                for m, s in HALFTONE_SETS[self.halftone_method]
            )
        return (Degradation(DegradationMode.HALFTONE, method=self.halftone_method),)

    @property
    def degradation(self) -> Degradation:
        """The first of :attr:`degradations` (the only one unless the halftones are mixed)."""
        return self.degradations[0]

    @property
    def degradation_label(self) -> str:
        """``3-bit``, ``halftone floyd-steinberg``, ``halftone mix (10 methods)`` or
        ``halftone ordered (2 methods)``."""
        if len(self.degradations) > 1:
            name = "mix" if self.halftone_method == MIXED_HALFTONES else self.halftone_method
            return f"halftone {name} ({len(self.degradations)} methods)"
        return self.degradation.label

    @property
    def loss_name(self) -> str:
        """The loss in words, e.g. ``conv1_1``, ``conv1_1 + 1e+05 x mse`` or ``l1``."""
        terms = []
        if self.perceptual_weight:
            weight = "" if self.perceptual_weight == 1 else f"{self.perceptual_weight:g} x "
            terms.append(weight + self.loss_layer.value)
        if self.pixel_weight:
            weight = "" if self.pixel_weight == 1 else f"{self.pixel_weight:g} x "
            terms.append(weight + self.pixel_loss.value)
        return " + ".join(terms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (enums as their values)."""
        data = asdict(self)
        for key in ("task", "loss_layer", "device", "lr_schedule", "pixel_loss"):
            data[key] = getattr(self, key).value
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(data, dict):
            raise TypeError(f"a training recipe must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**data)

    def lr_at(self, iteration: int) -> float:
        """Learning rate of the step after ``iteration`` finished steps."""
        if self.lr_schedule is LrSchedule.CONSTANT:
            return self.lr
        low = self.lr / 100
        progress = min(iteration / self.iterations, 1.0)
        return low + (self.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _enum(kind: type[Enum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {what} {value!r}; choose one of {choices}") from None


def _bounded(name: str, value: int) -> None:
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
