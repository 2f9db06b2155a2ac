"""How the default models fare on noisy images (micrographs, low light), next to the baseline.

Each clean image gets Gaussian noise of standard deviation ``sigma`` (8-bit levels; fixed seed;
rounded and clipped), and that noisy image is the ground truth: it is degraded (Eq. 2 at
``--bits``, or a ``--halftone``) and restored by the zoo's default model for it, with
``--views`` views (restore's default is 2), and by the classical baseline (mid-bin; the
Gaussian blur, sigma 1.2). Prints a markdown table: mean PSNR (colour) per noise level and
how many images the model restores below the baseline.

Example::

    python scripts/noise_robustness.py --data ../shared/data/eval/set5 ../shared/data/eval/set14 \\
        --bits 1 2 3 4 5 6 7 --halftone floyd-steinberg --sigmas 0 2 4 8
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_compand import zoo
from napari_compand._io import collect_images, read_image, to_uint8_channels
from napari_compand.degrade import Degradation
from napari_compand.evaluation import (
    baseline,
    classical_baseline,
    evaluate_many,
    model_restorer,
)
from napari_compand.vocabulary import Task


def noisy(images: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    """``images`` plus Gaussian noise of ``sigma`` levels, rounded and clipped to uint8."""
    if sigma == 0:
        return images
    rng = np.random.default_rng(seed)
    return [
        np.clip(np.rint(i + rng.normal(0.0, sigma, i.shape)), 0, 255).astype(np.uint8)
        for i in images
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="clean image folders or files")
    parser.add_argument("--bits", nargs="*", type=int, default=[], help="Eq. 2 bit depths")
    parser.add_argument("--halftone", nargs="*", default=[], help="halftone methods")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0, 2, 4, 8])
    parser.add_argument("--views", type=int, default=2, choices=(1, 2, 8))
    parser.add_argument("--models", nargs="*", default=[], help="instead of the defaults")
    args = parser.parse_args()

    degradations = [Degradation("quantize", bits=b) for b in args.bits] + [
        Degradation("halftone", method=m) for m in args.halftone
    ]
    if not degradations:
        parser.error("give --bits and/or --halftone")
    clean = [to_uint8_channels(read_image(f), 3) for f in collect_images(args.data)]
    versions = {sigma: noisy(clean, sigma) for sigma in args.sigmas}
    header = " | ".join(f"sigma {s:g}" for s in args.sigmas)
    print(f"| degradation | model | baseline | {header} |\n|---|---|---|" + "---|" * len(versions))
    for degradation in degradations:
        task = Task.from_degradation(degradation)
        names = args.models or [zoo.default_model_for(degradation)]
        classical = classical_baseline(task)
        for name in names:
            restorers = {
                "baseline": baseline(classical, degradation),
                "model": model_restorer(name, self_ensemble=args.views),
            }
            cells = []
            for images in versions.values():
                scores = evaluate_many(images, degradation, restorers)
                base, net = scores["baseline"], scores["model"]
                below = sum(n[0] < b[0] for n, b in zip(net.per_image, base.per_image, strict=True))
                cells.append(
                    f"{base.psnr:.2f} → {net.psnr:.2f} ({net.psnr - base.psnr:+.2f}; {below} below)"
                )
            print(
                f"| {degradation.label} | `{name}` | {classical} | " + " | ".join(cells) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
