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

from napari_compand import zoo
from napari_compand._io import collect_images, read_image, to_uint8_channels
from napari_compand.degrade import Degradation
from napari_compand.evaluation import (
    NOISE_SIGMAS,
    baseline,
    classical_baseline,
    model_restorer,
    noise_robustness,
)
from napari_compand.vocabulary import Task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="clean image folders or files")
    parser.add_argument("--bits", nargs="*", type=int, default=[], help="Eq. 2 bit depths")
    parser.add_argument("--halftone", nargs="*", default=[], help="halftone methods")
    parser.add_argument("--sigmas", nargs="+", type=float, default=list(NOISE_SIGMAS))
    parser.add_argument("--views", type=int, default=2, choices=(1, 2, 8))
    parser.add_argument("--models", nargs="*", default=[], help="instead of the defaults")
    parser.add_argument(
        "--shared", action="store_true", help="one noise field for all channels (camera-like)"
    )
    args = parser.parse_args()

    degradations = [Degradation("quantize", bits=b) for b in args.bits] + [
        Degradation("halftone", method=m) for m in args.halftone
    ]
    if not degradations:
        parser.error("give --bits and/or --halftone")
    clean = [to_uint8_channels(read_image(f), 3) for f in collect_images(args.data)]
    header = " | ".join(f"sigma {s:g}" for s in args.sigmas)
    print(
        f"| degradation | model | baseline | {header} |\n|---|---|---|" + "---|" * len(args.sigmas)
    )
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
            found = noise_robustness(clean, degradation, restorers, args.sigmas, shared=args.shared)
            for scores in found.values():
                base, net = scores["baseline"], scores["model"]
                below = net.images_below(base)
                cells.append(
                    f"{base.psnr:.2f} → {net.psnr:.2f} ({net.psnr - base.psnr:+.2f}; {below} below)"
                )
            print(
                f"| {degradation.label} | `{name}` | {classical} | " + " | ".join(cells) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
