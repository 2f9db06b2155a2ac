"""Train the model zoo: every job of :data:`JOBS` at once, one process each.

This is how the shipped checkpoints were made. All jobs run concurrently (one
process each, sharing one GPU, or the CPU), stop at ``--iterations`` or at the
wall-clock ``--time-limit``, whichever comes first, and write a full checkpoint
(weights + Adam state, resumable with ``napari-compand train --resume``) plus an
fp16 export of the weights (``kill`` or Ctrl+C ends every job the same way, sooner).
``--bundle`` packs the exports into tar files of at most ~15 MiB (for copying them off a
machine that returns few, small files).

Example (all jobs, 9 minutes)::

    python scripts/train_zoo.py --train ../shared/data/bsds/train ../shared/data/bsds/val \\
        --val ../shared/data/bsds/test --out runs/zoo --time-limit 540

On one GPU (how the stage of 2026-11-29 ran: seven jobs sharing an H200, each with a
cosine schedule fitted to the time it gets, the halftone mix degraded ahead in threads)::

    python scripts/train_zoo.py --jobs ex1_resunet ex2_resunet ex3_resunet ex4_resunet \\
        ex5_resunet ih_resunet_fs ih_resunet_mix --resunet-size M --init zoo \\
        --train data/train data/val --val data/test16 --out /tmp/run --device cuda \\
        --crop-size 128 --batch-size 64 --lr 2e-4 --lr-schedule cosine --grey-fraction 0.3 \\
        --threads 2 --iterations 1000000 --time-limit 380 --fit-after 40 --prepare 8 \\
        --cache-gb 24 --validate-every 1000000 --checkpoint-every 1000000 --val-images 16 \\
        --bundle $OUT

The stage of 2026-12-04 (``scripts/gpu_stage.sh``: five jobs, two of them noisy, three grown
with ``--blocks 1 2 4 10``) found the card waiting on the crops: 6 to 20 iterations/s per job,
slowest for noisy and Bayer crops, which were made on the CPU in each job's main thread
(2-3x faster since, without a thread pool per crop: benchmarks/bench_training.py).
``--workers N`` now makes each job's batches ahead in N processes (the same batches), and
every progress line says which share of the job's time went to waiting for them ("wait").

The CPU photo stages train on BSDS500 train, the first 80 val images and the photographs
of ``runs/wp40t`` (``scripts/training_photos.py`` makes those folders from Debian
packages and BSDS500 val), validating on the last 20 val images (``runs/held20``); on a
GPU copy those folders into the upload (wp40t is 34 MB of PNG).

Long stages on BSDS500's 300 training images can overfit (the 1-bit default's GPU
stage lost 0.50 dB on Set5 + Set14 while gaining 1.46 dB on its training images).
``--keep-best --validate-every 500`` exports the weights of the best validation instead
of the last; validate on images held out of ``--train`` (for example the last 20 of
BSDS500 val in their own folder), not on the test images the models are scored on.
``--validate-first`` scores the warm start too (iteration 0): a stage then exports a best
validation only if one beats where it started.
``--snapshot-every N`` keeps the weights every N iterations and exports their mean with the
last weights (``export/average/<job>.safetensors``, validated in the log): a stochastic
weight average. On the CPU stages measured so far it beat the last weights only where the
stage itself gained nothing (docs/results.md); the packaging's scores decide what ships.
``--late-best`` (with ``--snapshot-every``) exports by the rule the stages have followed since
2026-12-04: the weight average, unless the best validation of the schedule's second half read
higher (then those weights); a first-half best does not count.

One job in the foreground::

    python scripts/train_zoo.py --job ih_conv1_1 --train ... --val ... --out runs/zoo
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from napari_compand.degrade import HALFTONE_BLUR_SIGMA
from napari_compand.models import RESUNET_SIZES
from napari_compand.vocabulary import Task

if TYPE_CHECKING:
    from napari_compand.training.config import TrainingConfig

# the size every paper U-Net of the zoo shares: 1.58 M parameters, 3.0 MiB as fp16
ARCH = {"ngf": 32, "depth": 6, "max_channels": 96}
GAUSS = {**ARCH, "base": "gaussian", "sigma": HALFTONE_BLUR_SIGMA}

#: The ResUNet size of the expansion defaults and their grey partners, chosen by the CPU
#: ablation (scripts/ablation.py, docs/results.md); the inverse-halftoning ones and the
#: depths in :data:`GROWN_EXPANSION_BITS` were grown to M (models.deeper_version).
RESUNET_SIZE = "S"
GROWN_EXPANSION_BITS = (2, 3, 4, 5)


def _resunet(size: str) -> dict:
    """The model settings of ResUNet size ``size`` (:data:`RESUNET_SIZES`)."""
    widths, blocks = RESUNET_SIZES[size]
    return {"arch": "resunet", "widths": widths, "blocks": blocks}


def _expand_resunet(bits: int, channels: int = 3) -> dict:
    """The expansion ResUNet from ``bits`` bits (a grey partner: ``channels=1``, same size)."""
    size = "M" if bits in GROWN_EXPANSION_BITS else RESUNET_SIZE
    extra = {"channels": 1} if channels == 1 else {}
    return {**_resunet(size), **extra, "base": "bin", "bits": bits}


#: The inverse-halftoning ResUNets: size M (grown from S, models.deeper_version) on a Gaussian
#: base. Ten halftones share the mix's capacity; the Floyd–Steinberg one is the same network
#: on one halftone (issue 11's comparison).
IH_RESUNET = {**_resunet("M"), "base": "gaussian", "sigma": HALFTONE_BLUR_SIGMA}
#: The default models' PSNR-oriented loss: pixel MSE only (no VGG19), grey crops.
PSNR_LOSS = {"perceptual_weight": 0.0, "pixel_weight": 1.0, "pixel_loss": "mse"}


def _expand(bits: int, layer: str) -> dict:
    return {
        "task": "expand",
        "bits": bits,
        "loss_layer": layer,
        "model": {**ARCH, "base": "midbin", "bits": bits},
    }


def _halftone(layer: str, **extra) -> dict:
    return {"task": "inverse-halftone", "loss_layer": layer, "model": GAUSS, **extra}


#: name -> TrainingConfig fields (the paper's recipe: 256² crops, batch 16, Adam 2e-4).
JOBS: dict[str, dict] = {
    **{f"ih_{layer}": _halftone(layer) for layer in ("conv1_1", "conv2_1", "conv3_1", "conv4_1")},
    "ih_conv5_1": _halftone("conv5_1"),
    "ih_conv1_1_pixel": _halftone("conv1_1", pixel_weight=1e5),
    "ih_conv1_1_plain": _halftone("conv1_1", model={**ARCH, "base": "none"}),
    # ResUNet, pixel loss: the expansion defaults, inverse halftoning on ten halftones / FS
    "ih_resunet_mix": {
        "task": "inverse-halftone",
        "halftone_method": "mixed",
        "model": IH_RESUNET,
        **PSNR_LOSS,
    },
    "ih_resunet_fs": {
        "task": "inverse-halftone",
        "model": IH_RESUNET,
        **PSNR_LOSS,
    },
    # specialists for halftones the two above restore least well (routed by layer metadata);
    # the ordered one also reads its dither's threshold map (models.with_threshold_map)
    "ih_resunet_ordered": {
        "task": "inverse-halftone",
        "halftone_method": "ordered",
        "model": {**IH_RESUNET, "threshold_map": True},
        **PSNR_LOSS,
    },
    "ih_resunet_fs_scans": {
        "task": "inverse-halftone",
        "halftone_method": "floyd-steinberg-scans",
        "model": IH_RESUNET,
        **PSNR_LOSS,
    },
    "ih_resunet_riemersma": {
        "task": "inverse-halftone",
        "halftone_method": "riemersma",
        "model": IH_RESUNET,
        **PSNR_LOSS,
    },
    **{
        f"ex{bits}_resunet": {
            "task": "expand",
            "bits": bits,
            "model": _expand_resunet(bits),
            **PSNR_LOSS,
        }
        for bits in range(1, 8)
    },
    # grey-only ResUNets (one input channel), warm-started from the colour ones
    **{
        f"ex{bits}_resunet_grey": {
            "task": "expand",
            "bits": bits,
            "model": _expand_resunet(bits, channels=1),
            **PSNR_LOSS,
        }
        for bits in range(1, 8)
    },
    **{f"ex3_{layer}": _expand(3, layer) for layer in ("conv1_1", "conv2_1", "conv3_1")},
    "ex3_conv4_1": _expand(3, "conv4_1"),
    "ex3_conv5_1": _expand(3, "conv5_1"),
    **{f"ex{bits}_conv1_1": _expand(bits, "conv1_1") for bits in (1, 2, 4, 5)},
    **{
        f"ex{bits}_conv1_1_pixel": {**_expand(bits, "conv1_1"), "pixel_weight": 1e5}
        for bits in (1, 2, 3)
    },
}


def zoo_name(job: str) -> str:
    """``ih_conv1_1_pixel`` -> ``inverse-halftone/conv1_1-pixel``, ``ex3_conv2_1`` ->
    ``expand-3bit/conv2_1``, ``ih_resunet_mix`` -> ``inverse-halftone/resunet-mix``,
    ``ih_resunet_fs`` -> ``inverse-halftone/resunet``."""
    task, rest = job.split("_", 1)
    # ih_resunet_fs trains on Floyd–Steinberg, the task's standard halftone (as every other
    # inverse-halftoning model of the zoo): it is inverse-halftone/resunet
    variant = rest.replace("_fs_scans", "-fs-scans").replace("_fs", "")
    for suffix in ("pixel", "mix", "grey", "ordered", "riemersma"):
        variant = variant.replace(f"_{suffix}", f"-{suffix}")
    if task == "ih":
        return Task.INVERSE_HALFTONE.model_name(variant)
    return Task.EXPAND.model_name(variant, bits=int(task[2:]))


#: Where a new specialist warm-starts with ``--init zoo`` before it ships: the ordered
#: dithers and Riemersma halftones from the ten-halftone model, both Floyd–Steinberg scans
#: from the raster one.
WARM_STARTS = {
    "inverse-halftone/resunet-ordered": "inverse-halftone/resunet-mix",
    "inverse-halftone/resunet-fs-scans": "inverse-halftone/resunet",
    "inverse-halftone/resunet-riemersma": "inverse-halftone/resunet-mix",
}


def zoo_init(job: str) -> Path | None:
    """``--init zoo``: the shipped model of the job's name, else of its plain variant
    (a new ``_pixel`` job starts from the plain model, a new ``_grey`` one from the
    colour model, a specialist from :data:`WARM_STARTS`), else ``None`` (fresh start)."""
    from napari_compand import zoo

    name = zoo_name(job)
    plain = (name.removesuffix("-pixel"), name.removesuffix("-grey"), WARM_STARTS.get(name, name))
    for candidate in (name, *plain):
        if zoo.path_of(candidate) is not None:
            return zoo.path_of(candidate)
    return None


RECIPE = {"crop_size": 256, "batch_size": 16, "lr": 2e-4, "iterations": 30_000}


def job_config(name: str, args: argparse.Namespace) -> TrainingConfig:
    """The training settings of job ``name``: :data:`RECIPE`, then :data:`JOBS`, then the
    command line's overrides (sizes, blocks, learning rate, crop mix)."""
    from napari_compand.training.config import TrainingConfig

    settings = {**RECIPE, **JOBS[name], "device": args.device, "seed": args.seed, "amp": args.amp}
    settings.update(
        iterations=args.iterations or settings["iterations"],
        validate_every=args.validate_every,
        checkpoint_every=args.checkpoint_every,
    )
    if args.crop_size:
        settings["crop_size"] = args.crop_size
    if args.batch_size:
        settings["batch_size"] = args.batch_size
    if args.resunet_size and settings["model"].get("arch") == "resunet":
        # a larger size warm-starts from a smaller shipped model (models.deeper_version)
        settings["model"] = {**settings["model"], **_resunet(args.resunet_size)}
    if args.blocks and settings["model"].get("arch") == "resunet":
        settings["model"] = {**settings["model"], "blocks": list(args.blocks)}
    for key in (
        "lr",
        "lr_schedule",
        "grey_fraction",
        "noise_fraction",
        "noise_sigma",
        "noise_shared",
    ):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return TrainingConfig.from_dict(settings)


def train_one(name: str, args: argparse.Namespace) -> None:
    """Train job ``name`` in this process, logging to ``<out>/<name>.log``."""
    import torch

    from napari_compand import checkpoints
    from napari_compand.training import engine
    from napari_compand.training.data import TrainingImages
    from napari_compand.training.engine import Progress, StateChange, Trainer, Validation

    torch.set_num_threads(args.threads)
    if engine.__version__ == "0+unknown":  # running from a source tree that is not installed
        engine.__version__ = _source_version()
    config = job_config(name, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / f"{name}.safetensors"
    log = open(out / f"{name}.log", "a", buffering=1)  # noqa: SIM115 - open for the whole run
    channels = config.model.channels
    train = TrainingImages.from_paths(args.train, config.degradations, channels, args.scales)
    train.cache_bytes = int(args.cache_gb * 2**30)
    if args.prepare:
        prepared = time.monotonic()
        count = train.prepare(args.prepare)
        print(f"{name}: {count} degraded versions in {time.monotonic() - prepared:.0f} s", file=log)
    val = TrainingImages.from_paths(args.val, config.degradations, channels)
    resume = ckpt if ckpt.exists() and args.resume else None
    if args.init == "zoo":
        init = zoo_init(name)
    else:
        init = Path(args.init) / f"{name}.safetensors" if args.init else None
    trainer = Trainer(
        config,
        train,
        ckpt,
        val_data=val,
        resume=resume,
        init=init if init is not None and init.exists() and resume is None else None,
        validation_images=args.val_images,
        workers=args.workers,
    )
    trainer.stop_on_signals()  # kill / Ctrl-C: the stage ends as at its time limit, exported
    snapshots = out / "snapshots"
    deadline = time.monotonic() + args.time_limit
    started = time.monotonic()
    probe: tuple[int, float] | None = None  # (iteration, time) where a throughput window began
    print(f"{name}: {config.to_dict()}", file=log)
    if args.validate_first and trainer.val_data is not None and resume is None:
        v = trainer.validate()
        print(_validation_line(name, v) + " (start)", file=log)
    for update in trainer.run():
        if isinstance(update, Progress):
            now = time.monotonic()
            if update.iteration % 100 == 0:
                rate = update.iteration / (now - started)
                wait = trainer.data_seconds / (now - started)
                print(
                    f"{name} it {update.iteration} loss {update.loss:.4g} {rate:.2f} it/s "
                    f"wait {wait:.0%}",
                    file=log,
                )
            if args.fit_after and probe is None and update.iteration >= 20:
                probe = (update.iteration, now)  # after warm-up (cuDNN's choices, caches)
            elif (
                probe is not None
                and now - probe[1] >= args.fit_after
                and deadline - now > args.fit_after
            ):
                # fitted again after every window: jobs beside this one start and end
                trainer.config = _fitted(trainer.config, update.iteration, probe, now, deadline)
                probe = (update.iteration, now)
                print(f"{name}: schedule fitted to {trainer.config.iterations} its", file=log)
            if args.snapshot_every and update.iteration % args.snapshot_every == 0:
                snapshots.mkdir(exist_ok=True)
                checkpoints.save_checkpoint(
                    _snapshot(snapshots, name, update.iteration),
                    trainer.model,
                    trainer.metadata(),
                )
            if now > deadline or update.iteration >= trainer.config.iterations:
                trainer.stop()
        elif isinstance(update, Validation):
            print(_validation_line(name, update), file=log)
        elif isinstance(update, StateChange) and update.state in ("stopped", "finished"):
            print(f"{name} {update.state} at {update.iteration}", file=log)
    if trainer.val_data is not None and (
        not trainer.history or trainer.history[-1]["iteration"] != trainer.iteration
    ):
        v = trainer.validate()
        print(_validation_line(name, v), file=log)
        trainer._save()
        trainer._save_if_best(v)
    if args.late_best:
        _export_by_rule(trainer, name, ckpt, snapshots, log)
        return
    best = engine.best_path(ckpt)
    chosen = best if args.keep_best and best.exists() else ckpt
    checkpoints.export_weights(chosen, out / "export" / f"{name}.safetensors", half=True)
    if chosen == best:
        kept = checkpoints.read_metadata(best)["best"]
        print(f"{name} exported the best validation (iteration {kept['iteration']})", file=log)
    elif args.keep_best and trainer.history:
        start = trainer.history[0]
        print(
            f"{name} exported the last weights: no validation beat iteration "
            f"{start['iteration']} ({start['psnr']:.3f} dB)",
            file=log,
        )
    else:
        print(f"{name} exported", file=log)
    if args.snapshot_every:
        _export_average(trainer, name, ckpt, snapshots, log)


def late_best(history: list[dict], iterations: int) -> dict | None:
    """The best validation (highest PSNR) of the schedule's second half: iteration
    ``>= iterations / 2`` of ``iterations`` scheduled; ``None`` if none was made there."""
    late = [v for v in history if v["iteration"] > 0 and v["iteration"] >= iterations / 2]
    return max(late, key=lambda v: v["psnr"], default=None)


def _export_by_rule(trainer, name: str, last: Path, snapshots: Path, log) -> None:
    """Export ``<out>/export/<name>.safetensors`` by the stages' rule: the weight average,
    unless the best validation of the schedule's second half read higher (then those
    weights: a snapshot, or the last weights). A best validation in the first half does
    not count: the held-out crops separate weights only to a few hundredths of a dB, and
    an early peak is more often their noise than a better model (docs/results.md)."""
    from napari_compand import checkpoints

    pick = late_best(trainer.history, trainer.config.iterations)
    average = _export_average(trainer, name, last, snapshots, log)
    target = last.parent / "export" / f"{name}.safetensors"
    source = None
    if pick is not None and (average is None or pick["psnr"] > average.psnr):
        iteration = int(pick["iteration"])
        source = last if iteration == trainer.iteration else _snapshot(snapshots, name, iteration)
        if not source.exists():  # no snapshot there: the run's best file, if it is that one
            source = _best_file_of(last, iteration)
        if source is None:
            print(f"{name}: no weights kept for iteration {iteration}", file=log)
    if source is not None:  # recorded as "best", so the model card says how it was chosen
        checkpoints.export_weights(source, target, half=True, metadata={"best": dict(pick)})
        print(
            f"{name} exported the second half's best validation (iteration {iteration}, "
            f"{pick['psnr']:.3f} dB" + (f" > average {average.psnr:.3f})" if average else ")"),
            file=log,
        )
    elif average is not None:
        shutil.copyfile(last.parent / "export" / "average" / f"{name}.safetensors", target)
        print(f"{name} exported the weight average ({average.psnr:.3f} dB)", file=log)
    else:
        checkpoints.export_weights(last, target, half=True)
        print(f"{name} exported the last weights (no average, no late validation)", file=log)


def _best_file_of(last: Path, iteration: int) -> Path | None:
    """The run's best-validation file (``engine.best_path``) if it holds ``iteration``."""
    from napari_compand import checkpoints
    from napari_compand.training import engine

    best = engine.best_path(last)
    if best.exists() and checkpoints.read_metadata(best)["best"]["iteration"] == iteration:
        return best
    return None


def _snapshot(snapshots: Path, name: str, iteration: int) -> Path:
    """The weights ``--snapshot-every`` kept of job ``name`` at ``iteration``."""
    return snapshots / f"{name}-{iteration:07d}.safetensors"


def _export_average(trainer, name: str, last: Path, snapshots: Path, log):
    """Export the mean of a run's snapshots (in folder ``snapshots``) and its last weights
    (a stochastic weight average), validated like the run; returns that validation
    (``None``: not validated or nothing to average)."""
    from napari_compand import checkpoints

    kept = sorted(snapshots.glob(f"{name}-*.safetensors"))
    final = _snapshot(snapshots, name, trainer.iteration)
    sources = [s for s in kept if s != final] + [last]
    if len(sources) < 2:
        print(f"{name}: no snapshots to average", file=log)
        return None
    target = last.parent / "export" / "average" / f"{name}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    checkpoints.average_weights(sources, target, half=True)
    if trainer.val_data is not None:
        mean = checkpoints.load_checkpoint(target).build_model().float()
        trainer.model.load_state_dict(mean.state_dict())
        v = trainer.validate()
        print(_validation_line(name, v) + f" (mean of {len(sources)} weights)", file=log)
    else:
        v = None
    print(f"{name} exported the mean of {len(sources)} weights to {target}", file=log)
    return v


def _validation_line(name: str, v) -> str:
    """The log line of one :class:`~napari_compand.training.engine.Validation`."""
    return f"{name} val it {v.iteration} psnr {v.psnr:.3f} ssim {v.ssim:.4f}"


def _fitted(
    config: TrainingConfig, iteration: int, probe: tuple[int, float], now: float, deadline: float
) -> TrainingConfig:
    """``config`` with the iterations that the throughput since ``probe`` fits before
    ``deadline`` (less 3 %), so that a cosine schedule ends on time."""
    rate = (iteration - probe[0]) / (now - probe[1])
    left = max(deadline - now, 0.0) * 0.97
    return config.replace(iterations=max(iteration + 1, iteration + int(rate * left)))


def _source_version() -> str:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    for line in text.splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    return "0+unknown"


def bundle(out: Path, target: Path, limit: int = 15 * 2**20) -> None:
    """Pack ``out/export/*.safetensors`` and the logs into tars of at most ``limit`` bytes."""
    target.mkdir(parents=True, exist_ok=True)
    files = sorted((out / "export").glob("*.safetensors"))
    groups: list[list[Path]] = [[]]
    for file in files:
        if groups[-1] and sum(f.stat().st_size for f in groups[-1]) + file.stat().st_size > limit:
            groups.append([])
        groups[-1].append(file)
    for index, group in enumerate(g for g in groups if g):
        with tarfile.open(target / f"zoo{index}.tar", "w") as tar:
            for file in group:
                tar.add(file, arcname=file.name)
    with open(target / "logs.txt", "w") as combined:
        for log in sorted(out.glob("*.log")):
            combined.write(log.read_text())


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--val", nargs="+", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--job", choices=list(JOBS), help="train this one job in this process")
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds per job")
    parser.add_argument("--iterations", type=int, default=0, help="0: the recipe's 30,000")
    parser.add_argument("--crop-size", type=int, default=0, help="0: the recipe's 256")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the recipe's 16")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="use every training image at each of these sizes (e.g. 1 0.7 0.5: also "
        "Lanczos-downscaled, cleaner copies); default 1",
    )
    parser.add_argument(
        "--fit-after",
        type=float,
        default=0.0,
        help="seconds of throughput to measure, after which --iterations is cut to what fits "
        "in --time-limit (a cosine schedule then ends on time); 0: off",
    )
    parser.add_argument(
        "--prepare",
        type=int,
        default=0,
        help="degrade every training image version ahead in this many threads (0: on demand)",
    )
    parser.add_argument("--cache-gb", type=float, default=4.0, help="degraded-image cache")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes per job that make its batches ahead (0: in the training loop)",
    )
    parser.add_argument("--lr", type=float, help="default: the recipe's 2e-4")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"))
    parser.add_argument("--grey-fraction", type=float, help="share of grey crops")
    parser.add_argument("--noise-fraction", type=float, help="share of noisy crops")
    parser.add_argument("--noise-sigma", type=float, help="largest noise sigma (8-bit levels)")
    parser.add_argument(
        "--noise-shared", type=float, help="share of noisy colour crops with one noise field"
    )
    parser.add_argument(
        "--resunet-size",
        choices=list(RESUNET_SIZES),
        help=f"ResUNet size of the resunet jobs (default: the job's own, M for inverse "
        f"halftoning and for expansion to {'/'.join(map(str, GROWN_EXPANSION_BITS))} bits, "
        f"else {RESUNET_SIZE}); "
        "a larger size may warm-start from a smaller model",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        nargs="+",
        help="residual blocks per level of the resunet jobs, e.g. 1 2 4 10 (at least the "
        "warm start's: the added blocks start as the identity, models.deeper_version)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--no-amp",
        dest="amp",
        action="store_false",
        help="float32 throughout (default: bf16 autocast on CUDA and on CPUs with native bf16)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--val-images", type=int, default=50)
    parser.add_argument("--validate-every", type=int, default=1000)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--resume", action="store_true", help="continue existing checkpoints")
    parser.add_argument(
        "--init",
        help="folder of checkpoints named <job>.safetensors to warm start from, "
        "or 'zoo' for the shipped models (zoo_init)",
    )
    parser.add_argument(
        "--keep-best",
        action="store_true",
        help="export the weights of the best validation (every --validate-every iterations "
        "and at the end) instead of the last; give --val images held out of --train",
    )
    parser.add_argument(
        "--validate-first",
        action="store_true",
        help="validate the warm start before training (iteration 0 of the log and of the "
        "validation history): what a stage has to beat",
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        metavar="N",
        help="also keep the weights every N iterations (OUT/snapshots) and export their mean "
        "with the last weights, validated, as OUT/export/average/<job>.safetensors",
    )
    parser.add_argument(
        "--late-best",
        action="store_true",
        help="export (OUT/export/<job>.safetensors) the weight average of --snapshot-every, "
        "unless the best validation of the schedule's second half read higher: then those "
        "weights (make --validate-every a multiple of --snapshot-every); the rule the stages "
        "have followed since 2026-12-04",
    )
    parser.add_argument("--bundle", help="pack exports and logs into tars in this folder")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.late_best and not args.snapshot_every:
        parser.error("--late-best chooses between snapshots: give --snapshot-every too")
    if args.late_best and args.validate_every % args.snapshot_every:
        parser.error(
            "--late-best needs the weights of every validation: make --validate-every a "
            "multiple of --snapshot-every"
        )
    if args.job:
        train_one(args.job, args)
        return
    forwarded = list(sys.argv[1:])
    if "--jobs" in forwarded:  # drop the job list; each child gets --job
        i = forwarded.index("--jobs")
        j = i + 1
        while j < len(forwarded) and not forwarded[j].startswith("--"):
            j += 1
        del forwarded[i:j]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    children = {}
    for name in args.jobs:
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        children[name] = subprocess.Popen(
            [sys.executable, "-u", __file__, *forwarded, "--job", name],
            env=env,
            stdout=open(out / f"{name}.stdout", "w"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )

    def forward(signum: int, _frame) -> None:  # each job ends with its export
        for child in children.values():
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    start = last_report = time.monotonic()
    while any(c.poll() is None for c in children.values()):
        time.sleep(1)
        if time.monotonic() - last_report < 30:
            continue
        last_report = time.monotonic()
        lines = []
        for name in children:
            log = out / f"{name}.log"
            last = (
                log.read_text().strip().splitlines()[-1]
                if log.exists() and log.stat().st_size
                else "-"
            )
            lines.append(f"  {last}")
        print(f"[{time.monotonic() - start:.0f} s]\n" + "\n".join(lines), flush=True)
    for name, child in children.items():
        if child.returncode:
            print(f"{name} failed (exit {child.returncode}):", flush=True)
            print((out / f"{name}.stdout").read_text()[-3000:], flush=True)
    if args.bundle:
        bundle(Path(args.out), Path(args.bundle))


if __name__ == "__main__":
    main()
