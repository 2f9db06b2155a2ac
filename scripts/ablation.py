"""Equal wall-clock ablation: the paper's U-Net against full-resolution ResUNets.

Every run trains one network with the same data, crops, batch, optimizer and a
PSNR-oriented pixel loss for the same number of seconds, logs its training loss,
then scores Set5 + Set14 (colour, mean over images) with
:func:`napari_compand.inference.restore` and times one 768x512 RGB restoration.
Runs are listed in :data:`RUNS`; results go to ``<out>/<run>.json`` (loss curve,
iterations, scores, seconds per image) next to the checkpoint. A run whose JSON
exists is skipped, so the script can be restarted.

Example (two lanes at once, one thread each, 20 minutes per run, as in docs/results.md)::

    python scripts/ablation.py --lane 0 --lanes 2 --threads 1 --seconds 1200 \\
        --train ../shared/data/bsds/train ../shared/data/bsds/val \\
        --eval ../shared/data/eval/set5 ../shared/data/eval/set14 --out runs/ablation &
    python scripts/ablation.py --lane 1 --lanes 2 ... &
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from napari_compand.degrade import HALFTONE_BLUR_SIGMA
from napari_compand.models import RESUNET_SIZES

#: The zoo's paper U-Net (1.58 M parameters).
PAPER = {"arch": "unet", "ngf": 32, "depth": 6, "max_channels": 96}


def _resunet(size: str) -> dict:
    widths, blocks = RESUNET_SIZES[size]
    return {"arch": "resunet", "widths": widths, "blocks": blocks}


def _ih(model: dict) -> dict:
    return {
        "task": "inverse-halftone",
        "model": {**model, "base": "gaussian", "sigma": HALFTONE_BLUR_SIGMA},
    }


def _ex4(model: dict, base: str) -> dict:
    return {"task": "expand", "bits": 4, "model": {**model, "base": base, "bits": 4}}


#: run name -> TrainingConfig fields (beyond :data:`RECIPE`).
RUNS: dict[str, dict] = {
    "ih_unet": _ih(PAPER),
    "ex4_unet": _ex4(PAPER, "midbin"),
    "ih_resunet_S": _ih(_resunet("S")),
    "ex4_resunet_S": _ex4(_resunet("S"), "bin"),
    "ih_resunet_M": _ih(_resunet("M")),
    "ex4_resunet_M": _ex4(_resunet("M"), "bin"),
    "ih_resunet_L": _ih(_resunet("L")),
}

#: Shared by every run: pixel MSE only, 96² crops, batch 16, Adam 2e-4, grey crops.
RECIPE = {
    "perceptual_weight": 0.0,
    "pixel_weight": 1.0,
    "pixel_loss": "mse",
    "crop_size": 96,
    "batch_size": 16,
    "lr": 2e-4,
    "grey_fraction": 0.3,
    "iterations": 1_000_000,
    "validate_every": 0,
    "checkpoint_every": 0,
    "device": "cpu",
}


def run_one(name: str, args: argparse.Namespace) -> dict:
    """Train run ``name`` for ``args.seconds``, score it, return the record."""
    import numpy as np
    import torch
    from skimage.data import astronaut
    from skimage.transform import resize

    from napari_compand._io import collect_images, read_image, to_uint8_channels
    from napari_compand.evaluation import baseline, evaluate, model_restorer
    from napari_compand.inference import restore
    from napari_compand.training.config import TrainingConfig
    from napari_compand.training.data import TrainingImages
    from napari_compand.training.engine import Progress, Trainer

    torch.set_num_threads(args.threads)
    config = TrainingConfig.from_dict({**RECIPE, **RUNS[name], "seed": args.seed})
    data = TrainingImages.from_paths(args.train, config.degradations)
    out = Path(args.out)
    trainer = Trainer(config, data, out / f"{name}.safetensors")
    timer = threading.Timer(args.seconds, trainer.stop)
    curve, window, started = [], [], time.perf_counter()
    timer.start()
    try:
        for update in trainer.run():
            if isinstance(update, Progress):
                window.append(update.loss)
                if update.iteration % args.log_every == 0:
                    curve.append(
                        [
                            update.iteration,
                            round(time.perf_counter() - started, 1),
                            float(np.mean(window)),
                        ]
                    )
                    window = []
    finally:
        timer.cancel()
    trained_s = time.perf_counter() - started
    images = [to_uint8_channels(read_image(p), 3) for p in collect_images(args.eval)]
    restorer = model_restorer(trainer.model, device="cpu")
    scores = evaluate(images, config.degradation, restorer)
    base = "gaussian" if config.task.value == "inverse-halftone" else "midbin"
    reference = evaluate(images, config.degradation, baseline(base, config.degradation))
    photo = np.rint(resize(astronaut(), (512, 768), anti_aliasing=True) * 255).astype(np.uint8)
    degraded = config.degradation.apply(photo, rgb=True)
    restore(degraded, trainer.model, rgb=True, device="cpu")  # warm-up
    t0 = time.perf_counter()
    restore(degraded, trainer.model, rgb=True, device="cpu")
    seconds_per_image = time.perf_counter() - t0
    record = {
        "run": name,
        "recipe": config.to_dict(),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "threads": args.threads,
        "seconds": round(trained_s, 1),
        "iterations": trainer.iteration,
        "loss_curve": curve,
        "set5+set14": scores.as_dict(),
        base: reference.as_dict(),
        "seconds_per_768x512": round(seconds_per_image, 3),
        "inference_threads": torch.get_num_threads(),
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--eval", nargs="+", required=True, help="clean evaluation images")
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--lane", type=int, default=0)
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=660)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(args.runs):
        if index % args.lanes != args.lane or (Path(args.out) / f"{name}.json").exists():
            continue
        record = run_one(name, args)
        print(
            f"{name}: {record['iterations']} it in {record['seconds']} s, "
            f"Set5+Set14 {record['set5+set14']['psnr']:.2f} dB, "
            f"{record['seconds_per_768x512']} s / 768x512",
            flush=True,
        )


if __name__ == "__main__":
    main()
