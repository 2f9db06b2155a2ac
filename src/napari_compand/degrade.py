"""Image degradations of Hou & Qiu: bit-depth reduction (Eq. 2) and halftoning.

Both functions work on 2D grey images, RGB/RGBA images (channels on the last
axis; alpha passes through unchanged) and nD stacks, where every 2D plane is
processed on its own. They never modify their input and return an array of the
input's dtype.

Examples
--------
>>> import numpy as np
>>> from napari_compand.degrade import quantize, halftone
>>> quantize(np.array([[0, 31, 32, 255]], dtype=np.uint8), bits=3)
array([[  0,   0,  32, 224]], dtype=uint8)
>>> np.unique(halftone(np.full((8, 8), 128, dtype=np.uint8)))
array([  0, 255], dtype=uint8)
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._diffusion import (
    DIFFUSION_KERNELS,
    bayer_levels,
    bayer_matrix,
    bayer_thresholds,
    diffuse_plane,
    diffusion_signature,
    ordered_plane,
    riemersma_plane,
)
from ._steps import Progress, drive
from ._validation import (
    check_image,
    colour_channels,
    dtype_max,
    guess_rgb,
    integer_bit_depth,
    plane_indices,
)
from .vocabulary import (
    CURVE_METHODS,
    HALFTONE_BLUR_SIGMA,
    HALFTONE_METHODS,
    HALFTONE_SET_NAMES,
    MIXED_HALFTONES,
    ORDERED_METHODS,
)

__all__ = [
    "FLOAT_MAX_BITS",
    "HALFTONE_BLUR_SIGMA",
    "HALFTONE_METHODS",
    "HALFTONE_MIX",
    "HALFTONE_SETS",
    "KNOWN_HALFTONES",
    "MIXED_HALFTONES",
    "METADATA_KEY",
    "OrderedDither",
    "add_noise",
    "Degradation",
    "DegradationMode",
    "detect_degradation",
    "detect_error_diffusion",
    "detect_ordered_dither",
    "dither_thresholds",
    "error_diffusion_signature",
    "halftone",
    "keep_in_bin",
    "keep_in_dither",
    "max_bits",
    "quantize",
]

#: The halftones people actually have, as ``(method, serpentine)``: what a
#: ``mixed`` inverse-halftoning model is trained on, one drawn per crop.
HALFTONE_MIX: tuple[tuple[str, bool], ...] = (
    ("floyd-steinberg", False),
    ("floyd-steinberg", True),
    ("jarvis-judice-ninke", False),
    ("stucki", False),
    ("burkes", False),
    ("sierra", False),
    ("sierra-lite", False),
    ("atkinson", False),
    ("bayer-4x4", False),
    ("bayer-8x8", False),
)

#: Every halftone that :func:`detect_degradation` names from the pixels and the zoo's
#: models are scored on, as ``(method, serpentine)``: :data:`HALFTONE_MIX` and Riemersma
#: dithering (ImageMagick's default dither, which no model of the mix was trained on).
KNOWN_HALFTONES: tuple[tuple[str, bool], ...] = (*HALFTONE_MIX, ("riemersma", False))

#: The members of each of :data:`~napari_compand.vocabulary.HALFTONE_SET_NAMES`, as
#: ``(method, serpentine)``: what a model trained on that set draws from.
HALFTONE_SETS: dict[str, tuple[tuple[str, bool], ...]] = {
    MIXED_HALFTONES: HALFTONE_MIX,
    "ordered": (("bayer-4x4", False), ("bayer-8x8", False)),
    "floyd-steinberg-scans": (("floyd-steinberg", False), ("floyd-steinberg", True)),
}
assert tuple(HALFTONE_SETS) == HALFTONE_SET_NAMES

#: Key of this package's entry in napari layer metadata.
METADATA_KEY = "napari_compand"

#: Largest bit depth ``l`` accepted for float images (treated like 16-bit data).
FLOAT_MAX_BITS = 15

#: Largest ``l`` for float16, whose 11 significant bits hold every level
#: ``k / 2**l`` only up to ``l = 11``.
FLOAT16_MAX_BITS = 11


def max_bits(dtype: np.dtype) -> int:
    """Largest ``bits`` that :func:`quantize` accepts for ``dtype``: ``h - 1`` for
    integers, 15 for float32/64, 11 for float16 (finer levels are not representable)."""
    if np.dtype(dtype) == np.float16:
        return FLOAT16_MAX_BITS
    depth = integer_bit_depth(dtype)
    return FLOAT_MAX_BITS if depth is None else depth - 1


def add_noise(
    image: np.ndarray, sigma: float, rng: np.random.Generator, shared: bool = False
) -> np.ndarray:
    """uint8 ``image`` plus Gaussian noise of standard deviation ``sigma`` (8-bit levels),
    rounded and clipped: :math:`\\mathrm{clip}(\\mathrm{round}(I + n), 0, 255)`,
    :math:`n \\sim \\mathcal{N}(0, \\sigma^2)` independent per pixel and channel, or with
    ``shared`` one field for all channels of a pixel (camera-like noise). Not one of
    Eq. 2's degradations: the noisy image is a new clean image, as in real data.

    Examples
    --------
    >>> flat = np.full((64, 64, 3), 128, np.uint8)
    >>> noisy = add_noise(flat, 4.0, np.random.default_rng(0), shared=True)
    >>> bool((noisy[..., 0] == noisy[..., 2]).all()), round(float(noisy.std()))
    (True, 4)
    """
    shape = image.shape[:2] + (1,) if shared and image.ndim == 3 else image.shape
    noisy = np.rint(image + rng.normal(0.0, sigma, shape))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def quantize(
    image: np.ndarray,
    bits: int,
    *,
    rgb: bool | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    r"""Reduce ``image`` to ``bits`` bits per channel by the paper's Eq. 2.

    .. math:: I_{low} = \lfloor I / 2^{h-l} \rfloor \cdot 2^{h-l}

    with ``h`` = 8 for uint8 and 16 for uint16 and ``l = bits``. Float images are
    taken as [0, 1] and get the same rule on ``2**bits`` levels,
    ``min(floor(I * 2**l), 2**l - 1) / 2**l``, so 1.0 maps to the top level like
    255 does for uint8.

    Parameters
    ----------
    image
        uint8, uint16 or float (in [0, 1]) array, at least 2D.
    bits
        Target bit depth ``l``, 1 .. h - 1 (1 .. 15 for float32/64, 1 .. 11 for
        float16); numpy integers are accepted.
    rgb
        Whether the last axis holds channels (grey + alpha, RGB, RGBA); ``None``
        guesses like napari (and takes a last axis of 2 as grey + alpha).
        Only matters for alpha channels, which are returned unchanged.
    progress
        Optional ``progress(done, total)`` callback, called per 2D plane.

    Returns
    -------
    numpy.ndarray
        A new array of ``image``'s dtype and shape.

    Raises
    ------
    ValueError
        If ``bits`` is outside 1 .. h - 1 or the image is empty or has NaNs.
    TypeError
        If the image is boolean, complex, or of an unsupported dtype.
    """
    return drive(_quantize_steps(image, bits, rgb=rgb), progress)


def _check_restored(
    restored: np.ndarray, degraded: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both images checked, and a clear error unless they match in shape and dtype."""
    restored = check_image(restored, "restored", unit_range=True)
    degraded = check_image(degraded, name, unit_range=True)
    if restored.shape != degraded.shape or restored.dtype != degraded.dtype:
        raise ValueError(
            f"restored {restored.shape} {restored.dtype} and {name} {degraded.shape} "
            f"{degraded.dtype} must have the same shape and dtype"
        )
    return restored, degraded


def keep_in_bin(
    restored: np.ndarray,
    quantized: np.ndarray,
    bits: int,
    *,
    rgb: bool | None = None,
) -> np.ndarray:
    r"""Clamp a restoration into the Eq. 2 bin of each low-bit pixel (consistency).

    A pixel :math:`I_{low}` of an ``l``-bit image (Eq. 2) can only have come from
    values in :math:`[I_{low},\ I_{low} + 2^{h-l} - 1]`. Clamping the restored
    value :math:`\hat I` into that bin,

    .. math:: \hat I_c = \min(\max(\hat I,\ I_{low}),\ I_{low} + 2^{h-l} - 1),

    makes the result consistent with its input (``quantize(result, bits)``
    gives ``quantize(quantized, bits)`` back) and never moves a pixel further
    from the true value, which lies in the same bin. Floats use the bins of
    :func:`quantize`: ``[k / 2**l, (k + 1) / 2**l)``.

    Parameters
    ----------
    restored
        The expansion of ``quantized`` (same shape and dtype).
    quantized
        The low-bit input (values off the ``bits`` grid are binned by Eq. 2).
    bits
        Bit depth ``l`` of ``quantized``.
    rgb
        Whether the last axis holds channels (grey + alpha, RGB or RGBA); alpha is
        returned unchanged.

    Returns
    -------
    numpy.ndarray
        A new array like ``restored``.

    Examples
    --------
    >>> low = np.array([[0, 32, 224]], dtype=np.uint8)
    >>> keep_in_bin(np.array([[40, 20, 255]], dtype=np.uint8), low, bits=3)
    array([[ 31,  32, 255]], dtype=uint8)
    """
    restored, quantized = _check_restored(restored, quantized, "quantized")
    bits = _check_bits(bits, max_bits(quantized.dtype) + 1, quantized.dtype)
    depth = integer_bit_depth(quantized.dtype)
    if depth is None:
        levels = 2.0**bits
        index = np.minimum(np.floor(quantized * levels), levels - 1)
        low = (index / levels).astype(restored.dtype)
        top = ((index + 1) / levels).astype(restored.dtype)
        # bins are half-open [k, k + 1) / 2**l, except the last, which holds 1.0
        high = np.where(index == levels - 1, top, np.nextafter(top, restored.dtype.type(0)))
    else:
        shift = depth - bits
        low = (quantized >> shift) << shift
        high = low + ((1 << shift) - 1)
    result = np.clip(restored, low, high).astype(restored.dtype)
    if guess_rgb(restored, rgb) and restored.shape[-1] in (2, 4):  # alpha passes through
        result[..., -1] = restored[..., -1]
    return result


def detect_degradation(image: np.ndarray, *, rgb: bool | None = None) -> Degradation | None:
    r"""Guess from the pixels alone how an image was degraded, or ``None``.

    * **halftone**: every colour value is 0 or the dtype's maximum (255, 65535,
      1.0), and both occur. A Bayer ordered dither is recognised by
      :func:`detect_ordered_dither`, the kernel and scan of error diffusion by
      :func:`detect_error_diffusion`; where that cannot tell (too few mid-tone
      pixels), raster Floyd–Steinberg is returned, the common one.
    * **l bits (Eq. 2)**: every value lies on the ``l``-bit grid, a multiple of
      :math:`2^{h-l}` (``k / 2**l`` for floats), for some ``l`` below the dtype's
      depth; the smallest such ``l`` is returned.

    Alpha channels are ignored; constant images give ``None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> photo = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    >>> detect_degradation(quantize(photo, 3)).label
    '3-bit'
    >>> detect_degradation(halftone(photo)).mode.value
    'halftone'
    >>> detect_degradation(photo) is None
    True
    """
    array = check_image(image, unit_range=True, halftone=True)
    colour = guess_rgb(array, rgb)
    if colour:
        array = array[..., : colour_channels(array.shape, True)]
    high = dtype_max(array.dtype)
    low_seen, high_seen = bool((array == 0).any()), bool((array == high).any())
    if low_seen and high_seen and bool(np.isin(array, (0, high)).all()):
        ordered = detect_ordered_dither(array, rgb=colour)
        if ordered is not None:
            return Degradation(DegradationMode.HALFTONE, method=ordered[0])
        method, serpentine = detect_error_diffusion(array, rgb=colour) or ("floyd-steinberg", False)
        return Degradation(DegradationMode.HALFTONE, method=method, serpentine=serpentine)
    depth = integer_bit_depth(array.dtype)
    if depth is not None:
        mask = int(np.bitwise_or.reduce(array, axis=None))
        if mask == 0:
            return None
        zeros = (mask & -mask).bit_length() - 1  # trailing zero bits shared by all values
        return Degradation(DegradationMode.QUANTIZE, bits=depth - zeros) if zeros else None
    if float(array.min()) == float(array.max()):
        return None
    values = array.astype(np.float64)
    for bits in range(1, max_bits(array.dtype) + 1):
        scaled = values * 2.0**bits
        if np.array_equal(scaled, np.floor(scaled)) and scaled.max() < 2.0**bits:
            return Degradation(DegradationMode.QUANTIZE, bits=bits)
    return None


def keep_in_dither(
    restored: np.ndarray,
    dithered: np.ndarray,
    method: str,
    offset: tuple[int, int] = (0, 0),
    *,
    transposed: bool = False,
    rgb: bool | None = None,
    min_agreement: float = 0.0,
) -> np.ndarray:
    r"""Clamp a restoration into the interval each pixel's ordered dither allows.

    An ordered dither sets a pixel exactly when its value :math:`v` exceeds the
    pixel's threshold :math:`T` (:func:`dither_thresholds`), so an "on" pixel came
    from :math:`v > T` and an "off" one from :math:`v \le T`. Clamping the restored
    value into that interval makes the result dither back to its input
    (``halftone(result, method)`` gives ``dithered`` for offset ``(0, 0)``) and
    never moves a pixel further from the true value, which lies in the same
    interval. Integer images use the integer bounds (``floor(T * max) + 1`` and
    ``floor(T * max)``), floats :math:`[T, 1]` and :math:`[0, T]`.

    Parameters
    ----------
    restored
        The restoration of ``dithered`` (same shape and dtype).
    dithered
        The Bayer dither: 0 or the dtype's maximum in every colour value.
    method, offset, transposed
        The dither's method, where the image starts in its matrix and whether the
        matrix is transposed (:func:`detect_ordered_dither` finds all three).
    rgb
        Whether the last axis holds channels; alpha is returned unchanged.
    min_agreement
        Clamp only if at least this share of the values already lies in its
        interval, else return ``restored`` as it is: a dither by another matrix
        than ``method``'s (which :func:`detect_ordered_dither` can take for it)
        disagrees with these thresholds on many pixels, and clamping to them would
        move those away from the truth.

    Examples
    --------
    >>> dots = halftone(np.full((1, 4), 100, np.uint8), "bayer-4x4")
    >>> dots
    array([[255,   0, 255,   0]], dtype=uint8)
    >>> dither_thresholds("bayer-4x4", (1, 4)) * 255
    array([[  7.96875, 135.46875,  39.84375, 167.34375]], dtype=float32)
    >>> keep_in_dither(np.full((1, 4), 140, np.uint8), dots, "bayer-4x4")
    array([[140, 135, 140, 140]], dtype=uint8)
    """
    restored, dithered = _check_restored(restored, dithered, "dithered")
    colour = guess_rgb(dithered, rgb)
    high = dtype_max(dithered.dtype)
    result = restored.copy()
    thresholds = dither_thresholds(
        method, dithered.shape[-3:-1] if colour else dithered.shape[-2:], offset, transposed
    ).astype(np.float64)
    if integer_bit_depth(dithered.dtype) is None:
        first_on, last_off = thresholds, thresholds
    else:
        last_off = np.floor(thresholds * high)
        first_on = last_off + 1
    for index in plane_indices(dithered.shape, colour):
        on = dithered[index] > high / 2
        low = np.where(on, first_on, 0)
        top = np.where(on, high, last_off)
        result[index] = np.clip(restored[index], low, top).astype(restored.dtype)
    if min_agreement and np.mean(result != restored) > 1 - min_agreement:
        return restored
    return result


#: Largest square (pixels) of an image that :func:`detect_ordered_dither` looks at.
DITHER_DETECTION_SIZE = 512

#: The Bayer matrix sizes :func:`detect_ordered_dither` tells apart. A 2x2 dither is
#: reported as 4x4: its pixels are those of a 4x4 dither of the image at 5 grey levels.
DETECTED_BAYER_SIZES = (4, 8)


class OrderedDither(NamedTuple):
    """An ordered dither as :func:`detect_ordered_dither` finds it.

    ``method``: ``"bayer-4x4"`` or ``"bayer-8x8"``; ``offset`` ``(dy, dx)``: the
    image's first pixel lies ``dy`` rows and ``dx`` columns into the matrix;
    ``transposed``: the dither used the transposed Bayer matrix (ImageMagick's
    ``-ordered-dither o8x8`` does), so the image's transpose is a dither by the
    matrix itself, at offset ``(dx, dy)``.
    """

    method: str
    offset: tuple[int, int] = (0, 0)
    transposed: bool = False


def detect_ordered_dither(image: np.ndarray, *, rgb: bool | None = None) -> OrderedDither | None:
    r"""Whether a halftone is a Bayer ordered dither: its method, offset and orientation.

    An ordered dither sets a pixel when its value exceeds the threshold
    :math:`T[y, x]` of the tiled Bayer matrix (:func:`dither_thresholds`). Any
    :math:`n \times n` window holds each threshold once, so its mean ``m`` (8x8
    here) is the local grey level, and ``m > T`` re-creates the dither where the
    image is smooth. For every matrix size, offset and orientation (the Bayer matrix
    and its transpose) this counts the pixels where it does, on the first channel of
    the first plane (its central :data:`DITHER_DETECTION_SIZE` square): the right
    offset of a Bayer dither re-creates 92–99 % of the pixels, the other offsets and
    error diffusion about 55–75 %. A 4x4 dither fits the 8x8 matrix as well as the
    4x4 one (the 8x8 matrix keeps the 4x4 order within each quarter), so 8x8 is
    chosen only where it fits better, by more than 0.06 % of the pixels (on Set5,
    Set14 and 80 BSDS500 test images: 4x4 dithers at most 0.03 %, 8x8 ones at least
    0.11 %). The orientation that fits better wins: on Set5, Set14 and 10 BSDS500
    test images each dither fitted its own orientation better by 2.0–11.6 % of the
    pixels (the package's dithers, transposed ones, ImageMagick's ``o4x4`` and
    ``o8x8``). Size, offset and orientation were right for all 864 dithers of BSDS500
    test, Set5 and Set14 (216 images, colour and grey in turn, each dithered by both sizes
    and both orientations and cropped at an offset), and none of 216 error-diffusion
    halftones (Floyd–Steinberg, Stucki, Atkinson, Jarvis–Judice–Ninke) was taken for an
    ordered dither (before orientations were told apart: size and offset right for 1,728
    dithers, none of 1,296 error-diffusion halftones taken). About 0.03 s.

    Returns
    -------
    OrderedDither or None
        ``(method, (dy, dx), transposed)``, or ``None`` if it does not look like one.

    Examples
    --------
    >>> from skimage.data import camera
    >>> photo = camera()
    >>> detect_ordered_dither(halftone(photo, "bayer-8x8")[3:, 5:])
    OrderedDither(method='bayer-8x8', offset=(3, 5), transposed=False)
    >>> detect_ordered_dither(halftone(photo.T, "bayer-4x4").T)
    OrderedDither(method='bayer-4x4', offset=(0, 0), transposed=True)
    >>> detect_ordered_dither(halftone(photo)) is None
    True
    """
    from scipy.ndimage import uniform_filter

    array = check_image(image, unit_range=True, halftone=True)
    colour = guess_rgb(array, rgb)
    plane = np.asarray(array[plane_indices(array.shape, colour)[0]])
    if min(plane.shape) < 2 * max(DETECTED_BAYER_SIZES):
        return None
    crop, (top, left) = _central_square(plane)
    on = crop > dtype_max(crop.dtype) / 2
    large = max(DETECTED_BAYER_SIZES)
    level = uniform_filter(on.astype(np.float32), large, mode="reflect")

    both = _bayer_fits(level, on, large)
    transposed = bool(both[True].max() > both[False].max())
    fits = {large: both[transposed], large // 2: _bayer_fits(level, on, large // 2)[transposed]}
    if float(fits[large].max() - np.median(fits[large])) < 0.1:
        return None  # no offset stands out: error diffusion, noise or a flat image
    size = large if fits[large].max() - fits[large // 2].max() > 0.0006 else large // 2
    dy, dx = np.unravel_index(int(np.argmax(fits[size])), fits[size].shape)
    offset = ((int(dy) - top) % size, (int(dx) - left) % size)  # the crop starts further in
    return OrderedDither(f"bayer-{size}x{size}", offset, transposed)


def _bayer_fits(level: np.ndarray, on: np.ndarray, size: int) -> dict[bool, np.ndarray]:
    """Share of the pixels where ``level > T`` says ``on``, for the thresholds ``T`` of
    the ``size`` Bayer matrix at every offset ``(dy, dx)``: ``{transposed: fits[dy, dx]}``.

    Counted once per matrix phase ``(y % size, x % size)`` and threshold (sorted values
    and a binary search), then summed per offset: the same numbers as comparing the
    whole tiled threshold map at each offset, several times faster.
    """
    thresholds = bayer_levels(size)  # in rank order, as bayer_thresholds uses them
    agree = np.empty((size, size, thresholds.size))  # [phase y, phase x, threshold rank]
    for i in range(size):
        for j in range(size):
            values, lit = level[i::size, j::size], on[i::size, j::size]
            bright, dark = np.sort(values[lit]), np.sort(values[~lit])
            # an "on" pixel agrees where level > T, an "off" one where level <= T
            agree[i, j] = bright.size - np.searchsorted(bright, thresholds, side="right")
            agree[i, j] += np.searchsorted(dark, thresholds, side="right")
    phase = np.arange(size)
    fits = {}
    for transposed in (False, True):
        ranks = bayer_matrix(size).T if transposed else bayer_matrix(size)
        fit = np.empty((size, size))
        for dy in range(size):
            for dx in range(size):
                shifted = ranks[np.ix_((phase + dy) % size, (phase + dx) % size)]
                fit[dy, dx] = agree[phase[:, None], phase, shifted].sum()
        fits[transposed] = fit / on.size
    return fits


#: Fewest pixels :func:`detect_error_diffusion` needs at mid-tone levels: below it the
#: kernel is not named (a 128x128 colour crop, about 40,000, is still named right 92 % of
#: the time, a 256x256 one always; see its docstring).
ERROR_DIFFUSION_MIN_PIXELS = 30_000


def _central_planes(image: np.ndarray, rgb: bool | None) -> list[np.ndarray]:
    """The colour planes of the first image of ``image``, their central
    :data:`DITHER_DETECTION_SIZE` square."""
    array = check_image(image, unit_range=True, halftone=True)
    colour = guess_rgb(array, rgb)
    planes = plane_indices(array.shape, colour)
    planes = planes[: colour_channels(array.shape, True) if colour else 1]
    return [_central_square(np.asarray(array[index]))[0] for index in planes]


def _central_square(plane: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The central :data:`DITHER_DETECTION_SIZE` square of a plane (all of a smaller
    side), and where it starts."""
    top = max(0, (plane.shape[0] - DITHER_DETECTION_SIZE) // 2)
    left = max(0, (plane.shape[1] - DITHER_DETECTION_SIZE) // 2)
    size = DITHER_DETECTION_SIZE
    return plane[top : top + size, left : left + size], (top, left)


def _on(planes: list[np.ndarray]) -> list[np.ndarray]:
    return [plane > dtype_max(plane.dtype) / 2 for plane in planes]


def error_diffusion_signature(
    image: np.ndarray, *, rgb: bool | None = None
) -> tuple[np.ndarray, int]:
    """The texture statistics of a halftone that :func:`detect_error_diffusion` reads.

    Those of ``_diffusion.diffusion_signature`` over the colour channels of the
    image's central :data:`DITHER_DETECTION_SIZE` square: how the residual from the
    7x7 local mean correlates with itself at 16 nearby offsets, per local grey level.

    Returns
    -------
    signature, count
        The float64 signature and the number of mid-tone pixels it rests on.
    """
    return diffusion_signature(_on(_central_planes(image, rgb)))


@functools.cache
def _error_diffusion_discriminant() -> tuple[dict[str, np.ndarray], list[tuple[str, bool]]]:
    from safetensors import safe_open

    path = Path(__file__).parent / "_data" / "error_diffusion.safetensors"
    with safe_open(str(path), "np") as handle:
        classes = json.loads(handle.metadata()[METADATA_KEY])["classes"]
        model = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    return model, [(str(m), bool(s)) for m, s in classes]


def detect_error_diffusion(
    image: np.ndarray, *, rgb: bool | None = None
) -> tuple[str, bool] | None:
    r"""Which error-diffusion kernel made a halftone: ``(method, serpentine)``, or ``None``.

    Each kernel leaves its own texture: how a pixel's deviation from its local mean
    correlates with its neighbours' at each grey level
    (:func:`error_diffusion_signature`). A linear discriminant fitted on the
    halftones of 200 BSDS500 training images by every error-diffusion method of
    :data:`KNOWN_HALFTONES` (the eight of :data:`HALFTONE_MIX` and Riemersma's along a
    Hilbert curve; ``scripts/fit_error_diffusion_detector.py``; the class means and
    pooled covariance ship as data) names the nearest kernel. Measured on images it
    never saw, colour and grey in turn: right for all 144 halftones of Set5 + Set14
    and for 1,798 of the 1,800 of BSDS500 test (one Stucki and one Sierra halftone
    taken for Jarvis–Judice–Ninke, which the same model restores), 99.6 % of their
    256x256 crops; Pillow's ``convert("1")`` dithering reads as raster
    Floyd–Steinberg (50 of 50); ImageMagick 6.9.11's default dither (``-remap
    pattern:gray50``) as Riemersma (56 of 56: Set5, Set14, 40 BSDS500 test images),
    its ``-dither FloydSteinberg`` as serpentine Floyd–Steinberg (56 of 56).

    The scan order is told apart for Floyd–Steinberg only (the other kernels are
    fitted in raster order, and their serpentine halftones are named by kernel with
    ``serpentine=False``).

    Returns ``None`` when the image is not a two-level halftone or has too few
    mid-tone pixels (:data:`ERROR_DIFFUSION_MIN_PIXELS`) to tell; ordered dithers
    are :func:`detect_ordered_dither`'s (this names an error-diffusion kernel for
    any halftone, so ask that first).

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> detect_error_diffusion(halftone(astronaut(), "jarvis-judice-ninke"))
    ('jarvis-judice-ninke', False)
    >>> detect_error_diffusion(halftone(astronaut(), serpentine=True))
    ('floyd-steinberg', True)
    """
    planes = _central_planes(image, rgb)
    high = dtype_max(planes[0].dtype)
    if not all(np.isin(plane, (0, high)).all() for plane in planes):
        return None
    signature, count = diffusion_signature(_on(planes))
    if count < ERROR_DIFFUSION_MIN_PIXELS:
        return None
    model, classes = _error_diffusion_discriminant()
    z = (signature - model["mean"]) / model["scale"]
    d = z[None] - model["centroids"]
    distance = np.einsum("kf,fg,kg->k", d, model["precision"], d)
    return classes[int(np.argmin(distance))]


def dither_thresholds(
    method: str,
    shape: tuple[int, int],
    offset: tuple[int, int] = (0, 0),
    transposed: bool = False,
) -> np.ndarray:
    r"""The threshold map of an ordered dither, float32 in (0, 1).

    :math:`T[y, x] = (B[(y + d_y) \bmod n, (x + d_x) \bmod n] + 0.5) / n^2` for the
    ``method``'s :math:`n \times n` Bayer matrix :math:`B` (``transposed``:
    :math:`B^T`): a pixel of value ``v`` in [0, 1] is set when ``v > T``. ``offset``
    ``(dy, dx)`` is where the plane starts in the matrix (:func:`detect_ordered_dither`
    finds both).

    Examples
    --------
    >>> dither_thresholds("bayer-4x4", (2, 4))
    array([[0.03125, 0.53125, 0.15625, 0.65625],
           [0.78125, 0.28125, 0.90625, 0.40625]], dtype=float32)
    >>> dither_thresholds("bayer-4x4", (2, 4), transposed=True)
    array([[0.03125, 0.78125, 0.21875, 0.96875],
           [0.53125, 0.28125, 0.71875, 0.46875]], dtype=float32)
    """
    if method not in ORDERED_METHODS:
        raise ValueError(
            f"{method!r} is not an ordered dither; choose one of {', '.join(ORDERED_METHODS)}"
        )
    return bayer_thresholds(int(method.split("x")[-1]), shape, offset, transposed)


def halftone(
    image: np.ndarray,
    method: str = "floyd-steinberg",
    serpentine: bool = False,
    *,
    rgb: bool | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Halftone ``image`` to two levels per channel.

    Error diffusion (Floyd–Steinberg and friends) scales intensities to [0, 1],
    sets a pixel when its running value is ``>= 0.5`` and spreads the error
    ``value - output`` to unvisited neighbours with the method's weights
    (Floyd–Steinberg: 7/16 right, 3/16 below-left, 5/16 below, 1/16
    below-right), in raster order, in float64, without clipping. Riemersma
    dithering (``"riemersma"``, ImageMagick's default) diffuses the error along a
    Hilbert curve to the next pixels through a queue of the last 16 errors
    (:func:`~napari_compand._diffusion.riemersma_plane`). Ordered Bayer dithering
    compares each pixel with a tiled threshold matrix.

    Parameters
    ----------
    image
        uint8, uint16 or float (in [0, 1]) array, at least 2D.
    method
        One of :data:`HALFTONE_METHODS`.
    serpentine
        Scan odd rows right to left (error diffusion by a kernel only).
    rgb
        Whether the last axis holds channels (grey + alpha, RGB, RGBA); ``None``
        guesses like napari (and takes a last axis of 2 as grey + alpha).
        Each colour channel is halftoned on its own; alpha passes through.
    workers
        Threads for independent planes (channels, stack slices); default: the
        cores available to this process.
    progress
        Optional ``progress(done, total)`` callback, called per 2D plane.

    Returns
    -------
    numpy.ndarray
        A new array of ``image``'s dtype and shape holding only 0 and the dtype's
        maximum (255, 65535, or 1.0 for floats) in its colour planes.
    """
    return drive(_halftone_steps(image, method, serpentine, rgb=rgb, workers=workers), progress)


class DegradationMode(str, Enum):
    """The two degradations of the paper."""

    QUANTIZE = "quantize"
    HALFTONE = "halftone"


@dataclass(frozen=True)
class Degradation:
    """A fully specified degradation: what the widgets, CLI and metadata share.

    Parameters
    ----------
    mode
        :class:`DegradationMode` (or its string value).
    bits
        Target bit depth, for ``quantize``.
    method
        Halftoning method, for ``halftone``.
    serpentine
        Serpentine scan, for error-diffusion ``halftone``.
    """

    mode: DegradationMode = DegradationMode.QUANTIZE
    bits: int = 3
    method: str = "floyd-steinberg"
    serpentine: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", DegradationMode(self.mode))
        if self.mode is DegradationMode.QUANTIZE:
            try:
                object.__setattr__(self, "bits", _check_bits(self.bits, FLOAT_MAX_BITS + 1))
            except ValueError:
                raise ValueError(
                    f"bits must be at least 1 and below the image's bit depth: 1-7 for uint8, "
                    f"1-15 for uint16 and float32/64, 1-11 for float16; got {self.bits}"
                ) from None
        else:
            _check_method(self.method)

    @property
    def label(self) -> str:
        """Short description for layer and file names, e.g. ``3-bit``."""
        if self.mode is DegradationMode.QUANTIZE:
            return f"{self.bits}-bit"
        serp = " serpentine" if self.serpentine and self.method in DIFFUSION_KERNELS else ""
        return f"halftone {self.method}{serp}"

    def as_metadata(self) -> dict[str, object]:
        """JSON-serialisable description (stored in napari layer metadata)."""
        if self.mode is DegradationMode.QUANTIZE:
            return {"mode": self.mode.value, "bits": self.bits}
        return {"mode": self.mode.value, "method": self.method, "serpentine": self.serpentine}

    @classmethod
    def from_metadata(cls, metadata: dict[str, object]) -> Degradation:
        """Inverse of :meth:`as_metadata`."""
        return cls(**metadata)  # type: ignore[arg-type]

    def layer_metadata(self, source: str) -> dict[str, dict]:
        """napari layer metadata recording this degradation and the source layer.

        Stored under :data:`METADATA_KEY`; read back by :meth:`from_layer_metadata`.
        """
        return {METADATA_KEY: {"degradation": self.as_metadata(), "source": source}}

    @classmethod
    def from_layer_metadata(cls, metadata: dict) -> Degradation | None:
        """The degradation recorded in a layer's metadata, or ``None``."""
        record = metadata.get(METADATA_KEY, {}).get("degradation")
        return None if record is None else cls.from_metadata(record)

    def steps(
        self, image: np.ndarray, *, rgb: bool | None = None, workers: int | None = None
    ) -> Generator[tuple[int, int], None, np.ndarray]:
        """Apply lazily: yields ``(done, total)`` per plane and returns the result.

        Used by GUI workers to report progress; :meth:`apply` runs it to the end.
        """
        if self.mode is DegradationMode.QUANTIZE:
            return _quantize_steps(image, self.bits, rgb=rgb, workers=workers)
        return _halftone_steps(image, self.method, self.serpentine, rgb=rgb, workers=workers)

    def apply(
        self,
        image: np.ndarray,
        *,
        rgb: bool | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Degrade ``image`` (see :func:`quantize` and :func:`halftone`)."""
        return drive(self.steps(image, rgb=rgb, workers=workers), progress)


def _check_bits(bits: int, depth: int, dtype: np.dtype | None = None) -> int:
    """``bits`` as a Python int (numpy integers accepted) in 1 .. ``depth`` - 1."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an integer, got {bits!r}")
    if not 1 <= bits <= depth - 1:
        what = "this image" if dtype is None else f"{np.dtype(dtype)} images"
        hint = " (convert to float32 for more)" if dtype == np.float16 else ""
        raise ValueError(f"bits must be between 1 and {depth - 1} for {what}{hint}, got {bits}")
    return int(bits)


def _check_method(method: str) -> None:
    if method not in HALFTONE_METHODS:
        raise ValueError(
            f"unknown halftone method {method!r}; valid methods: {', '.join(HALFTONE_METHODS)}"
        )


def _quantize_plane(src: np.ndarray, out: np.ndarray, bits: int) -> None:
    depth = integer_bit_depth(src.dtype)
    if depth is None:
        levels = 2.0**bits
        np.copyto(out, np.minimum(np.floor(src * levels), levels - 1) / levels, casting="unsafe")
    else:
        shift = depth - bits  # floor(I / 2^(h-l)) * 2^(h-l) == (I >> s) << s
        np.copyto(out, (src >> shift) << shift)


def _quantize_steps(image, bits, *, rgb=None, workers=None):
    array = check_image(image, unit_range=True)
    bits = _check_bits(bits, max_bits(array.dtype) + 1, array.dtype)
    return _map_planes(array, rgb, workers, lambda src, out: _quantize_plane(src, out, bits))


def _halftone_steps(image, method, serpentine, *, rgb=None, workers=None):
    _check_method(method)
    array = check_image(image, unit_range=True)
    high = dtype_max(array.dtype)
    if method.startswith("bayer-"):
        size = int(method.split("x")[-1])
        return _map_planes(array, rgb, workers, lambda s, o: ordered_plane(s, o, size, high))
    if method in CURVE_METHODS:
        return _map_planes(array, rgb, workers, lambda s, o: riemersma_plane(s, o, high))
    return _map_planes(
        array, rgb, workers, lambda s, o: diffuse_plane(s, o, method, high, bool(serpentine))
    )


#: Planes of fewer pixels run in the calling thread unless ``workers`` is given: starting
#: and joining a thread pool (about a millisecond) costs more than degrading a training
#: crop or photograph (a 481x321 plane quantizes in about 0.1 ms); it pays for the large
#: images of napari layers.
THREADED_PLANE_PIXELS = 512 * 512


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _map_planes(
    image: np.ndarray,
    rgb: bool | None,
    workers: int | None,
    plane_func: Callable[[np.ndarray, np.ndarray], None],
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Apply ``plane_func(src, out)`` to every independent 2D plane of ``image``.

    Planes run in up to ``workers`` threads (the kernels release the GIL; by default one
    per core, or none beside the caller's for planes under :data:`THREADED_PLANE_PIXELS`);
    the result starts as a copy of ``image`` so that alpha channels pass through.
    float16 planes are computed in float32 (the compiled kernels need it).
    """
    is_rgb = guess_rgb(image, rgb)
    result = image.copy()
    indices = plane_indices(image.shape, is_rgb)
    total = len(indices)

    def one(index: tuple) -> None:
        src = image[index]
        target = result[index]
        if src.dtype == np.float16 or not src.flags.c_contiguous:
            # Kernels run fastest (and compile once) on contiguous planes; a
            # strided colour channel is gathered and scattered around the call.
            work = np.float32 if src.dtype == np.float16 else src.dtype
            out = np.empty(src.shape, work)
            plane_func(np.ascontiguousarray(src, dtype=work), out)
            target[...] = out
        else:
            plane_func(src, target)

    if workers is None:
        small = total == 0 or image[indices[0]].size < THREADED_PLANE_PIXELS
        workers = 1 if small else _available_cores()
    n_workers = min(total, workers)
    if n_workers <= 1:
        for done, index in enumerate(indices, start=1):
            one(index)
            yield done, total
        return result
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="compand") as pool:
        futures = [pool.submit(one, index) for index in indices]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()
                yield done, total
        finally:
            for future in futures:
                future.cancel()
    return result
