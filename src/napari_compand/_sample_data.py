"""Sample images for napari's File > Open Sample menu (offline, from skimage.data).

Each degraded sample comes with its clean original, so PSNR/SSIM and, later,
restoration can be tried at once. Degraded layers carry the same metadata the
Degrade widget writes.
"""

from __future__ import annotations

import numpy as np
from skimage import data

from .degrade import Degradation, DegradationMode

__all__ = ["astronaut", "astronaut_3bit", "astronaut_halftone", "camera", "camera_halftone"]

LayerDataTuple = tuple[np.ndarray, dict, str]

FLOYD_STEINBERG = Degradation(DegradationMode.HALFTONE, method="floyd-steinberg")
THREE_BIT = Degradation(DegradationMode.QUANTIZE, bits=3)


def _clean(name: str, image: np.ndarray) -> LayerDataTuple:
    return (image, {"name": name, "rgb": image.ndim == 3, "contrast_limits": (0, 255)}, "image")


def _degraded(name: str, image: np.ndarray, spec: Degradation) -> LayerDataTuple:
    meta = {
        "name": f"{name} [{spec.label}]",
        "rgb": image.ndim == 3,
        "contrast_limits": (0, 255),
        "metadata": spec.layer_metadata(name),
    }
    return (spec.apply(image), meta, "image")


def astronaut() -> list[LayerDataTuple]:
    """The colour astronaut photograph (512x512 RGB, uint8)."""
    return [_clean("astronaut", data.astronaut())]


def camera() -> list[LayerDataTuple]:
    """The grey cameraman photograph (512x512, uint8)."""
    return [_clean("camera", data.camera())]


def astronaut_halftone() -> list[LayerDataTuple]:
    """Astronaut and its Floyd–Steinberg halftone."""
    image = data.astronaut()
    return [_clean("astronaut", image), _degraded("astronaut", image, FLOYD_STEINBERG)]


def camera_halftone() -> list[LayerDataTuple]:
    """Cameraman and its Floyd–Steinberg halftone."""
    image = data.camera()
    return [_clean("camera", image), _degraded("camera", image, FLOYD_STEINBERG)]


def astronaut_3bit() -> list[LayerDataTuple]:
    """Astronaut and its 3-bit version (Eq. 2)."""
    image = data.astronaut()
    return [_clean("astronaut", image), _degraded("astronaut", image, THREE_BIT)]
