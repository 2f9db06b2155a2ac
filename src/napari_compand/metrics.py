r"""Full-reference image quality: PSNR and SSIM between two images or stacks.

Built on :mod:`skimage.metrics`. The data range comes from the dtype (255 for
uint8, 65535 for uint16) or, for floats, from ``data_range`` (default 1.0 when
both images lie in [0, 1], the package's float convention). RGB(A) images are
compared over their three colour channels and grey + alpha images over grey
(alpha is ignored); stacks ``(..., Y, X[, C])`` plane by plane, with the
per-plane values available from :func:`psnr_per_plane` / :func:`ssim_per_plane`
and their mean from :func:`psnr` / :func:`ssim`. Identical planes have an
infinite PSNR; the mean over a stack leaves them out (:func:`mean_psnr`), so one
identical plane does not hide the others.

.. math::

    \mathrm{PSNR} = 10 \log_{10} \frac{R^2}{\mathrm{MSE}}, \qquad
    \mathrm{SSIM} = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
                         {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}

SSIM uses the settings of Wang et al. (2004): Gaussian window with sigma 1.5,
population covariance, ``K1 = 0.01``, ``K2 = 0.03``.

Examples
--------
>>> import numpy as np
>>> from napari_compand.metrics import psnr
>>> ref = np.zeros((8, 8), np.uint8); test = ref.copy(); test[0, 0] = 255
>>> round(psnr(ref, test), 2)  # MSE = 255**2 / 64
18.06
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.metrics import mean_squared_error, structural_similarity

from ._validation import check_image, dtype_max, guess_rgb

__all__ = [
    "SSIM_MIN_SIZE",
    "PlaneScores",
    "compare",
    "mean_psnr",
    "psnr",
    "psnr_per_plane",
    "ssim",
    "ssim_per_plane",
]

#: Smallest plane edge SSIM accepts: its Gaussian window (sigma 1.5, truncated
#: at 3.5 sigma) is 11 pixels wide.
SSIM_MIN_SIZE = 11


def psnr(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    rgb: bool | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB, averaged over the planes of a stack.

    Identical images give ``inf``; a stack's mean leaves identical planes out
    (see :func:`mean_psnr`).

    Parameters
    ----------
    reference, test
        Arrays of the same shape and dtype (uint8, uint16 or float).
    data_range
        Peak value ``R``; default from the dtype (see module docstring).
    rgb
        Whether the last axis holds RGB(A) channels; ``None`` guesses like napari.
    """
    return mean_psnr(psnr_per_plane(reference, test, data_range, rgb=rgb))


def mean_psnr(values: np.ndarray | list[float]) -> float:
    """Mean PSNR over planes, leaving out identical planes (``inf``).

    ``inf`` only when every plane is identical. Count the planes left out with
    ``np.isinf(values).sum()``.

    >>> mean_psnr([30.0, float("inf"), 40.0])
    35.0
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("inf")


def ssim(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    rgb: bool | None = None,
) -> float:
    """Structural similarity (Wang et al. 2004), averaged over the planes of a stack."""
    return float(np.mean(ssim_per_plane(reference, test, data_range, rgb=rgb)))


def psnr_per_plane(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    rgb: bool | None = None,
) -> np.ndarray:
    """PSNR (dB) of every 2D (or 2D colour) plane; shape = the stack's leading axes."""
    return _psnr_planes(*_prepare(reference, test, data_range, rgb))


def ssim_per_plane(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    rgb: bool | None = None,
) -> np.ndarray:
    """SSIM of every 2D (or 2D colour) plane; shape = the stack's leading axes."""
    return _ssim_planes(*_prepare(reference, test, data_range, rgb))


@dataclass(frozen=True)
class PlaneScores:
    """PSNR and SSIM of one plane (``plane`` is ``()`` for a single image)."""

    plane: tuple[int, ...]
    psnr: float
    ssim: float


def compare(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    rgb: bool | None = None,
) -> list[PlaneScores]:
    """PSNR and SSIM of every plane, in stack order (what the Metrics widget shows)."""
    prepared = _prepare(reference, test, data_range, rgb)  # checks the inputs once
    psnrs, ssims = _psnr_planes(*prepared), _ssim_planes(*prepared)
    return [
        PlaneScores(index, float(psnrs[index]), float(ssims[index]))
        for index in np.ndindex(psnrs.shape)
    ]


def _prepare(reference, test, data_range, rgb):
    ref = check_image(reference, "reference")
    tst = check_image(test, "test")
    if ref.shape != tst.shape:
        raise ValueError(f"reference and test differ in shape: {ref.shape} vs {tst.shape}")
    if ref.dtype != tst.dtype:
        raise TypeError(
            f"reference and test differ in dtype: {ref.dtype} vs {tst.dtype}; convert one "
            "so both use the same intensity scale"
        )
    colour = guess_rgb(ref, rgb)
    if colour and ref.shape[-1] == 2:  # grey + alpha: the grey plane
        ref, tst, colour = ref[..., 0], tst[..., 0], False
    elif colour:
        ref, tst = ref[..., :3], tst[..., :3]
    return ref, tst, _data_range(ref, tst, data_range), colour


def _psnr_planes(ref, tst, peak, colour) -> np.ndarray:
    return _per_plane(ref, tst, colour, lambda r, t: _psnr_plane(r, t, peak))


def _ssim_planes(ref, tst, peak, colour) -> np.ndarray:
    spatial = ref.shape[-3:-1] if colour else ref.shape[-2:]
    if min(spatial) < SSIM_MIN_SIZE:
        raise ValueError(
            f"SSIM needs planes of at least {SSIM_MIN_SIZE}x{SSIM_MIN_SIZE} pixels (its "
            f"Gaussian window); got {spatial[0]}x{spatial[1]}"
        )
    return _per_plane(ref, tst, colour, lambda r, t: _ssim_plane(r, t, peak, colour))


def _data_range(ref: np.ndarray, tst: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        if not np.isfinite(data_range) or data_range <= 0:
            raise ValueError(f"data_range must be a positive number, got {data_range}")
        return float(data_range)
    if ref.dtype.kind == "u":
        return dtype_max(ref.dtype)
    low = min(float(ref.min()), float(tst.min()))
    high = max(float(ref.max()), float(tst.max()))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"float images with values in [{low:g}, {high:g}] need an explicit data_range "
            "(the default 1.0 holds only for images in [0, 1])"
        )
    return 1.0


def _per_plane(ref, tst, colour, plane_metric) -> np.ndarray:
    spatial_axes = 3 if colour else 2
    leading = ref.shape[: ref.ndim - spatial_axes]
    values = np.empty(leading, dtype=np.float64)
    for index in np.ndindex(*leading):
        values[index] = plane_metric(ref[index], tst[index])
    return values


def _psnr_plane(ref: np.ndarray, tst: np.ndarray, peak: float) -> float:
    mse = mean_squared_error(ref.astype(np.float64), tst.astype(np.float64))
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def _ssim_plane(ref: np.ndarray, tst: np.ndarray, peak: float, colour: bool) -> float:
    return float(
        structural_similarity(
            ref.astype(np.float64),
            tst.astype(np.float64),
            data_range=peak,
            channel_axis=-1 if colour else None,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
