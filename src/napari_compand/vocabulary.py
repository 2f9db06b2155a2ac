"""The package's vocabulary: every named choice, in one light module.

Tasks, halftoning methods, networks, bases, losses, schedules and devices are
enums (or tuples of names) here, free of torch, numba and scipy, so the command
line can build its parser, and the widgets their menus, without loading them
(``napari-compand --help`` stays fast). The modules that implement a choice
import its name from here.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

__all__ = [
    "BAYER_SIZES",
    "ENSEMBLE_VIEWS",
    "VIEW_COUNTS",
    "BIT_BASES",
    "HALFTONE_BLUR_SIGMA",
    "LIMITS",
    "CURVE_METHODS",
    "DIFFUSION_METHODS",
    "HALFTONE_METHODS",
    "ORDERED_METHODS",
    "HALFTONE_SET_NAMES",
    "HALFTONE_SETS_IN_WORDS",
    "MIXED_HALFTONES",
    "Arch",
    "Base",
    "Device",
    "LossLayer",
    "LrSchedule",
    "PixelLoss",
    "Task",
    "View",
]

#: Error-diffusion methods (kernels in :mod:`napari_compand._diffusion`).
DIFFUSION_METHODS: tuple[str, ...] = (
    "floyd-steinberg",
    "jarvis-judice-ninke",
    "stucki",
    "burkes",
    "sierra",
    "sierra-lite",
    "atkinson",
)

#: Error diffusion along a Hilbert curve instead of rows: Riemersma's, ImageMagick's default
#: dither (:func:`napari_compand._diffusion.riemersma_plane`).
CURVE_METHODS: tuple[str, ...] = ("riemersma",)

#: Sizes of the ordered (Bayer) dither matrices.
BAYER_SIZES: tuple[int, ...] = (2, 4, 8)

#: The ordered (Bayer) dithers, one per matrix size.
ORDERED_METHODS: tuple[str, ...] = tuple(f"bayer-{n}x{n}" for n in BAYER_SIZES)

#: All halftoning methods: error diffusion kernels, along a curve, then ordered Bayer dithers.
HALFTONE_METHODS: tuple[str, ...] = DIFFUSION_METHODS + CURVE_METHODS + ORDERED_METHODS

#: Name of the halftone mix in training recipes (see ``degrade.HALFTONE_MIX``).
MIXED_HALFTONES = "mixed"

#: Named sets of halftones a training recipe can draw from, one per crop (the
#: ``halftone_method`` of a config, besides a single method; ``degrade.HALFTONE_SETS``
#: lists their members): the ten-halftone mix, the ordered (Bayer 4x4 and 8x8) dithers,
#: and Floyd–Steinberg in both scan orders.
HALFTONE_SETS_IN_WORDS: dict[str, str] = {
    MIXED_HALFTONES: "ten common halftones",
    "ordered": "Bayer 4x4 and 8x8 ordered dithers",
    "floyd-steinberg-scans": "Floyd–Steinberg halftones in raster and serpentine scan",
}
HALFTONE_SET_NAMES: tuple[str, ...] = tuple(HALFTONE_SETS_IN_WORDS)

#: Gaussian blur sigma (pixels) that best restores Floyd–Steinberg halftones of
#: natural images (a sweep on Set5 + Set14): the classical baseline and the base
#: that the inverse-halftoning networks correct.
HALFTONE_BLUR_SIGMA = 1.2

#: Inclusive ``(low, high)`` bounds of every bounded training and model setting:
#: the configs check them, the Train widget's spin boxes and the command line's
#: help show them (one source for all three).
LIMITS: dict[str, tuple[float, float]] = {
    "bits": (1, 7),
    "crop_size": (16, 4096),
    "batch_size": (1, 4096),
    "iterations": (1, 10_000_000),
    "validate_every": (0, 10_000_000),
    "checkpoint_every": (0, 10_000_000),
    "seed": (0, 2**63 - 1),
    "depth": (1, 10),
    "ngf": (1, 1024),
    "max_channels": (1, 4096),
    "width": (1, 1024),
    "blocks": (0, 64),
    "levels": (1, 8),
}


class Task(str, Enum):
    """What the model learns to undo."""

    EXPAND = "expand"  # l-bit -> 8-bit (bit-depth expansion, companding)
    INVERSE_HALFTONE = "inverse-halftone"

    @classmethod
    def from_degradation(cls, degradation) -> Task:
        """The task that undoes ``degradation`` (a ``degrade.Degradation``):
        bit-depth reduction -> ``expand``, halftoning -> ``inverse-halftone``."""
        mode = getattr(degradation.mode, "value", degradation.mode)
        return cls.EXPAND if mode == "quantize" else cls.INVERSE_HALFTONE

    @property
    def label(self) -> str:
        """How the task reads in layer names and tables: ``expand``, ``inverse halftone``."""
        return self.value.replace("-", " ")

    def model_name(self, variant: str, bits: int | None = None) -> str:
        """The zoo's name for a model: ``expand-3bit/<variant>``, ``inverse-halftone/<variant>``.

        >>> Task.EXPAND.model_name("resunet", bits=4)
        'expand-4bit/resunet'
        """
        if self is Task.EXPAND:
            if bits is None:
                raise ValueError("an expansion model's name needs its input bits")
            return f"expand-{bits}bit/{variant}"
        return f"{self.value}/{variant}"

    @classmethod
    def parse_model_name(cls, name: str) -> tuple[Task, int | None, str]:
        """Inverse of :meth:`model_name`: ``(task, bits or None, variant)``.

        >>> Task.parse_model_name("expand-3bit/conv1_1-pixel")
        (<Task.EXPAND: 'expand'>, 3, 'conv1_1-pixel')

        Raises
        ------
        ValueError
            If ``name`` is not a zoo name.
        """
        stem, _, variant = name.partition("/")
        if stem == cls.INVERSE_HALFTONE.value and variant:
            return cls.INVERSE_HALFTONE, None, variant
        if stem.startswith("expand-") and stem.endswith("bit") and variant:
            bits = stem[len("expand-") : -len("bit")]
            if bits.isdigit():
                return cls.EXPAND, int(bits), variant
        raise ValueError(
            f"{name!r} is not a zoo model name (expand-<l>bit/<variant> or "
            "inverse-halftone/<variant>)"
        )


class LrSchedule(str, Enum):
    """How the learning rate changes over ``iterations``.

    ``constant`` keeps ``lr`` (the paper); ``cosine`` decays it as
    :math:`lr_t = lr_{min} + (lr - lr_{min}) (1 + \\cos(\\pi t / T)) / 2` to
    ``lr_min = lr / 100`` at iteration ``T = iterations``.
    """

    CONSTANT = "constant"
    COSINE = "cosine"


class PixelLoss(str, Enum):
    """The pixel term: ``mse`` (mean squared error) or ``l1`` (mean absolute error)."""

    MSE = "mse"
    L1 = "l1"


class Device(str, Enum):
    """Where to train; ``auto`` picks cuda, then mps, then cpu."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class Arch(str, Enum):
    """Network family: the paper's :class:`UNet` or the full-resolution :class:`ResUNet`."""

    UNET = "unet"
    RESUNET = "resunet"


class Base(str, Enum):
    """Fixed reconstruction that the network corrects (``none``: plain network).

    ``bin`` (bit-depth expansion): the output is the bin floor plus the bin width
    times a sigmoid of the network, :math:`q + w \\sigma(4 f(q) / w)` with the bin
    width :math:`w = 2^{8-l} / 255`, so it never leaves the input's quantization
    bin; an untrained network gives the mid-bin value, and near it the output
    moves one for one with the network (:math:`q + w/2 + f`), as with ``midbin``.
    """

    NONE = "none"
    GAUSSIAN = "gaussian"
    MIDBIN = "midbin"
    BIN = "bin"


#: Bases that need the input bit depth.
BIT_BASES = (Base.MIDBIN, Base.BIN)


class LossLayer(str, Enum):
    """The VGG19 layers of the paper's study."""

    CONV1_1 = "conv1_1"
    CONV2_1 = "conv2_1"
    CONV3_1 = "conv3_1"
    CONV4_1 = "conv4_1"
    CONV5_1 = "conv5_1"


class View(NamedTuple):
    """One view of a self-ensemble: the image shifted ``dy`` pixels down and ``dx`` right
    (edge rows reflected in), then turned ``turns`` quarter turns, then mirrored left to
    right if ``mirrored``; its restoration is mapped back before the views are averaged."""

    turns: int = 0
    mirrored: bool = False
    dy: int = 0
    dx: int = 0


#: How many views a self-ensemble may average (``restore(self_ensemble=N)``).
VIEW_COUNTS: tuple[int, ...] = (1, 2, 8)

#: The views a self-ensemble averages, by task and number (:data:`VIEW_COUNTS`).
#: Quantization has no direction, so expansion averages turned and mirrored copies: 2 is
#: the image and its quarter turn (+0.07 to +0.16 dB over 1 on Set5 + Set14), 8 every
#: rotation and flip. Error diffusion runs left to right, so a turned halftone is another
#: halftone (Floyd–Steinberg with a quarter turn: 30.54 -> 29.03 dB); inverse halftoning
#: averages copies shifted by whole pixels, which meet the network's down-sampling grid at
#: another phase: 2 is the image and its one-pixel diagonal shift (+0.04 to +0.06 dB),
#: 8 eight shifts within 3 pixels (+0.08 on Floyd–Steinberg).
ENSEMBLE_VIEWS: dict[Task, dict[int, tuple[View, ...]]] = {
    Task.EXPAND: {
        1: (View(),),
        2: (View(), View(turns=1)),
        8: tuple(View(turns, mirrored) for turns in range(4) for mirrored in (False, True)),
    },
    Task.INVERSE_HALFTONE: {
        1: (View(),),
        2: (View(), View(dy=1, dx=1)),
        8: tuple(
            View(dy=dy, dx=dx)
            for dy, dx in ((0, 0), (1, 1), (0, 1), (1, 0), (2, 2), (3, 3), (2, 3), (3, 2))
        ),
    },
}
