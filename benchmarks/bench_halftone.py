"""Floyd–Steinberg speed: napari-compand vs Pillow's C loop, measured in one run.

Pillow's ``Image.convert("1")`` is Floyd–Steinberg error diffusion in C (integer
arithmetic, one 2D plane at a time). We time our float64 kernel on

* a 4096x4096 grey plane (target: >= 1.0x Pillow),
* a 4096x4096 RGB image against Pillow on each channel in turn (target >= 1.5x),
* a stack of 8 grey 2048x2048 planes against Pillow plane by plane (target >= 1.5x),

and print ``speed-up = Pillow time / our time`` (best of ``--repeat`` runs after
a warm-up that compiles the kernels). Run: ``python benchmarks/bench_halftone.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from PIL import Image
from skimage import data
from skimage.transform import resize

from napari_compand.degrade import halftone


def best_time(func: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``func`` (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def pillow_planes(planes: list[np.ndarray]) -> list[np.ndarray]:
    """Pillow's Floyd–Steinberg on each 2D plane in turn."""
    return [np.asarray(Image.fromarray(plane).convert("1")) for plane in planes]


def natural(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` resized to ``shape`` as uint8 (a realistic, non-random test image)."""
    return (resize(image, shape, anti_aliasing=False) * 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.size
    gray = natural(data.camera(), (n, n))
    rgb = natural(data.astronaut(), (n, n, 3))
    stack = np.stack(
        [natural(np.roll(data.camera(), 40 * i, axis=1), (n // 2, n // 2)) for i in range(8)]
    )

    cases = [
        (f"grey {n}x{n}", gray, [gray], 1.0),
        (f"RGB {n}x{n}x3", rgb, [np.ascontiguousarray(rgb[..., c]) for c in range(3)], 1.5),
        (f"stack 8x{n // 2}x{n // 2}", stack, list(stack), 1.5),
    ]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores available: {cores}")
    print("| case | Pillow (s) | ours (s) | speed-up | target |")
    print("|---|---|---|---|---|")
    for name, image, planes, target in cases:
        halftone(image)  # compile for this layout outside the timing
        ours = best_time(lambda image=image: halftone(image), args.repeat)
        pil = best_time(lambda planes=planes: pillow_planes(planes), args.repeat)
        ratio = pil / ours
        flag = "ok" if ratio >= target else "MISSED"
        print(f"| {name} | {pil:.3f} | {ours:.3f} | {ratio:.2f}x | >= {target}x {flag} |")


if __name__ == "__main__":
    main()
