"""The CUDA checks no CPU can run, written as JSON: run them on a machine with a GPU.

1. **fp16 inference**: the default expansion and inverse-halftoning models on the GPU in
   float16 and float32 against float32 on the CPU (PSNR to the clean image, largest
   difference in grey levels).
2. **A real out-of-memory retry**: with the process capped at a few hundred MiB of GPU
   memory, one tile of a large image cannot fit; :func:`~napari_compand.inference.restore`
   must retry with smaller tiles and give the result of an uncapped run.
3. **Memory released**: after each call the GPU memory allocated is back where it was.
4. **Crops converted on the GPU**: ``TrainingImages.sample(device="cuda")`` (what the trainer
   asks for) gives the CPU's crops bit for bit, noisy crops and Bayer threshold maps too, and
   how many milliseconds a batch of 64 x 128² takes each way.

Example::

    python scripts/cuda_checks.py --out cuda_checks.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage import data

from napari_compand import inference, zoo
from napari_compand.degrade import halftone, quantize
from napari_compand.inference import restore
from napari_compand.metrics import psnr


def _allocated() -> int:
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated()


def precision_check(name: str, clean: np.ndarray, degraded: np.ndarray) -> dict:
    """PSNR and differences of GPU float16 / float32 against CPU float32."""
    before = _allocated()
    cpu = restore(degraded, name, device="cpu", precision="float32")
    result = {"model": name, "psnr_cpu_float32": psnr(clean, cpu, rgb=True)}
    for precision in ("float16", "float32"):
        started = time.perf_counter()
        gpu = restore(degraded, name, device="cuda", precision=precision)
        result[f"seconds_cuda_{precision}"] = time.perf_counter() - started
        diff = np.abs(gpu.astype(np.int16) - cpu.astype(np.int16))
        result[f"psnr_cuda_{precision}"] = psnr(clean, gpu, rgb=True)
        result[f"max_levels_off_{precision}"] = int(diff.max())
        result[f"share_off_{precision}"] = float((diff > 0).mean())
    result["allocated_before"] = before
    result["allocated_after"] = _allocated()
    result["released"] = result["allocated_after"] <= before
    return result


def out_of_memory_check(name: str, degraded: np.ndarray, cap_mib: int) -> dict:
    """Restore with one big tile under a memory cap: the retry must make it fit."""
    reference = restore(degraded, name, device="cuda", precision="float32", tile_size=512)
    retries: list[tuple[int, int]] = []  # (batch, tile) after each out-of-memory retry
    smaller = inference._smaller

    def counted(batch_size: int, plan: object) -> tuple[int, object]:
        batch_size, plan = smaller(batch_size, plan)
        retries.append((batch_size, plan.tile))
        return batch_size, plan

    inference._smaller = counted  # instrumented: how often the retry ran
    fraction = cap_mib * 2**20 / torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(fraction)
    before = _allocated()
    try:
        capped = restore(
            degraded,
            name,
            device="cuda",
            precision="float32",
            tile_size=max(degraded.shape[:2]),
            batch_size=4,
        )
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        inference._smaller = smaller
    diff = np.abs(capped.astype(np.int16) - reference.astype(np.int16))
    return {
        "model": name,
        "image": list(degraded.shape),
        "cap_mib": cap_mib,
        "retries_batch_tile": retries,
        "max_levels_off_vs_512px_tiles": int(diff.max()),
        "released": _allocated() <= before,
    }


def crops_on_device_check(batches: int = 10) -> dict:
    """The same batches made on the CPU and converted on the GPU: equal, and their cost."""
    from napari_compand.degrade import Degradation
    from napari_compand.training.data import TrainingImages

    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    recipes = {
        "noisy 3-bit": (
            [Degradation("quantize", bits=3)],
            {"noise_fraction": 0.5, "noise_sigma": 10.0, "noise_shared": 0.5},
        ),
        "Bayer + threshold maps": (
            [Degradation("halftone", method=m) for m in ("bayer-4x4", "bayer-8x8")],
            {"threshold_map": True},
        ),
    }
    report = {}
    for label, (degradations, options) in recipes.items():
        images = TrainingImages(photos, degradations)
        images.prepare(2)
        row: dict = {}
        for device in ("cpu", "cuda"):
            start = time.perf_counter()
            made = [
                images.sample(
                    np.random.default_rng(i), 64, 128, grey_fraction=0.3, device=device, **options
                )
                for i in range(batches)
            ]
            torch.cuda.synchronize()
            row[f"{device} ms/batch"] = (time.perf_counter() - start) / batches * 1e3
            row[device] = made
        row["equal"] = all(
            torch.equal(a, b.cpu())
            for pair_cpu, pair_gpu in zip(row.pop("cpu"), row.pop("cuda"), strict=True)
            for a, b in zip(pair_cpu, pair_gpu, strict=True)
        )
        report[label] = row
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--cap-mib", type=int, nargs="+", default=[2000, 1200, 400])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: these checks need one")
    clean = data.astronaut()
    expand = zoo.default_model("expand", bits=4)
    inverse = zoo.default_model("inverse-halftone")
    report = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "precision": [
            precision_check(expand, clean, quantize(clean, 4, rgb=True)),
            precision_check(inverse, clean, halftone(clean, rgb=True)),
        ],
    }
    report["crops_on_device"] = crops_on_device_check()
    large = np.tile(quantize(clean, 4, rgb=True), (6, 6, 1))  # 3072 x 3072 RGB
    report["out_of_memory"] = []
    for cap in args.cap_mib:
        try:
            report["out_of_memory"].append(out_of_memory_check(expand, large, cap))
        except MemoryError as err:  # the clear error when even the least tile cannot fit
            report["out_of_memory"].append({"cap_mib": cap, "error": str(err)})
    with open(args.out, "w") as file:
        json.dump(report, file, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
