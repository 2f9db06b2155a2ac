"""Per-image PSNR of the default models next to the classical baseline: where means come from.

For each degradation (Eq. 2 at ``--bits``, or a ``--halftone``), each clean image is
degraded, restored by the zoo's default model for it with ``restore``'s default options
(2 views) and by the task's classical baseline (mid-bin; the Gaussian blur, sigma 1.2), and
scored with the package's own :mod:`napari_compand.evaluation` (colour, PSNR over RGB).
Prints a markdown table (PSNR per image and degradation; *gain* is model minus baseline)
and a summary line per degradation: the mean, the images the model restores *below* the
baseline, and how much those images take off the mean. ``--csv`` writes every number.

Example::

    python scripts/per_image.py --data ../shared/data/eval/set5 ../shared/data/eval/set14 \\
        --bits 1 2 3 4 5 --csv docs/results/per_image_set5_set14.csv
    python scripts/per_image.py --data ../shared/data/bsds/test --bits 3 4 5 --summary-only
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

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

Rows = list[tuple[str, float, float]]


def measure(
    files: list[Path], images: list[np.ndarray], degradation: Degradation
) -> tuple[str, str, Rows]:
    """The default model's name, the baseline's, and ``(image, baseline PSNR, model PSNR)``
    per image."""
    task = Task.from_degradation(degradation)
    name = zoo.default_model_for(degradation)
    classical = classical_baseline(task)
    scores = evaluate_many(
        images,
        degradation,
        {
            "baseline": baseline(classical, degradation),
            "model": model_restorer(name, self_ensemble=None),
        },
    )
    rows = [
        (file.stem, base[0], net[0])
        for file, base, net in zip(
            files, scores["baseline"].per_image, scores["model"].per_image, strict=True
        )
    ]
    return name, classical, rows


def summary(what: str, name: str, classical: str, rows: Rows) -> str:
    gains = np.array([net - base for _, base, net in rows])
    below = gains < 0
    names = ", ".join(row[0] for row, low in zip(rows, below, strict=True) if low) or "none"
    return (
        f"{what}, `{name}`: mean {np.mean([r[2] for r in rows]):.2f} dB "
        f"({classical} {np.mean([r[1] for r in rows]):.2f}); below {classical} on "
        f"{below.sum()} of {len(rows)} images ({names}), which take "
        f"{-gains[below].sum() / len(rows):.2f} dB off the mean"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="image folders or files")
    parser.add_argument("--bits", nargs="*", type=int, default=[], help="Eq. 2 bit depths")
    parser.add_argument("--halftone", nargs="*", default=[], help="halftone methods")
    parser.add_argument("--csv", type=Path, help="write every image's scores here")
    parser.add_argument("--summary-only", action="store_true", help="no per-image table")
    args = parser.parse_args()

    files = collect_images(args.data)
    images = [to_uint8_channels(read_image(f), 3) for f in files]
    degradations = [Degradation("quantize", bits=b) for b in args.bits] + [
        Degradation("halftone", method=m) for m in args.halftone
    ]
    if not degradations:
        parser.error("give --bits and/or --halftone")
    results = {d.label: measure(files, images, d) for d in degradations}

    if not args.summary_only:
        header = " | ".join(f"{what}: {r[1]} / model (gain)" for what, r in results.items())
        print(f"| image | {header} |\n|---|" + "---|" * len(results))
        for i, file in enumerate(files):
            cells = []
            for _, _, rows in results.values():
                _, base, net = rows[i]
                cells.append(f"{base:.2f} / {net:.2f} ({net - base:+.2f})")
            print(f"| {file.stem} | " + " | ".join(cells) + " |")
    for what, (name, classical, rows) in results.items():
        print(f"- {summary(what, name, classical, rows)}")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["image", "degradation", "model", "baseline", "baseline_psnr_db", "model_psnr_db"]
            )
            for what, (name, classical, rows) in results.items():
                for image, base, net in rows:
                    writer.writerow([image, what, name, classical, f"{base:.3f}", f"{net:.3f}"])


if __name__ == "__main__":
    main()
