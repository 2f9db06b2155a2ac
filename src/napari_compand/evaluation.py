"""Scoring restorations against clean images: models and classical baselines.

For each clean image :math:`I`, the degraded input :math:`D(I)` is restored and
compared with :math:`I` by PSNR and SSIM (:mod:`napari_compand.metrics`, colour
images as RGB); the scores are averaged over the images.

Baselines
---------
``as-is``
    The degraded image itself (Eq. 2 output, or the binary halftone).
``midbin``
    Mid-bin reconstruction of an ``l``-bit image, :math:`q + 2^{8-l-1}` (uint8).
``gaussian``
    Gaussian blur of a halftone (``sigma`` pixels, reflect borders).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from skimage.filters import gaussian

from .degrade import Degradation, DegradationMode
from .metrics import psnr, ssim

__all__ = ["BASELINES", "Scores", "baseline", "evaluate"]

BASELINES = ("as-is", "midbin", "gaussian")


@dataclass(frozen=True)
class Scores:
    """Mean PSNR (dB) and SSIM over ``images`` images."""

    psnr: float
    ssim: float
    images: int

    def as_dict(self) -> dict[str, float]:
        return {"psnr": round(self.psnr, 3), "ssim": round(self.ssim, 4), "images": self.images}


def baseline(name: str, degradation: Degradation, sigma: float = 1.2) -> Callable:
    """A classical reconstruction ``uint8 degraded -> uint8`` for :func:`evaluate`."""
    if name == "as-is":
        return lambda degraded: degraded
    if name == "midbin":
        if degradation.mode is not DegradationMode.QUANTIZE:
            raise ValueError("the mid-bin baseline applies to bit-depth reduction only")
        offset = 2 ** (8 - degradation.bits - 1)
        return lambda degraded: np.minimum(degraded.astype(np.int32) + offset, 255).astype(np.uint8)
    if name == "gaussian":
        return lambda degraded: np.rint(
            gaussian(
                degraded.astype(np.float32) / 255,
                sigma=sigma,
                mode="reflect",
                truncate=3.0,
                channel_axis=-1 if degraded.ndim == 3 else None,
            )
            * 255
        ).astype(np.uint8)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


def evaluate(
    images: Sequence[np.ndarray],
    degradation: Degradation,
    restorer: Callable[[np.ndarray], np.ndarray],
    progress: Callable[[int, int], None] | None = None,
) -> Scores:
    """Degrade each uint8 image, restore it, and average PSNR/SSIM against it."""
    values = []
    for i, clean in enumerate(images):
        rgb = clean.ndim == 3
        degraded = degradation.apply(clean, rgb=rgb)
        restored = restorer(degraded)
        values.append((psnr(clean, restored, rgb=rgb), ssim(clean, restored, rgb=rgb)))
        if progress is not None:
            progress(i + 1, len(images))
    p, s = np.mean(values, axis=0)
    return Scores(float(p), float(s), len(images))
