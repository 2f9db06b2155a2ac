"""The ``napari-compand train`` command (argument parsing, progress bar, torchrun).

Building the parser needs only :mod:`napari_compand.vocabulary`; torch and the
training engine are imported when a run starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..vocabulary import (
    BIT_BASES,
    HALFTONE_BLUR_SIGMA,
    HALFTONE_METHODS,
    HALFTONE_SET_NAMES,
    HALFTONE_SETS_IN_WORDS,
    LIMITS,
    Arch,
    Base,
    Device,
    LossLayer,
    LrSchedule,
    PixelLoss,
    Task,
)

if TYPE_CHECKING:
    from .config import TrainingConfig

__all__ = ["add_train_command", "config_from_args"]

# Settings that may change when a run is resumed (everything else comes from the file).
_RESUMABLE_OVERRIDES = ("iterations", "device", "amp", "validate_every", "checkpoint_every")


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """Register ``train`` on the main parser's subcommands."""
    train = commands.add_parser(
        "train",
        help="train a restoration network",
        description="Train a U-Net with the VGG19 perceptual loss on clean images, degraded "
        "on the fly. Under torchrun every process trains on its own batches (DDP).",
    )
    train.add_argument(
        "--data", nargs="+", type=Path, required=True, help="training image files/folders"
    )
    train.add_argument("--val-data", nargs="+", type=Path, help="validation image files/folders")
    train.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=[1.0],
        metavar="S",
        help="use each training image at each of these sizes, 0 < S <= 1 (e.g. 1 0.7 0.5 adds "
        "Lanczos-downscaled copies: more variety, cleaner JPEG targets); default 1",
    )
    train.add_argument(
        "--out", type=Path, required=True, help="checkpoint file to write (.safetensors)"
    )
    train.add_argument("--resume", type=Path, help="continue this checkpoint (same recipe)")
    train.add_argument(
        "--init",
        type=Path,
        help="warm start from this checkpoint's weights (a colour model for a grey one, "
        "a ResUNet with fewer --blocks for a deeper one)",
    )
    train.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="make the training batches ahead in N processes (the same batches; they pay "
        "where a GPU waits for the crops); default 0: in the training loop",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file (not needed to continue --resume X --out X)",
    )
    recipe = train.add_argument_group("recipe (defaults: TrainingConfig)")
    recipe.add_argument("--task", choices=[t.value for t in Task])
    recipe.add_argument(
        "--bits", type=int, help=f"input bit depth for --task expand, {_span('bits')}"
    )
    recipe.add_argument(
        "--halftone-method",
        choices=(*HALFTONE_METHODS, *HALFTONE_SET_NAMES),
        metavar="METHOD",
        help=f"one of {', '.join(HALFTONE_METHODS)}, or a set drawn from per crop: "
        + ", ".join(f"{name} ({words})" for name, words in HALFTONE_SETS_IN_WORDS.items()),
    )
    recipe.add_argument("--loss-layer", choices=[m.value for m in LossLayer])
    recipe.add_argument(
        "--loss-before-relu",
        dest="loss_after_relu",
        action="store_false",
        default=None,
        help="compare VGG19 conv outputs, not ReLU activations",
    )
    recipe.add_argument(
        "--perceptual-weight", type=float, help="weight of the VGG19 term (0: pixel loss only)"
    )
    recipe.add_argument("--pixel-weight", type=float, help="weight of an added pixel term")
    recipe.add_argument("--pixel-loss", choices=[p.value for p in PixelLoss])
    recipe.add_argument(
        "--grey-fraction", type=float, help="share of grey crops (colour models restore grey)"
    )
    recipe.add_argument(
        "--noise-fraction",
        type=float,
        help="share of crops made noisy before degrading (for noisy images such as micrographs)",
    )
    recipe.add_argument(
        "--noise-sigma",
        type=float,
        help="largest noise standard deviation in 8-bit levels (default 8; drawn per crop)",
    )
    recipe.add_argument(
        "--noise-shared",
        type=float,
        help="share of noisy colour crops with one noise for all channels (default 0)",
    )
    recipe.add_argument("--vgg-weights", help="embedded (default), imagenet or a file")
    recipe.add_argument("--iterations", type=int, help=_span("iterations"))
    recipe.add_argument("--batch-size", type=int, help=_span("batch_size"))
    recipe.add_argument("--crop-size", type=int, help=_span("crop_size"))
    recipe.add_argument("--lr", type=float)
    recipe.add_argument(
        "--lr-schedule", choices=[s.value for s in LrSchedule], help="constant (paper) or cosine"
    )
    recipe.add_argument("--seed", type=int)
    recipe.add_argument("--device", choices=[d.value for d in Device])
    recipe.add_argument(
        "--no-amp",
        dest="amp",
        action="store_false",
        default=None,
        help="no mixed precision (default: bf16 on CUDA and on CPUs with native bf16)",
    )
    recipe.add_argument("--validate-every", type=int)
    recipe.add_argument("--checkpoint-every", type=int)
    model = train.add_argument_group("model (defaults: ModelConfig)")
    model.add_argument("--channels", type=int, choices=(1, 3))
    model.add_argument(
        "--arch",
        choices=[a.value for a in Arch],
        help="unet (the paper's) or resunet (full-resolution residual U-Net)",
    )
    model.add_argument(
        "--widths", type=_int_list, help="resunet channels per level, e.g. 16,32,64,128"
    )
    model.add_argument(
        "--blocks", type=_int_list, help="resunet residual blocks per level, e.g. 1,1,2,4"
    )
    model.add_argument("--ngf", type=int, help=_span("ngf"))
    model.add_argument("--depth", type=int, help=_span("depth"))
    model.add_argument("--max-channels", type=int, help=_span("max_channels"))
    model.add_argument("--base", choices=[b.value for b in Base])
    model.add_argument(
        "--sigma", type=float, help=f"Gaussian base sigma in pixels (default {HALFTONE_BLUR_SIGMA})"
    )
    train.set_defaults(func=run_train)


def _span(name: str) -> str:
    """``"1-4096"``: the bounds of a setting (vocabulary.LIMITS), for the help text."""
    low, high = LIMITS[name]
    return f"{low:g}-{high:g}"


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The run's config: defaults, or the resumed file's recipe, updated by the given flags.

    With ``--resume``, flags that would change the recipe are refused by name (only
    ``--iterations``, ``--device``, ``--no-amp``, ``--validate-every`` and
    ``--checkpoint-every`` may change).
    """
    from ..models import ModelConfig
    from .config import TrainingConfig

    if args.resume is not None:
        from ..checkpoints import load_checkpoint
        from .engine import recipe_of

        base = recipe_of(load_checkpoint(args.resume))
        _refuse_conflicts(args, base)
        return base.replace(**_given(args, _RESUMABLE_OVERRIDES))
    values = _given(args, [f.name for f in fields(TrainingConfig) if f.name != "model"])
    model = _given(args, [f.name for f in fields(ModelConfig) if f.name != "bits"])
    if model.get("base") in {b.value for b in BIT_BASES}:
        model["bits"] = values.get("bits", TrainingConfig.bits)
    return TrainingConfig(**values, model=ModelConfig(**model))


def _refuse_conflicts(args: argparse.Namespace, base: TrainingConfig) -> None:
    """Refuse recipe flags given with ``--resume`` that differ from the checkpoint's."""
    from ..models import ModelConfig
    from .config import TrainingConfig

    conflicts = []
    recipe_names = [f.name for f in fields(TrainingConfig) if f.name != "model"]
    model_names = [f.name for f in fields(ModelConfig) if f.name != "bits"]
    for name, value in _given(args, recipe_names).items():
        if name not in _RESUMABLE_OVERRIDES and value != _plain(getattr(base, name)):
            conflicts.append((name, getattr(base, name), value))
    for name, value in _given(args, model_names).items():
        if value != _plain(getattr(base.model, name)):
            conflicts.append((name, getattr(base.model, name), value))
    if conflicts:
        listed = "; ".join(
            f"--{name.replace('_', '-')} {_plain(given)} (checkpoint: {_plain(recorded)})"
            for name, recorded, given in conflicts
        )
        raise ValueError(
            f"--resume continues {args.resume} with its own recipe, but these flags differ: "
            f"{listed}. Drop them, or start a new run with --init {args.resume}"
        )


def _plain(value):
    """Enum -> its value, for comparing with command-line values."""
    return getattr(value, "value", value)


def _int_list(text: str) -> tuple[int, ...]:
    """``"16,32,64"`` -> ``(16, 32, 64)``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _given(args: argparse.Namespace, names) -> dict:
    """The flags among ``names`` that were given on the command line (not None)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def run_train(args: argparse.Namespace) -> int:
    """Run ``train``; under torchrun set up the process group first.

    A torchrun rank that finished (its files written and closed) leaves with
    ``os._exit``: at interpreter exit torch's gloo backend can abort in its C++
    teardown (``terminate called without an active exception``, seen in CI on
    rank 1 after a complete run), which would turn a good run into a failed one.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _train(args, distributed=False)
    code = _train(args, distributed=True)  # an exception takes the normal way out
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _train(args: argparse.Namespace, distributed: bool) -> int:
    from tqdm import tqdm

    from .data import TrainingImages
    from .engine import Progress, StateChange, Trainer, Validation

    config = config_from_args(args)
    _check_out(args)
    if distributed:
        _init_distributed(config)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    try:
        data = TrainingImages.from_paths(
            args.data, config.degradations, config.model.channels, args.scales
        )
        val = None
        if args.val_data:
            val = TrainingImages.from_paths(
                args.val_data, config.degradations, config.model.channels
            )
        trainer = Trainer(
            config,
            data,
            args.out,
            val_data=val,
            resume=args.resume,
            init=args.init,
            workers=args.workers,
        )
        bar = tqdm(
            total=config.iterations,
            initial=trainer.iteration,
            unit="it",
            disable=rank != 0,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        started, last_loss, last_val, best = time.perf_counter(), float("nan"), None, None
        trainer.stop_on_signals()
        try:
            for update in trainer.run():
                if isinstance(update, Progress):
                    last_loss = update.loss
                    bar.update(1)
                    bar.set_postfix(loss=f"{update.loss:.4g}", img_s=f"{update.images_per_s:.1f}")
                elif isinstance(update, Validation):
                    last_val = update
                    if rank == 0:
                        bar.write(
                            f"iteration {update.iteration}: validation PSNR "
                            f"{update.psnr:.2f} dB, SSIM {update.ssim:.4f}"
                        )
                elif isinstance(update, StateChange) and update.state == "started":
                    if rank == 0:
                        bar.write(update.message)
                elif isinstance(update, StateChange) and update.state == "best":
                    best = update
                elif isinstance(update, StateChange) and update.state == "checkpoint":
                    bar.write(f"checkpoint: {update.path} (iteration {update.iteration})")
                elif isinstance(update, StateChange) and update.state == "stopped":
                    bar.write(f"stopped: checkpoint of iteration {update.iteration} in {args.out}")
                    return 130
        except KeyboardInterrupt:
            trainer.stop()
            for _ in trainer.run():  # saves the last finished iteration and returns
                pass
            bar.write(f"interrupted: checkpoint of iteration {trainer.iteration} in {args.out}")
            return 130
        finally:
            bar.close()
        if rank == 0:
            minutes = (time.perf_counter() - started) / 60
            summary = (
                f"trained {config.task.value} ({config.degradation_label}) with "
                f"{config.loss_name} loss: {trainer.iteration} iterations in "
                f"{minutes:.1f} min on {trainer.device} x{trainer.world_size}, "
                f"last loss {last_loss:.4g}"
            )
            if last_val is not None:
                summary += f", validation PSNR {last_val.psnr:.2f} dB / SSIM {last_val.ssim:.4f}"
            print(f"{summary}\ncheckpoint: {args.out}")
            if best is not None:
                print(f"best validation: {best.path} (iteration {best.iteration}, {best.message})")
        if dist.is_initialized():
            # every rank reaches the end before any tears the group down: a rank that leaves
            # while rank 0 still saves and validates can make gloo abort the other
            dist.barrier()
        return 0
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _check_out(args: argparse.Namespace) -> None:
    """Before any training: ``--out`` is a new ``.safetensors`` file (or ``--overwrite``,
    or the ``--resume`` file itself) in a writable folder, and not one of the inputs; with
    ``--val-data`` the same holds for its best-validation file (``<out>-best``)."""
    from .._io import check_output, collect_images
    from .engine import best_path

    out = args.out
    if out.suffix.lower() != ".safetensors":
        raise ValueError(f"--out must name a .safetensors checkpoint file, got {out}")
    inputs = collect_images(args.data) + (collect_images(args.val_data) if args.val_data else [])
    if args.init is not None:
        inputs.append(args.init)
    in_place = args.resume is not None and out.exists() and out.resolve() == args.resume.resolve()
    check_output(out, inputs, overwrite=args.overwrite or in_place, what="--out")
    if args.val_data:  # a resumed run keeps improving on its own best file
        check_output(
            best_path(out),
            inputs,
            overwrite=args.overwrite or in_place,
            what="the best-validation checkpoint next to --out",
        )


def _init_distributed(config: TrainingConfig) -> None:
    import torch
    import torch.distributed as dist

    from .._device import resolve_device

    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
