"""Inference speed and memory: tiled ``restore`` vs one bare forward pass, in the same run.

* Throughput (megapixels/s) of ``restore`` with one view on a 768x512 and a 4096x4096
  RGB image, next to a bare ``model(x)`` on the same float32 image in one piece (no
  tiling, no dtype conversion, no blending): ``ratio = bare time / our time``.
  On the 4096x4096 image the default tiles (1024 px, 256 px overlap) compute
  about 1.8x the pixels, which the ratio shows.
* The cost of the self-ensembles (2 views, the default, and 8 per tile: turns and flips
  for expansion, pixel shifts for halftones) against one view of the same 768x512 image:
  ``ratio = ensemble time / one view's time`` (2 and 8 expected).
* The default model of each task (and, for inverse halftoning, the default for
  halftones other than Floyd–Steinberg) against the paper U-Net it replaced
  (``inverse-halftone/conv1_1``: the same network as ``conv1_1-pixel``, the retired
  inverse-halftoning default; ``expand-3bit/conv1_1``, ``expand-5bit/conv1_1``) on a
  768x512 RGB image: seconds per image with the default
  options (the mean of 2 views; budget: 1.0 s on a 2-core CPU) and
  ``ratio = default time / paper U-Net time`` (one view, its default when it shipped).
* The header names the CPU's vector capability (``AVX2``, ``AVX512``): the same
  defaults ran 1.1-1.6x slower on AVX2-only cores than on AVX-512 ones, depending on the
  host's load (``docs/results.md``).
* Peak resident memory of a subprocess that restores an 8192x8192 RGB uint8
  image (target < 2 GB), next to the size of its input + output arrays.

Run: ``python benchmarks/bench_inference.py [--model inverse-halftone/conv1_1]
[--device cpu] [--skip-memory]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from napari_compand.degrade import Degradation
from napari_compand.inference import load_model, restore


def _image(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 2, (height, width, 3), dtype=np.uint8) * 255  # halftone-like


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(model: str, device: str, height: int, width: int, runs: int) -> None:
    image = _image(height, width)
    loaded = load_model(model)
    network = loaded.network.to(device)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)

    def bare() -> None:
        with torch.inference_mode():
            network(x).clamp(0, 1).cpu()

    ours = best_of(runs, lambda: restore(image, loaded, device=device, self_ensemble=1))
    reference = best_of(runs, bare)
    megapixels = height * width / 1e6
    print(
        f"{width}x{height} RGB: restore {ours:.2f} s = {megapixels / ours:.2f} MP/s; "
        f"bare forward {reference:.2f} s = {megapixels / reference:.2f} MP/s; "
        f"ratio {reference / ours:.2f}"
    )


def ensemble_cost(model: str, device: str, runs: int) -> None:
    image = _image(512, 768)
    loaded = load_model(model)
    seconds = {
        views: best_of(
            runs, lambda views=views: restore(image, loaded, device=device, self_ensemble=views)
        )
        for views in (1, 2, 8)
    }
    for views in (2, 8):
        print(
            f"768x512 RGB self-ensemble of {views} views: {seconds[views]:.2f} s vs one view "
            f"{seconds[1]:.2f} s, ratio {seconds[views] / seconds[1]:.2f} ({views} passes)"
        )


#: what the default is for -> (task, bits, halftone, the paper U-Net default it replaced;
#: for inverse halftoning that was conv1_1-pixel, since retired: conv1_1 is the same network)
PREVIOUS_DEFAULTS = {
    "inverse-halftone": ("inverse-halftone", None, None, "inverse-halftone/conv1_1"),
    "inverse-halftone, other halftones": (
        "inverse-halftone",
        None,
        Degradation("halftone", method="jarvis-judice-ninke"),
        "inverse-halftone/conv1_1",
    ),
    # 1-5 bits: the largest expansion defaults (ResUNet M, grown from S); two stand for all
    "expand, 3 bits": ("expand", 3, None, "expand-3bit/conv1_1"),
    "expand, 5 bits": ("expand", 5, None, "expand-5bit/conv1_1"),
}


def default_vs_previous(device: str, runs: int) -> None:
    from napari_compand import zoo

    image = _image(512, 768)
    for label, (task, bits, halftone, previous) in PREVIOUS_DEFAULTS.items():
        default = zoo.default_model(task, bits, halftone=halftone)
        # the default with its default options; the U-Net with one view, as it shipped
        settings = {default: {}, previous: {"self_ensemble": 1}}
        times = {
            name: best_of(runs, lambda n=name, e=extra: restore(image, n, device=device, **e))
            for name, extra in settings.items()
        }
        budget = "within" if times[default] <= 1.0 else "OVER"
        print(
            f"768x512 RGB {label}: default {default} {times[default]:.2f} s ({budget} the "
            f"1.0 s budget) vs {previous} {times[previous]:.2f} s, "
            f"ratio {times[default] / times[previous]:.2f}"
        )


def peak_memory(model: str, device: str, size: int) -> None:
    code = f"""
import json, resource, time
import numpy as np
from napari_compand.inference import restore
image = np.random.default_rng(0).integers(0, 2, ({size}, {size}, 3), dtype=np.uint8) * 255
start = time.perf_counter()
out = restore(image, {model!r}, device={device!r})
print(json.dumps({{"seconds": time.perf_counter() - start,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr)
    record = json.loads(result.stdout.strip().splitlines()[-1])
    peak = record["peak_kb"] / 2**20
    arrays = 2 * size * size * 3 / 2**30
    print(
        f"{size}x{size} RGB: peak resident {peak:.2f} GiB (target < 2 GB; input + output "
        f"arrays {arrays:.2f} GiB), {record['seconds']:.0f} s "
        f"= {size * size / 1e6 / record['seconds']:.2f} MP/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="inverse-halftone/conv1_1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    # the CPU's vector unit sets the pace (AVX-512 vs AVX2: docs/results.md)
    cpu = torch.backends.cpu.get_cpu_capability()
    print(
        f"device {args.device}, CPU capability {cpu}, torch threads {torch.get_num_threads()}, "
        f"model {args.model}"
    )
    if not args.memory_only:
        throughput(args.model, args.device, 512, 768, args.runs)
        throughput(args.model, args.device, 4096, 4096, 1)
        ensemble_cost(args.model, args.device, args.runs)
        default_vs_previous(args.device, args.runs)
    if not args.skip_memory:
        peak_memory(args.model, args.device, 8192)


if __name__ == "__main__":
    main()
