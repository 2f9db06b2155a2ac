"""Training speed: our engine's iterations vs a bare PyTorch loop, in the same run.

Both train the same U-Net with the same perceptual loss and Adam on batches of
the same size; the bare loop reuses one ready-made batch (no data pipeline, no
updates, no bookkeeping), so ``ratio = bare time / our time`` measures what the
engine costs on top of PyTorch (target >= 0.9). Both run in the engine's mixed precision
(:func:`~napari_compand._device.training_autocast`).

A second table times the engine on the zoo defaults' network (ResUNet M, pixel MSE) with
mixed precision (bf16 autocast on CUDA and on CPUs with native bf16) and without
(``--no-amp``): ``speed-up = float32 time / mixed time``.

A third times the making of one batch of 64 crops of 128² (what a GPU stage waits on) for
the noisy 3-bit recipe and the Bayer recipe, on photographs whose degraded versions are not
cached yet (as in training, where they outnumber the cache), against the same with a thread
pool for every plane (``degrade.THREADED_PLANE_PIXELS = 0``, before 2026-12-04):
``speed-up = pooled time / our time``.

A fourth times the batches a trainer receives, noisy 3-bit recipe, every version degraded
ahead (``prepare``): made in the training loop (``workers=0``) against made ahead in worker
processes (``TrainingImages.batches(workers=N)``, N = the CPU count, at most 4), each batch
converted to tensors as the trainer gets it: ``speed-up = loop time / workers' time``. On a GPU
machine the loop's time is what every iteration waited before.

Run: ``python benchmarks/bench_training.py [--layers conv1_1 conv5_1] [--iterations 4]``.
Prints the device, per-layer seconds per iteration, images/s and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage import data as samples

from napari_compand._device import cpu_has_native_bf16, resolve_device, training_autocast
from napari_compand.losses import PerceptualLoss
from napari_compand.models import RESUNET_SIZES, ModelConfig, build_model
from napari_compand.training import Progress, Trainer, TrainingConfig, TrainingImages


def engine_seconds(config: TrainingConfig, images: TrainingImages) -> float:
    """Mean seconds per iteration of ``Trainer.run`` after one warm-up iteration."""
    trainer = Trainer(config, images)
    stamps = [time.perf_counter() for update in trainer.run() if isinstance(update, Progress)]
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def bare_seconds(config: TrainingConfig, images: TrainingImages) -> float:
    """Mean seconds per iteration of a plain PyTorch loop on one fixed batch."""
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config.model).to(device).train()
    loss_fn = PerceptualLoss(config.loss_layer).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    inputs, targets = images.sample(np.random.default_rng(0), config.batch_size, config.crop_size)
    inputs, targets = inputs.to(device), targets.to(device)
    stamps = []
    for _ in range(config.iterations):
        with training_autocast(device, config.amp):
            loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())  # synchronise, like the engine's loss report
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["conv1_1", "conv5_1"])
    parser.add_argument("--iterations", type=int, default=4, help="timed iterations + 1 warm-up")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--ngf", type=int, default=ModelConfig.ngf)
    parser.add_argument("--depth", type=int, default=ModelConfig.depth)
    parser.add_argument("--max-channels", type=int, default=ModelConfig.max_channels)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    args = parser.parse_args()
    model = ModelConfig(ngf=args.ngf, depth=args.depth, max_channels=args.max_channels)
    params = sum(p.numel() for p in build_model(model).parameters()) / 1e6
    device = resolve_device(args.device)
    print(
        f"device: {device} ({torch.get_num_threads()} threads), U-Net ngf={args.ngf} "
        f"depth={args.depth} cap={args.max_channels} ({params:.1f}M parameters), "
        f"batch {args.batch_size} x {args.crop_size}^2, amp={args.amp} "
        f"(bf16 on {device.type}: {device.type == 'cuda' or cpu_has_native_bf16()})"
    )
    timed = {
        "iterations": args.iterations + 1,
        "batch_size": args.batch_size,
        "crop_size": args.crop_size,
        "validate_every": 0,
        "checkpoint_every": 0,
        "device": args.device,
    }
    print("| loss layer | engine s/it | bare s/it | engine img/s | ratio (bare/engine) |")
    print("|---|---|---|---|---|")
    for layer in args.layers:
        config = TrainingConfig(loss_layer=layer, amp=args.amp, model=model, **timed)
        images = sample_images(config)
        bare = bare_seconds(config, images)
        ours = engine_seconds(config, images)
        print(
            f"| {layer} | {ours:.3f} | {bare:.3f} | {args.batch_size / ours:.1f} | "
            f"{bare / ours:.2f} |"
        )
    widths, blocks = RESUNET_SIZES["M"]
    resunet = ModelConfig(arch="resunet", widths=widths, blocks=blocks, base="bin", bits=3)
    pixel = {"task": "expand", "bits": 3, "perceptual_weight": 0.0, "pixel_weight": 1.0}
    configs = {
        amp: TrainingConfig(amp=amp, model=resunet, **pixel, **timed) for amp in (False, True)
    }
    images = sample_images(configs[False])
    seconds = {amp: engine_seconds(config, images) for amp, config in configs.items()}
    print("\n| ResUNet M, pixel MSE | float32 s/it | mixed s/it | speed-up (float32/mixed) |")
    print("|---|---|---|---|")
    fp32, mixed = seconds[False], seconds[True]
    print(f"| 3-bit expansion | {fp32:.3f} | {mixed:.3f} | {fp32 / mixed:.2f} |")
    crop_making()
    batches_ahead()


def batches_ahead(batches: int = 40) -> None:
    """Milliseconds per noisy 3-bit batch of 64 x 128², made in the loop or in workers."""
    import itertools
    import os

    from napari_compand.degrade import Degradation

    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket()]
    images = TrainingImages(photos, [Degradation("quantize", bits=3)], scales=(1.0, 0.7, 0.5))
    images.prepare()
    options = {
        "grey_fraction": 0.3,
        "noise_fraction": 0.5,
        "noise_sigma": 10.0,
        "noise_shared": 0.5,
    }
    workers = min(4, os.cpu_count() or 1)
    seconds = {}
    for count in (0, workers):
        stream = images.batches(0, 0, 0, 64, 128, workers=count, **options)
        list(itertools.islice(stream, 2 * max(count, 1)))  # workers started, queues full
        start = time.perf_counter()
        list(itertools.islice(stream, batches))
        seconds[count] = (time.perf_counter() - start) / batches
        stream.close()
    loop, ahead = seconds[0] * 1e3, seconds[workers] * 1e3
    print(
        f"\n| noisy 3-bit batches (64 x 128²) | loop ms/batch | {workers} workers ms/batch "
        "| speed-up |"
    )
    print("|---|---|---|---|")
    print(f"| delivered to the trainer | {loop:.0f} | {ahead:.0f} | {loop / ahead:.2f} |")


def crop_making(batches: int = 5) -> None:
    """Milliseconds per batch of 64 x 128² crops, small planes in the calling thread or not."""
    from napari_compand import degrade
    from napari_compand.degrade import Degradation

    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket()]
    recipes = {
        "3 bits, half the crops noisy": (
            [Degradation("quantize", bits=3)],
            {"noise_fraction": 0.5, "noise_sigma": 10.0, "noise_shared": 0.5},
        ),
        "Bayer 4x4 + 8x8, threshold maps": (
            [Degradation("halftone", method=m) for m in ("bayer-4x4", "bayer-8x8")],
            {"threshold_map": True},
        ),
    }
    shipped = degrade.THREADED_PLANE_PIXELS
    print(
        "\n| crops (batch 64 x 128², 30 % grey) | ms/batch | pool per plane ms/batch | speed-up |"
    )
    print("|---|---|---|---|")
    for label, (degradations, options) in recipes.items():
        seconds = {}
        for threshold in (shipped, 0):
            degrade.THREADED_PLANE_PIXELS = threshold
            images = TrainingImages(photos, degradations, scales=(1.0, 0.7, 0.5))
            images.cache_bytes = 0  # every version degraded again, as when they outnumber it
            rng = np.random.default_rng(0)
            start = time.perf_counter()
            for _ in range(batches):
                images.sample(rng, 64, 128, grey_fraction=0.3, **options)
            seconds[threshold] = (time.perf_counter() - start) / batches
        degrade.THREADED_PLANE_PIXELS = shipped
        ours, pooled = seconds[shipped] * 1e3, seconds[0] * 1e3
        print(f"| {label} | {ours:.0f} | {pooled:.0f} | {pooled / ours:.2f} |")


def sample_images(config: TrainingConfig) -> TrainingImages:
    """Three skimage photos, every flip already degraded (no degradation is timed)."""
    images = TrainingImages(
        [samples.astronaut(), samples.coffee(), samples.chelsea()], config.degradations
    )
    images.sample(np.random.default_rng(0), 64, config.crop_size)
    return images


if __name__ == "__main__":
    main()
