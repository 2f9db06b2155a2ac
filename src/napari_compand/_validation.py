"""Input checks and array layout helpers shared by the Qt-free core.

Every public function of :mod:`napari_compand.degrade` and
:mod:`napari_compand.metrics` validates its arrays here first, so users get the
same clear message for the same mistake everywhere.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SUPPORTED_DTYPES",
    "check_image",
    "colour_channels",
    "dtype_max",
    "guess_rgb",
    "integer_bit_depth",
    "plane_indices",
]

#: dtypes the core accepts: 8/16-bit unsigned integers and floats in [0, 1].
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)


def guess_rgb(image: np.ndarray, rgb: bool | None) -> bool:
    """Decide whether the last axis holds channels (colour and/or alpha).

    ``rgb=None`` follows napari's rule for RGB(A), at least 3 dimensions and a
    last axis of length 3 (RGB) or 4 (RGBA), and also takes a last axis of length
    2 as grey + alpha (what "LA" image files read as).
    """
    last_is_colour = image.ndim >= 3 and image.shape[-1] in (2, 3, 4)
    if rgb is None:
        return last_is_colour
    if rgb and not last_is_colour:
        raise ValueError(
            f"rgb=True needs a last axis of length 2 (grey + alpha), 3 or 4 and at least "
            f"3 dimensions; got shape {image.shape}"
        )
    return bool(rgb)


def colour_channels(shape: tuple[int, ...], rgb: bool) -> int:
    """How many channels of the last axis carry intensities (the rest is alpha).

    1 for grey + alpha ``(..., 2)``, 3 for RGB(A), and 1 for data without a
    channel axis (``rgb=False``).

    >>> colour_channels((5, 5, 2), rgb=True), colour_channels((5, 5, 4), rgb=True)
    (1, 3)
    """
    if not rgb:
        return 1
    return 1 if shape[-1] == 2 else 3


def halftone_from_bool(array: np.ndarray) -> np.ndarray:
    """A boolean image (a 1-bit file) as the uint8 halftone it is: True -> 255, False -> 0."""
    return np.where(array, np.uint8(255), np.uint8(0))


def check_image(
    image: object, name: str = "image", *, unit_range: bool = False, halftone: bool = False
) -> np.ndarray:
    """Return ``image`` as an ndarray or raise a message that names the problem.

    Parameters
    ----------
    image
        Array-like image data (numpy, dask and zarr arrays are materialised).
    name
        How the argument is called in error messages.
    unit_range
        Also require float data to lie in [0, 1], the convention of this package.
    halftone
        Where a halftone is expected (restoring, detecting a degradation): boolean
        data, as a 1-bit file reads, is one and comes back as uint8 0 / 255.

    Raises
    ------
    TypeError
        For boolean (mask/label) data, complex data and unsupported dtypes.
    ValueError
        For empty arrays, fewer than 2 dimensions, NaN/inf, floats outside [0, 1].
    """
    array = np.asarray(image)
    if array.dtype == bool and halftone:
        return halftone_from_bool(array)
    if array.dtype == bool:
        raise TypeError(
            f"{name} is boolean (a mask or label image); degradations and metrics need "
            "intensity images (uint8, uint16 or float in [0, 1])"
        )
    if np.iscomplexobj(array):
        raise TypeError(f"{name} is complex ({array.dtype}); take the magnitude or real part first")
    if array.dtype.type not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} has dtype {array.dtype}, which is not an intensity image dtype this "
            "package handles; use uint8, uint16 or float in [0, 1] (integer label images "
            "are not supported)"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not array.dtype.isnative:  # big-endian data from a file: compute natively
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (Y, X); got shape {array.shape}")
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            kind = "NaN" if np.isnan(array).any() else "infinite values"
            raise ValueError(f"{name} contains {kind}; replace or mask them first")
        if unit_range:
            low, high = float(array.min()), float(array.max())
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"float {name} must lie in [0, 1], got values in [{low:g}, {high:g}]; "
                    "rescale it (e.g. skimage.exposure.rescale_intensity) first"
                )
    return array


def integer_bit_depth(dtype: np.dtype) -> int | None:
    """Bit depth ``h`` of an unsigned integer dtype (8 or 16), ``None`` for floats."""
    dtype = np.dtype(dtype)
    return dtype.itemsize * 8 if dtype.kind == "u" else None


def dtype_max(dtype: np.dtype) -> float:
    """Largest intensity of ``dtype``: 255, 65535, or 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def plane_indices(shape: tuple[int, ...], rgb: bool) -> list[tuple]:
    """Index tuples that pick every independent 2D plane of an array.

    For a stack ``(..., Y, X)`` there is one plane per leading index; for colour
    data ``(..., Y, X, C)`` one per leading index and colour channel, where the
    alpha channel of RGBA and grey + alpha is left out (the degradations pass it through). The
    same tuple indexes the input and an output of the same shape, so results can
    be written plane by plane without copies.

    Examples
    --------
    >>> len(plane_indices((2, 5, 5, 4), rgb=True))  # 2 images x 3 colour channels
    6
    >>> plane_indices((2, 5, 5, 4), rgb=True)[1][-1]  # second plane: channel 1 (green)
    1
    """
    every = slice(None)
    if rgb:
        leading, channels = shape[:-3], colour_channels(shape, rgb)
        return [idx + (every, every, c) for idx in np.ndindex(*leading) for c in range(channels)]
    return [idx + (every, every) for idx in np.ndindex(*shape[:-2])]
