"""Fit the discriminant by which ``degrade.detect_error_diffusion`` names a halftone's kernel.

Every error-diffusion method of ``degrade.KNOWN_HALFTONES`` (raster and serpentine
Floyd–Steinberg, Jarvis–Judice–Ninke, Stucki, Burkes, Sierra, Sierra Lite, Atkinson,
and Riemersma's along a Hilbert curve) halftones each training image (colour and grey in turn), and
``_diffusion.diffusion_signature`` is taken of the part the detector reads (the central
``degrade.DITHER_DETECTION_SIZE`` square) and of one random 256x256 crop. A linear
discriminant (class means and the pooled, slightly regularised within-class covariance
of the standardised signatures) is written with its accuracy on the ``--test`` folders,
images it never saw, to ``src/napari_compand/_data/error_diffusion.safetensors``.

Example (how the shipped file was made)::

    python scripts/fit_error_diffusion_detector.py --train ../shared/data/bsds/train \\
        --test ../shared/data/eval/set5 ../shared/data/eval/set14 ../shared/data/bsds/test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from napari_compand import degrade
from napari_compand._diffusion import SIGNATURE_LAGS, SIGNATURE_LEVELS, SIGNATURE_WINDOW
from napari_compand._io import collect_images, read_image
from napari_compand.evaluation import grey_version

OUT = Path(__file__).resolve().parents[1] / "src/napari_compand/_data/error_diffusion.safetensors"
CLASSES = [m for m in degrade.KNOWN_HALFTONES if m[0] not in degrade.ORDERED_METHODS]
CROP = 256
RIDGE = 1e-3


def signatures(files: list[Path], *, crops: bool, seed: int = 0):
    """Signatures of every class's halftone of every file (colour for even, grey for odd
    indices), of what the detector reads and, with ``crops``, of one random crop.
    Returns ``(X, y, kind)``; kind 0 = the detector's view, 1 = a crop."""
    rng = np.random.default_rng(seed)
    rows, labels, kinds = [], [], []
    for i, path in enumerate(files):
        image = read_image(path)
        image = image[..., :3] if image.ndim == 3 else image
        if i % 2 and image.ndim == 3:
            image = grey_version(image)
        for label, (method, serpentine) in enumerate(CLASSES):
            tone = degrade.halftone(image, method, serpentine)
            views = [(tone, 0)]
            if crops and min(tone.shape[:2]) > CROP:
                y = rng.integers(0, tone.shape[0] - CROP)
                x = rng.integers(0, tone.shape[1] - CROP)
                views.append((tone[y : y + CROP, x : x + CROP], 1))
            for view, kind in views:
                rows.append(degrade.error_diffusion_signature(view, rgb=view.ndim == 3)[0])
                labels.append(label)
                kinds.append(kind)
    return np.array(rows), np.array(labels), np.array(kinds)


def _label(halftone: tuple[str, bool]) -> str:
    method, serpentine = halftone
    return degrade.Degradation("halftone", method=method, serpentine=serpentine).label.removeprefix(
        "halftone "
    )


def fit(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Standardisation, class means and the pooled within-class precision."""
    mean, scale = X.mean(0), X.std(0) + 1e-9
    Z = (X - mean) / scale
    centroids = np.stack([Z[y == k].mean(0) for k in range(len(CLASSES))])
    within = sum(np.cov(Z[y == k].T) * ((y == k).sum() - 1) for k in range(len(CLASSES)))
    within = within / (len(y) - len(CLASSES)) + RIDGE * np.eye(Z.shape[1])
    return {
        "mean": mean.astype(np.float32),
        "scale": scale.astype(np.float32),
        "centroids": centroids.astype(np.float32),
        "precision": np.linalg.inv(within).astype(np.float32),
    }


def predict(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    Z = (X - model["mean"]) / model["scale"]
    d = Z[:, None, :] - model["centroids"][None]
    return np.einsum("nkf,fg,nkg->nk", d, model["precision"], d).argmin(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, nargs="+", default=[])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    train = collect_images([args.train])
    X, y, _ = signatures(train, crops=True)
    model = fit(X, y)
    scores = {}
    for folder in args.test:
        Xt, yt, kind = signatures(collect_images([folder]), crops=True, seed=1)
        predicted = predict(model, Xt)
        right = predicted == yt
        whole = kind == 0
        scores[folder.name] = {
            "images": int(whole.sum() // len(CLASSES)),
            "whole": round(float(right[whole].mean()), 4),
            f"{CROP}x{CROP}": round(float(right[kind == 1].mean()), 4)
            if (kind == 1).any()
            else None,
            # per class, whole images: share named right, and what the misses were named
            "by_class": {
                _label(label): {
                    "right": round(float(right[whole & (yt == k)].mean()), 4),
                    "missed_as": sorted(
                        {_label(CLASSES[j]) for j in predicted[whole & (yt == k) & ~right]}
                    ),
                }
                for k, label in enumerate(CLASSES)
            },
        }
        print(folder, scores[folder.name], flush=True)
    metadata = {
        "classes": CLASSES,
        "lags": SIGNATURE_LAGS,
        "levels": SIGNATURE_LEVELS,
        "window": SIGNATURE_WINDOW,
        "detection_size": degrade.DITHER_DETECTION_SIZE,
        "train": f"{args.train.name}: {len(train)} images, colour and grey in turn, the "
        f"detector's view and one {CROP}x{CROP} crop each",
        "ridge": RIDGE,
        "accuracy": scores,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(model, str(args.out), metadata={"napari_compand": json.dumps(metadata)})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
