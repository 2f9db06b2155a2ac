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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from skimage.color import rgb2gray
from skimage.filters import gaussian
from skimage.util import img_as_ubyte

from .degrade import HALFTONE_BLUR_SIGMA, Degradation, DegradationMode, add_noise
from .metrics import psnr, ssim
from .vocabulary import Task

__all__ = [
    "BASELINES",
    "BLUR_SIGMAS",
    "NOISE_SIGMAS",
    "Scores",
    "baseline",
    "best_gaussian",
    "classical_baseline",
    "evaluate",
    "evaluate_many",
    "grey_version",
    "model_restorer",
    "noise_robustness",
    "noisy_versions",
    "score",
]

#: Gaussian sigmas (pixels) that :func:`best_gaussian` tries.
BLUR_SIGMAS = (0.8, 1.0, 1.2, 1.5, 1.8, 2.2, 2.6, 3.0)

BASELINES = ("as-is", "midbin", "gaussian")

#: Noise levels (standard deviation in 8-bit levels) that :func:`noise_robustness` tries.
NOISE_SIGMAS = (0.0, 2.0, 4.0, 8.0)

K = TypeVar("K")


@dataclass(frozen=True)
class Scores:
    """Mean PSNR (dB) and SSIM over ``images`` images; ``per_image`` keeps each image's
    ``(psnr, ssim)`` in input order when the scores were measured (empty when read back
    from a table)."""

    psnr: float
    ssim: float
    images: int
    per_image: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def mean(cls, values: Sequence[tuple[float, float]]) -> Scores:
        """Mean of per-image ``(psnr, ssim)`` pairs."""
        p, s = np.mean(values, axis=0)
        kept = tuple((float(a), float(b)) for a, b in values)
        return cls(float(p), float(s), len(values), kept)

    def as_dict(self) -> dict[str, float]:
        return {"psnr": round(self.psnr, 3), "ssim": round(self.ssim, 4), "images": self.images}

    def images_below(self, other: Scores) -> int:
        """How many images score a lower PSNR here than in ``other`` (the same images,
        in the same order, both measured)."""
        if not self.per_image or len(self.per_image) != len(other.per_image):
            raise ValueError("images_below needs the per-image scores of the same images")
        return sum(a[0] < b[0] for a, b in zip(self.per_image, other.per_image, strict=True))


def classical_baseline(task: str | Task) -> str:
    """The baseline of :data:`BASELINES` a task's models are compared with (and whose
    scores the zoo's metadata stores): ``midbin`` for expansion, ``gaussian`` for
    inverse halftoning.

    >>> classical_baseline("expand"), classical_baseline("inverse-halftone")
    ('midbin', 'gaussian')
    """
    return "midbin" if Task(task) is Task.EXPAND else "gaussian"


def baseline(name: str, degradation: Degradation, sigma: float = HALFTONE_BLUR_SIGMA) -> Callable:
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


def model_restorer(
    model: Any,
    *,
    consistent: bool = False,
    self_ensemble: bool | int | None = False,
    device: str = "auto",
    grey_partner: bool = True,
) -> Callable[[np.ndarray], np.ndarray]:
    """``uint8 degraded -> uint8 restored`` with a network, for :func:`evaluate`.

    ``model`` is anything :func:`~napari_compand.inference.restore` accepts;
    ``(Y, X, 3)`` images are colour, 2D images grey. By default it scores the network
    alone (one view); ``self_ensemble`` 2 or 8 averages that many views, ``None`` as
    many as :func:`~napari_compand.inference.restore` does by default (2 for expansion).
    ``grey_partner=False`` scores the model's own network on grey images, not its zoo
    partner's.
    """
    from .inference import load_model, restore

    loaded = load_model(model)
    return lambda degraded: restore(
        degraded,
        loaded,
        rgb=degraded.ndim == 3,
        device=device,
        consistent=consistent,
        self_ensemble=self_ensemble,
        grey_partner=grey_partner,
    )


def grey_version(image: np.ndarray) -> np.ndarray:
    """uint8 luminance of an RGB image (``skimage.color.rgb2gray``: ITU-R 709
    weights 0.2125 R + 0.7154 G + 0.0721 B); a 2D image is returned as is."""
    if image.ndim == 2:
        return image
    return img_as_ubyte(rgb2gray(image[..., :3]))


def evaluate(
    images: Sequence[np.ndarray],
    degradation: Degradation,
    restorer: Callable[[np.ndarray], np.ndarray],
    progress: Callable[[int, int], None] | None = None,
) -> Scores:
    """Degrade each uint8 image, restore it, and average PSNR/SSIM against it."""
    return evaluate_many(images, degradation, {0: restorer}, progress)[0]


def evaluate_many(
    images: Sequence[np.ndarray],
    degradation: Degradation,
    restorers: Mapping[K, Callable[[np.ndarray], np.ndarray]],
    progress: Callable[[int, int], None] | None = None,
) -> dict[K, Scores]:
    """The one scoring loop: each image is degraded once and restored by every
    restorer; returns each restorer's mean PSNR/SSIM (see :func:`score`).

    ``progress(done, total)`` is called after each restoration. The command line's
    ``eval`` (:func:`napari_compand.paper_tables.measure`), the zoo's packaging and
    :func:`evaluate` all score through here.
    """
    values: dict[K, list[tuple[float, float]]] = {key: [] for key in restorers}
    total, done = len(images) * len(restorers), 0
    for clean in images:
        degraded = degradation.apply(clean, rgb=clean.ndim == 3)
        for key, restorer in restorers.items():
            values[key].append(score(clean, restorer(degraded)))
            done += 1
            if progress is not None:
                progress(done, total)
    return {key: Scores.mean(pairs) for key, pairs in values.items()}


def noisy_versions(
    images: Sequence[np.ndarray], sigma: float, seed: int = 0, shared: bool = False
) -> list[np.ndarray]:
    """Each of ``images`` with :func:`~napari_compand.degrade.add_noise` of ``sigma``
    levels (``shared``: one field for all channels, as in camera photographs), one
    generator seeded ``seed`` for the list; ``sigma`` 0 returns the images as they are.

    Examples
    --------
    >>> flat = np.full((64, 64), 128, np.uint8)
    >>> round(float(noisy_versions([flat], 4.0)[0].std()))
    4
    """
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0 levels, got {sigma}")
    if sigma == 0:
        return list(images)
    rng = np.random.default_rng(seed)
    return [add_noise(image, sigma, rng, shared) for image in images]


def noise_robustness(
    images: Sequence[np.ndarray],
    degradation: Degradation,
    restorers: Mapping[K, Callable[[np.ndarray], np.ndarray]],
    sigmas: Sequence[float] = NOISE_SIGMAS,
    seed: int = 0,
    shared: bool = False,
) -> dict[float, dict[K, Scores]]:
    """Scores on noisy images (micrographs, low light): for each ``sigma``, every image
    plus Gaussian noise of that level (:func:`noisy_versions`; ``shared``: one field for all
    channels) is the ground truth, is degraded and restored by each restorer
    (:func:`evaluate_many`).

    Inside noise the position of a value in its quantization bin cannot be predicted, so
    a model that learned clean photographs' smoothness can fall below its classical
    baseline here while beating it on clean images; compare both at each ``sigma``.
    """
    return {
        float(sigma): evaluate_many(
            noisy_versions(images, sigma, seed, shared), degradation, restorers
        )
        for sigma in sigmas
    }


def score(clean: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of one restoration against its clean image (``(Y, X, 3)`` as colour)."""
    rgb = clean.ndim == 3
    return psnr(clean, restored, rgb=rgb), ssim(clean, restored, rgb=rgb)


def best_gaussian(
    images: Sequence[np.ndarray],
    degradation: Degradation,
    sigmas: Sequence[float] = BLUR_SIGMAS,
) -> tuple[float, Scores]:
    """The Gaussian blur with the highest mean PSNR on ``images``: ``(sigma, scores)``.

    The fairest classical baseline for a halftone of any kind: each method gets
    its own best sigma (Floyd–Steinberg: 1.2 on Set5 + Set14; ordered dithers
    need more).
    """
    if not sigmas:
        raise ValueError("give at least one sigma")
    blurs = {sigma: baseline("gaussian", degradation, sigma) for sigma in sigmas}
    found = evaluate_many(images, degradation, blurs)
    sigma = max(found, key=lambda s: found[s].psnr)  # the first of equals
    return sigma, found[sigma]
