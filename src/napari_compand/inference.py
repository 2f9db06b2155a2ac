"""Restoration with a trained network: tiled, blended, any image size, any dtype.

>>> from napari_compand.inference import restore          # doctest: +SKIP
>>> clean = restore(halftone_image, "inverse-halftone/conv1_1")  # doctest: +SKIP

How an image is processed
-------------------------
Every 2D plane (each image of a stack; RGB(A) images as one colour plane) is cut
into ``tile_size`` squares that overlap by ``overlap`` pixels. Tiles start on
multiples of the network's down-sampling factor ``2**depth``, so each tile sees
the same pixel grid as the whole image would. A tile's prediction is not used in
the ``margin`` pixels next to an inner edge (half the network's receptive
radius, :attr:`LoadedModel.context`), and between the margins of two tiles the
predictions are blended with linear ramps whose weights sum to one:

.. math::

    \\hat I(y, x) = \\sum_t w_t(y)\\, v_t(x)\\, f(T_t)(y, x), \\qquad
    \\sum_t w_t(y) v_t(x) = 1,

where :math:`T_t` is tile ``t``. The overlap is at least ``2 margin + 16`` and
the tile at least twice the overlap (smaller requests are raised, with a
:class:`TileSizeWarning`); then a tiled result is within one grey level of the
untiled one (tested on 1024x1024 images for every shipped architecture).
Finished rows are converted to the output dtype band by band, so memory stays
bounded by a few tile rows whatever the image size.

Input values are scaled to [0, 1] (uint8 / 255, uint16 / 65535, floats as they
are, which must lie in [0, 1]) and the result comes back in the input's dtype
and range. Grey images go through a colour model's grey-only partner when the zoo
ships one (``<name>-grey``), else through the colour model as three equal
channels (the output is the channel mean); colour images go through a grey model
channel by channel. The alpha channel of RGBA and grey + alpha passes through
unchanged.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Generator
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._compat import release_freed_memory
from ._device import resolve_device
from ._steps import Cancelled, Progress, drive
from ._validation import check_image, dtype_max, guess_rgb
from .degrade import (
    HALFTONE_SETS,
    Degradation,
    DegradationMode,
    OrderedDither,
    detect_ordered_dither,
    dither_thresholds,
    keep_in_bin,
    keep_in_dither,
)
from .models import Restorer
from .vocabulary import (
    ENSEMBLE_VIEWS,
    HALFTONE_SETS_IN_WORDS,
    ORDERED_METHODS,
    VIEW_COUNTS,
    Base,
    Task,
    View,
)

__all__ = [
    "DITHER_AGREEMENT",
    "ENSEMBLE_VIEWS",
    "PRECISIONS",
    "LoadedModel",
    "RestorationCancelled",
    "RestoreOptions",
    "TileSizeWarning",
    "default_views",
    "ensemble_views",
    "fit_warning",
    "least_tile_size",
    "load_model",
    "restore",
    "restore_steps",
    "tile_count",
    "tiling",
]

#: Accepted ``precision`` values; ``auto`` is float16 on CUDA, float32 elsewhere.
PRECISIONS = ("auto", "float32", "float16", "bfloat16")


class RestorationCancelled(Cancelled):
    """Raised by :func:`restore` when ``should_stop`` returned True."""


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference, with what its checkpoint says about it."""

    network: Restorer
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The zoo's grey-only partner of a colour model (:func:`~napari_compand.zoo.grey_partner`)
    grey: LoadedModel | None = None

    @property
    def task(self) -> str | None:
        """``expand`` or ``inverse-halftone`` (``None`` when unknown)."""
        return self.metadata.get("task")

    @property
    def loss_layer(self) -> str | None:
        """VGG19 layer of the training loss (``None`` when unknown)."""
        return self.metadata.get("loss_layer")

    @property
    def bits(self) -> int | None:
        """Input bit depth of an expansion model."""
        return self.metadata.get("bits")

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (colour)."""
        return self.network.config.channels

    @property
    def multiple(self) -> int:
        """Down-sampling factor ``2**depth``: tiles start on multiples of it."""
        return self.network.multiple

    @property
    def context(self) -> int:
        """Pixels of context a tile keeps at its inner edges (see :data:`CONTEXT_SHARE`)."""
        return math.ceil(CONTEXT_SHARE * self.network.receptive_radius)


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_LOCK = threading.RLock()  # a model loads its grey partner


def load_model(model: str | Path | Restorer | LoadedModel) -> LoadedModel:
    """A zoo name, a checkpoint file or a network -> :class:`LoadedModel`.

    Names are looked up in :mod:`napari_compand.zoo` first (shipped models and
    those trained in this session), then as file paths. Loaded files are cached
    (keyed by path, inode, size and modification time in nanoseconds), so
    repeated calls are cheap and a replaced file is read again.

    Raises
    ------
    FileNotFoundError
        If ``model`` is neither a zoo name nor an existing file.
    napari_compand.checkpoints.CheckpointError
        If the file is not a readable napari-compand checkpoint.
    """
    from . import zoo
    from .checkpoints import file_version, load_checkpoint

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, Restorer):
        return LoadedModel(model.eval(), "custom model")
    if not isinstance(model, (str, Path)):
        raise TypeError(
            f"model must be a zoo name, a checkpoint path, a Restorer or a LoadedModel; "
            f"got {type(model).__name__}"
        )
    name = str(model)
    path = zoo.path_of(name)
    if path is None:
        path = Path(model).expanduser()
        if not path.is_file() and (path.suffix or len(path.parts) > 2 or path.is_dir()):
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        if not path.is_file():
            raise FileNotFoundError(
                f"{name!r} is neither a model of the zoo nor a checkpoint file; "
                f"{zoo.retired_note(name)}zoo models: {', '.join(zoo.names())}"
            )
        name = path.stem
    key = file_version(path)
    with _CACHE_LOCK:
        if key not in _CACHE:
            checkpoint = load_checkpoint(path)
            network = checkpoint.build_model().float()
            label = checkpoint.metadata.get("zoo_name", name)
            partner = zoo.grey_partner(label) if path == zoo.path_of(label) else None
            grey = _grey_partner(network, load_model(partner)) if partner else None
            _CACHE[key] = LoadedModel(network, label, checkpoint.metadata, grey)
        return _CACHE[key]


def _grey_partner(network: Restorer, grey: LoadedModel) -> LoadedModel:
    """``grey``, checked to restore what ``network`` restores, on tiles planned for it.

    The partner needs one channel and the colour model's base, bits and grid; its
    receptive field may be smaller than the colour model's (a colour model grown deeper,
    ``models.deeper_version``, keeps its partner), not larger: tile sizes that callers
    plan for the colour model (:func:`least_tile_size`) then also fit the partner.
    """
    from .checkpoints import CheckpointError

    mine, theirs = network.config, grey.network.config
    same = ("base", "bits", "sigma", "multiple")
    if theirs.channels != 1 or any(getattr(mine, k) != getattr(theirs, k) for k in same):
        raise CheckpointError(
            f"{grey.name} cannot be the grey partner of a {mine.channels}-channel "
            f"{mine.base.value} model: it needs 1 channel and the same base and grid"
        )
    if grey.network.receptive_radius > network.receptive_radius:
        raise CheckpointError(
            f"{grey.name} sees further ({grey.network.receptive_radius} px) than its colour "
            f"model ({network.receptive_radius} px), so tiles planned for the colour model "
            "would not fit it"
        )
    return grey


@dataclass(frozen=True)
class RestoreOptions:
    """How :func:`restore` and :func:`restore_steps` run (one home for the options).

    Parameters
    ----------
    rgb
        Whether the last axis holds channels (``None``: napari's guess, plus a last
        axis of 2 as grey + alpha).
    device
        ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
    tile_size, overlap
        Tile edge and overlap in pixels (``None``: a quarter of the tile). Both are
        rounded to multiples of the network's ``2**depth`` and raised, with a
        :class:`TileSizeWarning`, to the smallest values that tile without seams:
        the overlap to twice the network's context (half its receptive radius)
        plus a 16 px cross-fade, the tile to twice the overlap. Smaller tiles use
        less memory.
    batch_size
        Tiles per forward pass (``None``: 4 on CUDA, where batching pays, 1 elsewhere).
    precision
        One of :data:`PRECISIONS`: autocast dtype of the network.
    consistent
        Expansion models only: clamp each restored pixel into the Eq. 2 bin of
        its low-bit input (:func:`~napari_compand.degrade.keep_in_bin`), so the
        result re-quantizes to the input. Never lowers PSNR. (Models whose output
        is in the bin by construction always are; so is the output of a model that
        reads a Bayer dither's threshold map inside each pixel's threshold
        interval, :func:`~napari_compand.degrade.keep_in_dither`, when the dither
        is one of those matrices: :data:`DITHER_AGREEMENT`.)
    self_ensemble
        How many views of every tile to average, 1, 2 or 8, for that many times the
        time (:data:`ENSEMBLE_VIEWS`): for expansion the tile and its quarter turn, or
        every rotation and flip; for inverse halftoning (error diffusion has a
        direction) the tile and copies shifted by a pixel or a few. ``True`` means 8,
        ``False`` 1. ``None`` (default): :func:`default_views`, 2.
    grey_partner
        Grey images (and grey + alpha) go through the model's grey-only partner
        when the zoo ships one (:func:`napari_compand.zoo.grey_partner`); False
        sends them through the colour model as three equal channels.
    """

    rgb: bool | None = None
    device: str = "auto"
    tile_size: int = 1024
    overlap: int | None = None
    batch_size: int | None = None
    precision: str = "auto"
    consistent: bool = False
    self_ensemble: bool | int | None = None
    grey_partner: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.self_ensemble, bool):
            object.__setattr__(self, "self_ensemble", 8 if self.self_ensemble else 1)
        if self.self_ensemble is not None and self.self_ensemble not in VIEW_COUNTS:
            raise ValueError(
                f"self_ensemble averages 1, 2 or 8 views (or True: 8, False: 1, None: the "
                f"model's default), got {self.self_ensemble!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @classmethod
    def of(cls, options: RestoreOptions | None, settings: dict[str, Any]) -> RestoreOptions:
        """``options`` (or the defaults) with ``settings`` (option names) replacing fields."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(
                f"unknown restore option(s) {', '.join(unknown)}; "
                f"options: {', '.join(sorted(known))}"
            )
        return replace(options or cls(), **settings)


def restore(
    image: Any,
    model: str | Path | Restorer | LoadedModel,
    options: RestoreOptions | None = None,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings: Any,
) -> np.ndarray:
    """Restore a degraded image (bit-depth expansion or inverse halftoning).

    >>> restore(halftoned, "inverse-halftone/conv1_1", tile_size=512)  # doctest: +SKIP

    Parameters
    ----------
    image
        ``(Y, X)`` grey, ``(Y, X, 2)`` grey + alpha, ``(Y, X, 3|4)`` RGB(A), or a
        stack ``(..., Y, X[, C])``; uint8, uint16 or float in [0, 1]. Never modified;
        alpha passes through.
    model
        Zoo name (see :func:`napari_compand.zoo.names`), checkpoint path,
        :class:`~napari_compand.models.Restorer` or :class:`LoadedModel`.
    options, **settings
        :class:`RestoreOptions`, and/or its fields by name (``rgb``, ``device``,
        ``tile_size``, ``overlap``, ``batch_size``, ``precision``, ``consistent``,
        ``self_ensemble``, ``grey_partner``), which replace those of ``options``.
    progress
        Called with ``(tiles done, tiles total)``.
    should_stop
        Polled between tiles; returning True raises :class:`RestorationCancelled`.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    A CUDA out-of-memory error does not fail the call: the plane is run again
    with half the batch, then half the tile size. GPU memory is released after
    the run.
    """
    steps = restore_steps(image, model, options, **settings)
    return drive(steps, progress, should_stop, RestorationCancelled, "restoration was cancelled")


def restore_steps(
    image: Any,
    model: str | Path | Restorer | LoadedModel,
    options: RestoreOptions | None = None,
    **settings: Any,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`restore` as a generator: yields ``(tiles done, total)``, returns the result.

    Closing the generator (e.g. a napari worker's ``quit()``) stops between tiles
    and releases GPU memory.
    """
    opts = RestoreOptions.of(options, settings)
    loaded = load_model(model)
    if opts.consistent and (loaded.task != Task.EXPAND or loaded.bits is None):
        raise ValueError(
            f"consistent=True needs a bit-depth expansion model with known bits; "
            f"{loaded.name!r} is a {loaded.task or 'model of unknown task'}"
        )
    array = check_image(image, unit_range=True, halftone=True)
    rgb = guess_rgb(array, opts.rgb)
    grey_image = not rgb or array.shape[-1] == 2
    if grey_image and opts.grey_partner and loaded.grey is not None:
        loaded = loaded.grey
    config = loaded.network.config
    dither = _dither_of(array, rgb, loaded) if config.threshold_map else None
    spatial = (-3, -2) if rgb else (-2, -1)
    transposed = dither is not None and dither.transposed
    if transposed:
        # the transpose of a dither by the transposed matrix is one by the matrix itself,
        # the kind the network was trained on
        array = np.swapaxes(array, *spatial)
        dither = OrderedDither(dither.method, dither.offset[::-1])
    target = resolve_device(opts.device)
    batch_size = opts.batch_size or (4 if target.type == "cuda" else 1)
    plan = _TilePlan.for_model(loaded, opts.tile_size, opts.overlap)
    planes = _planes(array.shape, rgb, loaded.channels)
    views = ensemble_views(loaded, opts.self_ensemble or default_views(loaded))
    forward = _forward if len(views) == 1 else functools.partial(_ensemble_forward, views=views)
    result = yield from _run(
        array, loaded, planes, plan, target, batch_size, opts.precision, forward, dither
    )
    if config.base is Base.BIN:
        # in the bin by construction; this only undoes rounding across a bin edge
        # and puts the bins on the input's own scale (e.g. Eq. 2 with h = 16)
        result = keep_in_bin(result, array, config.bits, rgb=rgb)
    elif opts.consistent:
        result = keep_in_bin(result, array, loaded.bits, rgb=rgb)
    if dither is not None:  # the map model's output dithers back to its input
        result = keep_in_dither(
            result, array, dither.method, dither.offset, rgb=rgb, min_agreement=DITHER_AGREEMENT
        )
    if dither is not None and transposed:
        result = np.ascontiguousarray(np.swapaxes(result, *spatial))
    return result


#: Share of pixels whose restoration must already lie on the side of its threshold that the
#: dither says, for :func:`~napari_compand.degrade.keep_in_dither` to clamp the rest
#: (its ``min_agreement``) when a model that reads threshold maps restores a dither. The
#: shipped model's restorations of Bayer dithers made as :func:`~napari_compand.degrade.halftone`
#: makes them agree on 98.2–99.9 % (Set5 + Set14, colour and grey), of ImageMagick's
#: ``-ordered-dither o4x4`` on 99.7–99.9 %. A dither by a foreign matrix that the detector
#: takes for a Bayer one (ImageMagick's ``o8x8`` was one, 91–97.7 %, where clamping cost
#: 0.85 dB, until the detector learnt the transposed matrix) is left unclamped.
DITHER_AGREEMENT = 0.98


def _dither_of(array: np.ndarray, rgb: bool, loaded: LoadedModel) -> OrderedDither:
    """The Bayer dither whose threshold map ``loaded`` reads beside the image; a clear
    error if the image is not one."""
    from . import zoo

    found = detect_ordered_dither(array, rgb=rgb)
    if found is None:
        raise ValueError(
            f"{loaded.name} restores Bayer ordered dithers and reads their threshold map, "
            "but this image does not look like a Bayer 4x4 or 8x8 dither; use "
            f"{zoo.default_model(Task.INVERSE_HALFTONE)} for error-diffusion halftones"
        )
    return found


def tile_count(
    shape: tuple[int, ...],
    model: str | Path | Restorer | LoadedModel,
    *,
    rgb: bool,
    tile_size: int = 1024,
    overlap: int | None = None,
) -> int:
    """How many ``(done, total)`` steps :func:`restore_steps` yields for ``shape``."""
    loaded = load_model(model)
    plan = _TilePlan.for_model(loaded, tile_size, overlap)
    planes = _planes(shape, rgb, loaded.channels)
    return len(planes) * plan.count(*_plane_size(shape, rgb))


def _halftone_in_words(degradation: Degradation) -> str:
    return degradation.method + (" serpentine" if degradation.serpentine else "")


def fit_warning(
    model: str | Path | Restorer | LoadedModel, degradation: Degradation | None
) -> str | None:
    """Why ``model`` does not fit data degraded by ``degradation``, or ``None`` if it does.

    ``degradation`` is what the data's metadata records or what
    :func:`~napari_compand.degrade.detect_degradation` finds in its pixels.
    ``None`` (nothing recognised) is a mismatch for every model: the data looks
    neither halftoned nor quantized. So is a halftone that the model was not trained
    on (by the ``halftone_method`` of its metadata), unless it is the zoo's best model
    for that halftone all the same (:func:`~napari_compand.zoo.default_model`): the
    Floyd–Steinberg models restore Jarvis–Judice–Ninke, Sierra and Atkinson halftones
    below a plain blur, Sierra Lite ones best.
    """
    loaded = load_model(model)
    if loaded.task is None:
        return None
    if degradation is None:
        return "the image looks neither halftoned nor reduced in bit depth"
    if degradation.mode is DegradationMode.HALFTONE:
        if loaded.task != Task.INVERSE_HALFTONE:
            return f"the image looks like a halftone, but {loaded.name} expands bit depth"
        if loaded.network.config.threshold_map and degradation.method not in ORDERED_METHODS:
            return (
                f"{loaded.name} restores Bayer ordered dithers only, and the image does not "
                "look like one"
            )
        method = loaded.metadata.get("halftone_method")
        trained = HALFTONE_SETS.get(method, ((method, False),)) if method else None
        if trained and (degradation.method, degradation.serpentine) not in trained:
            from . import zoo

            best = zoo.default_model(Task.INVERSE_HALFTONE, halftone=degradation)
            if best != loaded.name:  # else it is still the zoo's best for that halftone
                seen = HALFTONE_SETS_IN_WORDS.get(method, f"{method} halftones")
                return (
                    f"the image looks like a {_halftone_in_words(degradation)} halftone, but "
                    f"{loaded.name} was trained on {seen}; {best} restores it best"
                )
        return None
    if loaded.task != Task.EXPAND:
        return (
            f"the image looks like {degradation.bits}-bit data, but {loaded.name} inverse-halftones"
        )
    if loaded.bits != degradation.bits:
        return (
            f"the image looks like {degradation.bits}-bit data, but {loaded.name} expects "
            f"{loaded.bits}-bit input"
        )
    return None


def tiling(
    model: str | Path | Restorer | LoadedModel, tile_size: int = 1024, overlap: int | None = None
) -> tuple[int, int]:
    """The ``(tile_size, overlap)`` that :func:`restore` will use for ``model``.

    Requests below the smallest seam-free values are raised, with a
    :class:`TileSizeWarning` (see the module docstring).
    """
    plan = _TilePlan.for_model(load_model(model), tile_size, overlap)
    return plan.tile, plan.overlap


def least_tile_size(model: str | Path | Restorer | LoadedModel) -> int:
    """The smallest ``tile_size`` that :func:`restore` uses for ``model`` unchanged.

    It is twice the least overlap: two blending margins of the model's context
    (:data:`CONTEXT_SHARE` of its receptive radius) plus :data:`BLEND_PIXELS`,
    rounded up to the network's grid.

    Examples
    --------
    >>> least_tile_size("inverse-halftone/resunet")
    272
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TileSizeWarning)
        return tiling(model, 1)[0]


def _plane_size(shape: tuple[int, ...], rgb: bool) -> tuple[int, int]:
    """``(height, width)`` of the 2D planes of an image of ``shape``."""
    return shape[-3:-1] if rgb else shape[-2:]


def _run(array, loaded, planes, plan, target, batch_size, precision, forward, dither=None):
    network = loaded.network
    original_device = next(network.parameters()).device
    # alpha (and anything the planes do not cover) starts as a copy of the input
    with_alpha = planes[0].colour and array.shape[-1] in (2, 4)
    output = array.copy() if with_alpha else np.empty_like(array)
    height, width = _plane_size(array.shape, planes[0].colour)
    try:
        network.to(target)
        autocast = _autocast(target, precision)
        done = 0
        for i, plane in enumerate(planes):
            while True:
                before = done
                total = done + (len(planes) - i) * plan.count(height, width)
                try:
                    for _ in _restore_plane(
                        array,
                        output,
                        plane,
                        network,
                        plan,
                        target,
                        batch_size,
                        autocast,
                        forward,
                        dither,
                    ):
                        done += 1
                        yield done, total
                    break
                except torch.OutOfMemoryError:
                    done = before
                    _release(target)
                    batch_size, plan = _smaller(batch_size, plan)
        return output
    finally:
        network.to(original_device)
        _release(target)


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _smaller(batch_size: int, plan: _TilePlan) -> tuple[int, _TilePlan]:
    """After an out-of-memory error: halve the batch, then the tile.

    The overlap shrinks with the tile (:meth:`_TilePlan.default_overlap`, never growing), down
    to the least this network needs, so a large requested tile can still fall to the smallest
    seam-free one.
    """
    if batch_size > 1:
        return batch_size // 2, plan
    half = plan.tile // 2 // plan.multiple * plan.multiple
    overlap = min(plan.overlap, _TilePlan.default_overlap(half, plan.multiple, plan.margin))
    if half < 2 * overlap:
        raise MemoryError(
            f"out of memory even with one tile of {plan.tile} px per pass (the smallest "
            "without seams for this network); use device='cpu' or close other programs "
            "using the GPU"
        )
    return 1, _TilePlan(half, overlap, plan.multiple, plan.margin)


def _autocast(device: torch.device, precision: str):
    if precision == "auto":
        precision = "float16" if device.type == "cuda" else "float32"
    if precision == "float32":
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, precision))


@dataclass(frozen=True)
class _Plane:
    """One unit of work: an index into the image and how to feed the network."""

    index: tuple
    colour: bool  # the indexed data is (Y, X, C>=3), otherwise (Y, X)
    channel: int | None = None  # colour image through a grey model: this channel


def _planes(shape: tuple[int, ...], rgb: bool, channels: int) -> list[_Plane]:
    """The units of work for an image of ``shape`` and a model of ``channels`` channels."""
    if not rgb:
        return [_Plane(index, colour=False) for index in np.ndindex(*shape[:-2])]
    if shape[-1] == 2:  # grey + alpha: the grey channel
        return [_Plane(index, colour=True, channel=0) for index in np.ndindex(*shape[:-3])]
    per_image = [None] if channels == 3 else [0, 1, 2]
    return [
        _Plane(index, colour=True, channel=c)
        for index in np.ndindex(*shape[:-3])
        for c in per_image
    ]


class TileSizeWarning(UserWarning):
    """A tile size or overlap was raised to the smallest that tiles without seams."""


#: Pixels over which two tiles' predictions are cross-faded, beyond their margins.
BLEND_PIXELS = 16

#: Share of a network's receptive radius that tiles keep as context at their inner
#: edges: beyond it the influence of the border has decayed below one grey level
#: (measured for every shipped architecture on a 1024x1024 image, tests/test_tiling.py).
CONTEXT_SHARE = 0.5


@dataclass(frozen=True)
class _TilePlan:
    """How a plane is cut into tiles.

    Tiles of ``tile`` pixels start on multiples of ``multiple`` and overlap by
    ``overlap``. Next to a tile's inner edge, ``margin`` pixels of its prediction
    are not used (they lack context); between the margins of two overlapping
    tiles the predictions are cross-faded linearly.
    """

    tile: int
    overlap: int
    multiple: int
    margin: int = 0

    @classmethod
    def for_model(cls, loaded: LoadedModel, tile: int, overlap: int | None) -> _TilePlan:
        """The plan for ``loaded``'s grid and receptive field (``overlap=None``: a
        quarter of the tile, at least the model's minimum)."""
        return cls.make(tile, overlap, loaded.multiple, loaded.context)

    @staticmethod
    def least_overlap(multiple: int, margin: int) -> int:
        """The smallest seam-free overlap: two context margins and the blend, on the grid."""
        return _round_up(2 * margin + BLEND_PIXELS, multiple)

    @staticmethod
    def default_overlap(tile: int, multiple: int, margin: int) -> int:
        """The overlap of a ``tile`` when none is asked for: a quarter, at least the least."""
        return max(_TilePlan.least_overlap(multiple, margin), tile // 4 // multiple * multiple)

    @classmethod
    def make(cls, tile: int, overlap: int | None, multiple: int, margin: int = 0) -> _TilePlan:
        if tile < 1 or (overlap is not None and overlap < 0):
            raise ValueError(f"tile_size must be positive and overlap >= 0; got {tile}, {overlap}")
        least_overlap = cls.least_overlap(multiple, margin)
        if overlap is None:
            overlap = cls.default_overlap(tile, multiple, margin)
        else:
            overlap = _round_up(overlap, multiple)
            if overlap < least_overlap:
                warnings.warn(
                    f"tile overlap raised from {overlap} to {least_overlap} px: this network "
                    f"needs {margin} px of context at tile edges",
                    TileSizeWarning,
                    stacklevel=4,
                )
                overlap = least_overlap
        least_tile = 2 * overlap
        rounded = max(multiple, tile // multiple * multiple)
        if rounded < least_tile:
            warnings.warn(
                f"tile_size raised from {tile} to {least_tile} px, the smallest that tiles "
                f"this network without seams ({overlap} px overlap)",
                TileSizeWarning,
                stacklevel=4,
            )
            rounded = least_tile
        return cls(rounded, overlap, multiple, margin)

    def spans(self, length: int) -> list[tuple[int, int]]:
        """``[start, end)`` of the tiles along an axis of ``length`` pixels."""
        stride = self.tile - self.overlap
        spans, start = [], 0
        while True:
            spans.append((start, min(start + self.tile, length)))
            if start + self.tile >= length:
                return spans
            start += stride

    def weights(self, spans: list[tuple[int, int]]) -> list[np.ndarray]:
        """Blending weights of each span; they sum to one at every pixel.

        Across an overlap of ``n`` pixels the weight is 0 in the ``margin`` next to
        the tile's edge (where its prediction lacks context), ramps linearly over
        the middle ``n - 2 margin`` pixels and is 1 beyond.
        """
        ramps = []
        for i, (start, end) in enumerate(spans):
            w = np.ones(end - start, np.float32)
            if i > 0:
                n = spans[i - 1][1] - start
                w[:n] = _ramp(n, self.margin)
            if i + 1 < len(spans):
                n = end - spans[i + 1][0]
                w[end - start - n :] = 1 - _ramp(n, self.margin)
            ramps.append(w)
        return ramps

    def count(self, height: int, width: int) -> int:
        return len(self.spans(height)) * len(self.spans(width))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _ramp(n: int, margin: int) -> np.ndarray:
    """0 for the first ``margin`` of ``n`` pixels, linear to 1 up to ``n - margin``."""
    k = np.arange(n, dtype=np.float32) + 0.5
    return np.clip((k - margin) / max(n - 2 * margin, 1), 0, 1)


def _restore_plane(
    array, output, plane, network, plan, device, batch_size, autocast, forward, dither=None
):
    """Restore one plane band by band; yields once per tile. ``dither``: ``(method,
    offset)`` of the ordered dither whose threshold map goes beside each tile."""
    source = array[plane.index]
    target = output[plane.index]
    if plane.channel is not None:
        source, target = source[..., plane.channel], target[..., plane.channel]
    elif plane.colour:
        source, target = source[..., :3], target[..., :3]
    height, width = source.shape[:2]
    rows, cols = plan.spans(height), plan.spans(width)
    row_w, col_w = plan.weights(rows), plan.weights(cols)
    scale = dtype_max(array.dtype)
    depth = source.shape[2] if source.ndim == 3 else 1
    pending: np.ndarray | None = None
    for r, (y0, y1) in enumerate(rows):
        band = np.zeros((y1 - y0, width, depth), np.float32)
        if pending is not None:
            band[: len(pending)] += pending
        tiles = [(x0, x1, c) for c, (x0, x1) in enumerate(cols)]
        for first in range(0, len(tiles), batch_size):
            group = tiles[first : first + batch_size]
            # equal-width tiles in one pass; the last column may be narrower
            for chunk in _same_width(group):
                batch = np.stack(
                    [_tile_input(source, y0, y1, x0, x1, scale, dither) for x0, x1, _ in chunk]
                )
                result = forward(network, batch, device, autocast)
                for (x0, x1, c), tile in zip(chunk, result, strict=True):
                    weight = row_w[r][:, None, None] * col_w[c][None, :, None]
                    band[:, x0:x1] += tile * weight
                    yield
        finished = rows[r + 1][0] - y0 if r + 1 < len(rows) else y1 - y0
        _store(band[:finished], target[y0 : y0 + finished], array.dtype, scale)
        pending = band[finished:]
        release_freed_memory()


def _same_width(group):
    widths: dict[int, list] = {}
    for tile in group:
        widths.setdefault(tile[1] - tile[0], []).append(tile)
    return list(widths.values())


def _tile_input(source, y0, y1, x0, x1, scale, dither) -> np.ndarray:
    """The network's ``(c, h, w)`` input for one tile: its pixels in [0, 1], then the
    threshold map of ``dither`` (an :class:`~napari_compand.degrade.OrderedDither`) there,
    if given."""
    tile = _as_chw(source[y0:y1, x0:x1], scale)
    if dither is None:
        return tile
    method, (dy, dx), transposed = dither
    thresholds = dither_thresholds(method, tile.shape[1:], (dy + y0, dx + x0), transposed)
    return np.concatenate([tile, thresholds[None]])


def _as_chw(tile: np.ndarray, scale: float) -> np.ndarray:
    tile = tile.astype(np.float32) / np.float32(scale) if scale != 1.0 else tile.astype(np.float32)
    return tile.transpose(2, 0, 1) if tile.ndim == 3 else tile[None]


def _forward(network: Restorer, batch: np.ndarray, device: torch.device, autocast) -> np.ndarray:
    """``(N, c, h, w)`` in [0, 1] -> ``(N, h, w, c)`` float32 predictions in [0, 1]."""
    config = network.config
    channels = batch.shape[1] - int(config.threshold_map)  # the image's; then the map
    # channels-last memory: oneDNN's convolutions run about 1.35x faster on it than on
    # NCHW (a ResUNet M on 768x512: 0.35 vs 0.48 s on 2 CPU cores)
    x = torch.from_numpy(batch).to(device).contiguous(memory_format=torch.channels_last)
    if config.channels == 3 and channels == 1:
        x = torch.cat([x[:, :1].expand(-1, 3, -1, -1), x[:, 1:]], dim=1)
    with torch.inference_mode():
        with autocast:
            y = network(x)
        y = y.float().clamp_(0, 1)
        if network.config.channels == 3 and channels == 1:
            y = y.mean(dim=1, keepdim=True)
        return y.permute(0, 2, 3, 1).cpu().numpy()


def _ensemble_forward(
    network: Restorer, batch: np.ndarray, device, autocast, views: tuple[View, ...]
) -> np.ndarray:
    """:func:`_forward` averaged over ``views`` (:class:`~napari_compand.vocabulary.View`)
    of the batch. A shifted view has no restoration for its last ``dy`` rows and ``dx``
    columns (they were pushed out); there the other views are averaged."""
    total = count = None
    height, width = batch.shape[2:]
    for view in views:
        batch_view = batch
        if view.dy or view.dx:  # reflect the first rows in, push the last ones out: same size
            pad = ((0, 0), (0, 0), (view.dy, 0), (view.dx, 0))
            batch_view = np.pad(batch, pad, mode="reflect")[..., :height, :width]
        batch_view = np.rot90(batch_view, view.turns, axes=(2, 3))
        batch_view = batch_view[..., ::-1] if view.mirrored else batch_view
        # a copy with positive strides (torch needs them), channels last as _forward runs it
        batch_view = np.ascontiguousarray(batch_view.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        out = _forward(network, batch_view, device, autocast)  # (N, h, w, c)
        out = out[:, :, ::-1] if view.mirrored else out
        out = np.rot90(out, -view.turns, axes=(1, 2))
        if total is None:
            total = np.zeros(out.shape, np.float32)
            count = np.zeros((1, height, width, 1), np.float32)
        # shifted back; a shift's last dy rows and dx columns have no restoration
        total[:, : height - view.dy, : width - view.dx] += out[:, view.dy :, view.dx :]
        count[:, : height - view.dy, : width - view.dx] += 1
    return total / count


def ensemble_views(model: LoadedModel, count: int) -> tuple[View, ...]:
    """The ``count`` views (:data:`VIEW_COUNTS`) that :func:`restore` averages for
    ``model``'s task (:data:`ENSEMBLE_VIEWS`; a model of unknown task gets expansion's)."""
    if count not in VIEW_COUNTS:
        raise ValueError(f"a self-ensemble averages 1, 2 or 8 views, got {count!r}")
    task = Task.INVERSE_HALFTONE if model.task == Task.INVERSE_HALFTONE else Task.EXPAND
    return ENSEMBLE_VIEWS[task][count]


def default_views(model: LoadedModel) -> int:
    """How many views :func:`restore` averages for ``model`` by default: 2, for either
    task (:data:`ENSEMBLE_VIEWS`), for twice the time of 1.

    Measured on Set5 + Set14 colour / grey with the shipped defaults, 1 -> 2 views:
    1 bit 18.74 -> 18.81 / 18.13 -> 18.20, 2 bits 25.28 -> 25.40 / 24.69 -> 24.80,
    3 bits 31.65 -> 31.81 / 31.52 -> 31.61 (8 views: 31.86); Floyd–Steinberg inverse
    halftoning (one-pixel shift) 30.58 -> 30.63 / 30.56 -> 30.60.
    """
    return 2 if model.task in (Task.EXPAND, Task.INVERSE_HALFTONE) else 1


def _store(values: np.ndarray, target: np.ndarray, dtype: np.dtype, scale: float) -> None:
    """Write float [0, 1] rows into the output in its dtype."""
    if target.ndim == 2:
        values = values[..., 0]
    if np.dtype(dtype).kind == "u":
        target[...] = np.rint(values * np.float32(scale))
    else:
        target[...] = values
