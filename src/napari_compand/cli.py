"""Command line interface: ``napari-compand <command>`` (also ``python -m napari_compand``).

Commands
--------
degrade
    Quantize (Eq. 2) or halftone image files and write the results.
metrics
    PSNR and SSIM of test images against a reference image.
train
    Train a restoration network (also under ``torchrun`` for several processes).
restore
    Restore image files with a zoo model or a checkpoint (bit-depth expansion or
    inverse halftoning).
models
    List the model zoo.
eval
    The paper's Tables I-III on a folder of clean images: models vs baselines vs paper.

Examples
--------
``napari-compand degrade photos/ --bits 3 --out low/``
``napari-compand degrade cat.png --halftone floyd-steinberg --out ht/``
``napari-compand metrics cat.png ht/cat_halftone-floyd-steinberg.png``
``napari-compand train --task inverse-halftone --data photos/ --out m.safetensors``
``torchrun --nproc_per_node=2 -m napari_compand train ...``
``napari-compand restore ht/ --model inverse-halftone/conv1_1 --out restored/``
``napari-compand models``
``napari-compand eval --data Set5/ Set14/ --task expand --bits 1 3 --csv table.csv``
``napari-compand eval --data mine/ --task expand --bits 4 --per-image scores.csv``
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .vocabulary import HALFTONE_METHODS, VIEW_COUNTS, Task

if TYPE_CHECKING:
    from .degrade import Degradation

# Commands import what they use when they run: building the parser (``--help``)
# loads neither torch nor numba nor scipy.

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-compand`` command."""
    parser = argparse.ArgumentParser(
        prog="napari-compand",
        description="Image companding and inverse halftoning (Hou & Qiu) from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    degrade = commands.add_parser(
        "degrade", help="quantize (Eq. 2) or halftone images", description="Degrade image files."
    )
    degrade.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    degrade.add_argument("--out", type=Path, required=True, help="output folder")
    how = degrade.add_mutually_exclusive_group(required=True)
    how.add_argument("--bits", type=int, help="reduce to this many bits per channel (Eq. 2)")
    how.add_argument(
        "--halftone",
        choices=HALFTONE_METHODS,
        metavar="METHOD",
        help=f"halftone with METHOD: {', '.join(HALFTONE_METHODS)}",
    )
    degrade.add_argument(
        "--serpentine", action="store_true", help="serpentine scan for error diffusion"
    )
    _add_overwrite(degrade)
    degrade.set_defaults(func=_run_degrade)

    metrics = commands.add_parser(
        "metrics",
        help="PSNR/SSIM against a reference",
        description="PSNR and SSIM of each test image against the reference.",
    )
    metrics.add_argument("reference", type=Path, help="reference (clean) image file")
    metrics.add_argument("tests", nargs="+", type=Path, help="test image files or folders")
    metrics.add_argument(
        "--data-range",
        type=float,
        default=None,
        help="peak value for float images (default: from the dtype)",
    )
    metrics.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")
    _add_overwrite(metrics)
    metrics.set_defaults(func=_run_metrics)

    from .training.cli import add_train_command

    add_train_command(commands)

    restore = commands.add_parser(
        "restore",
        help="restore images with a trained model",
        description="Expand the bit depth of, or inverse-halftone, image files with a zoo "
        "model (see `napari-compand models`) or a checkpoint file. Outputs keep the input's "
        "dtype and are written as <stem>_<model>.png (TIFF for floats).",
    )
    restore.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    restore.add_argument(
        "--model",
        default="auto",
        help="zoo name, checkpoint file, or auto (default): per image, the default model for "
        "what its pixels show (two levels per channel: a halftone; values on an l-bit grid: "
        "l-bit data)",
    )
    restore.add_argument("--out", type=Path, required=True, help="output folder")
    restore.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    restore.add_argument("--tile-size", type=int, default=1024, help="tile edge in pixels")
    restore.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="tile overlap in pixels (default: tile/4; both are raised to what the model needs "
        "to tile without seams)",
    )
    restore.add_argument(
        "--consistent",
        action="store_true",
        help="expansion models: keep each pixel in its input's quantization bin (Eq. 2)",
    )
    restore.add_argument(
        "--self-ensemble",
        nargs="?",
        type=int,
        const=8,
        choices=VIEW_COUNTS,
        metavar="VIEWS",
        help="average the restorations of this many views: 1, 2 (default) or 8 (the flag "
        "alone); turned and mirrored copies for expansion, copies shifted by a pixel or a "
        "few for halftones (error diffusion has a direction); N views take N times the time",
    )
    _add_overwrite(restore)
    restore.set_defaults(func=_run_restore)

    evaluate = commands.add_parser(
        "eval",
        help="the paper's tables on your images",
        description="Degrade every clean image (Eq. 2 at each bit depth, Floyd-Steinberg "
        "halftoning), restore it with each model and with the classical baselines, and print "
        "mean PSNR/SSIM (grey and colour) as markdown tables in the layout of the paper's "
        "Tables I-III, with the paper's numbers beside ours.",
    )
    evaluate.add_argument("--data", nargs="+", type=Path, required=True, help="clean images")
    evaluate.add_argument("--task", choices=[t.value for t in Task], help="default: both")
    evaluate.add_argument("--bits", nargs="+", type=int, help="expansion depths (default 1-5)")
    evaluate.add_argument(
        "--models", nargs="+", help="zoo names or checkpoint files (default: the shipped zoo)"
    )
    evaluate.add_argument(
        "--tones", nargs="+", choices=("grey", "colour"), default=["grey", "colour"]
    )
    evaluate.add_argument("--limit", type=int, help="use only the first N images")
    evaluate.add_argument(
        "--no-in-bin", dest="in_bin", action="store_false", help="skip the in-bin variants"
    )
    evaluate.add_argument(
        "--self-ensemble",
        nargs="?",
        type=int,
        const=8,
        choices=(2, 8),
        metavar="VIEWS",
        help="also score every model averaged over 2 or 8 views (expansion in bin; the flag "
        "alone: 8; 2 is what restore does by default)",
    )
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    evaluate.add_argument("--csv", type=Path, help="also write the results as CSV")
    evaluate.add_argument("--markdown", type=Path, help="also write the tables to this file")
    evaluate.add_argument(
        "--per-image",
        type=Path,
        metavar="CSV",
        help="also write every image's PSNR/SSIM as CSV (one line per image, method and tone)",
    )
    _add_overwrite(evaluate)
    evaluate.set_defaults(func=_run_eval)

    models = commands.add_parser("models", help="list the model zoo", description="List models.")
    models.add_argument("--json", action="store_true", help="print full metadata as JSON")
    models.set_defaults(func=_run_models)
    return parser


def _add_overwrite(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (inputs are never written over)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            original = warnings.showwarning

            def show(message, category, *rest, **kwargs):  # our notes as one plain line
                if issubclass(category, UserWarning) and category.__module__.startswith(
                    "napari_compand"
                ):
                    print(f"napari-compand {args.command}: note: {message}", file=sys.stderr)
                else:
                    original(message, category, *rest, **kwargs)

            warnings.showwarning = show
            return args.func(args)
    except (OSError, ValueError, TypeError, RuntimeError) as err:
        print(f"napari-compand {args.command}: error: {err}", file=sys.stderr)
        return 2


def _slug(spec: Degradation) -> str:
    """File-name friendly label: ``3bit``, ``halftone-floyd-steinberg``."""
    return spec.label.replace("-bit", "bit").replace(" ", "-")


def _run_degrade(args: argparse.Namespace) -> int:
    from ._io import collect_images, output_suffix, plan_outputs, read_image, write_image
    from .degrade import Degradation, DegradationMode

    if args.bits is not None:
        spec = Degradation(DegradationMode.QUANTIZE, bits=args.bits)
    else:
        spec = Degradation(
            DegradationMode.HALFTONE, method=args.halftone, serpentine=args.serpentine
        )
    files = collect_images(args.inputs)
    outputs = plan_outputs(
        files,
        args.out,
        lambda path, stem: f"{stem}_{_slug(spec)}{output_suffix(path)}",
        overwrite=args.overwrite,
    )
    for number, (path, out) in enumerate(zip(files, outputs, strict=True), start=1):
        written = write_image(out, spec.apply(read_image(path)))
        print(f"[{number}/{len(files)}] {path} -> {written}")
    return 0


def _advancer(bar) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves a tqdm ``bar``."""

    def advance(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return advance


def _run_restore(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._io import collect_images, output_suffix, plan_outputs, read_image, write_image
    from .degrade import detect_degradation
    from .inference import fit_warning, load_model, restore

    files = collect_images(args.inputs)
    if args.model == "auto":  # the output names need each image's model: look at them first
        chosen = {
            path: _default_model_for(path, detect_degradation(read_image(path))) for path in files
        }
    else:
        chosen = dict.fromkeys(files, args.model)
    models = {name: load_model(name) for name in dict.fromkeys(chosen.values())}
    slugs = {}
    for path in files:
        slug = models[chosen[path]].name.replace("/", "_")
        slug += "_consistent" if args.consistent else ""
        slug += "" if args.self_ensemble is None else f"_x{args.self_ensemble}"
        slugs[path] = slug
    outputs = plan_outputs(
        files,
        args.out,
        lambda path, stem: f"{stem}_{slugs[path]}{output_suffix(path)}",
        overwrite=args.overwrite,
    )
    for number, (path, out) in enumerate(zip(files, outputs, strict=True), start=1):
        model = models[chosen[path]]
        desc = f"[{number}/{len(files)}] {path.name}"
        image = read_image(path)
        mismatch = None if args.model == "auto" else fit_warning(model, detect_degradation(image))
        if mismatch is not None:
            print(f"napari-compand restore: note: {path}: {mismatch}", file=sys.stderr)
        with tqdm(desc=desc, unit="tile", leave=False) as bar:
            result = restore(
                image,
                model,
                device=args.device,
                tile_size=args.tile_size,
                overlap=args.overlap,
                consistent=args.consistent,
                self_ensemble=args.self_ensemble,
                progress=_advancer(bar),
            )
        written = write_image(out, result)
        print(f"{desc} -> {written} ({model.name})")
    return 0


def _default_model_for(path: Path, spec: Degradation | None) -> str:
    """``--model auto``: the zoo's default model for what ``path``'s pixels show."""
    from . import zoo

    if spec is None:
        raise ValueError(
            f"{path}: its pixels look neither halftoned (two levels per channel) nor reduced "
            "in bit depth (values on an l-bit grid); choose a model with --model"
        )
    try:
        return zoo.default_model_for(spec)  # a Bayer dither gets its specialist
    except KeyError as err:
        raise ValueError(f"{path} looks like {spec.label} data: {err.args[0]}") from None


def _run_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import paper_tables
    from ._io import check_output, collect_images, read_image, to_uint8_channels, write_atomic

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    inputs = collect_images(args.data)
    files = inputs[: args.limit]
    outputs = {"--csv": args.csv, "--markdown": args.markdown, "--per-image": args.per_image}
    given = {what: target for what, target in outputs.items() if target is not None}
    for what, target in given.items():
        check_output(target, inputs, overwrite=args.overwrite, what=what)
    if len({target.resolve() for target in given.values()}) < len(given):
        raise ValueError(f"{', '.join(given)} name the same file; give each its own name")
    images = [to_uint8_channels(read_image(path), 3) for path in files]
    methods = paper_tables.plan(
        args.task,
        args.bits,
        args.models,
        consistent=args.in_bin,
        self_ensemble=args.self_ensemble,
        device=args.device,
    )
    with tqdm(desc="eval", unit="image", total=0) as bar:
        results = paper_tables.measure(images, methods, args.tones, progress=_advancer(bar))
    data = ", ".join(str(p) for p in args.data)
    names = [str(path) for path in files]
    text = paper_tables.markdown(results, data=data)
    classic = paper_tables.classic_markdown(results, names)  # the paper's Table IV, Fig. 8
    text += "\n" + classic if classic else ""
    print(text)
    if args.markdown is not None:
        write_atomic(args.markdown, lambda temporary: temporary.write_text(text))
    if args.csv is not None:
        write_atomic(args.csv, lambda temporary: paper_tables.write_csv(results, temporary))
    if args.per_image is not None:
        write_atomic(
            args.per_image,
            lambda temporary: paper_tables.write_per_image_csv(results, names, temporary),
        )
    return 0


def _run_models(args: argparse.Namespace) -> int:
    import json

    from . import zoo

    if args.json:
        print(json.dumps({m.name: m.metadata for m in zoo.models()}, indent=1))
        return 0
    from .paper import reported_for_model

    print(
        "| model | task | network | loss | Set5+Set14 PSNR / SSIM | baseline "
        "| paper (COCO) |\n|---|---|---|---|---|---|---|"
    )
    for m in zoo.models():
        what = f"expand {m.bits}-bit" if m.task == Task.EXPAND else Task(m.task).label
        scores = m.evaluation.get("set5+set14")
        base = next(
            (v for k, v in m.evaluation.items() if k.startswith("set5+set14 baseline")), None
        )
        paper = reported_for_model(m.metadata)  # the paper's SSIM has two digits
        paper_text = f"{paper.psnr:.2f} dB / {paper.ssim:.2f}" if paper else "-"
        fmt = lambda s: f"{s['psnr']:.2f} dB / {s['ssim']:.3f}" if s else "-"  # noqa: E731
        print(
            f"| {m.name} | {what} | {m.arch} | {m.loss} | {fmt(scores)} | {fmt(base)} "
            f"| {paper_text} |"
        )
    return 0


def _run_metrics(args: argparse.Namespace) -> int:
    from ._io import check_output, collect_images, read_image, write_atomic
    from .metrics import compare

    tests = collect_images(args.tests)
    if args.csv is not None:
        check_output(args.csv, [args.reference, *tests], overwrite=args.overwrite, what="--csv")
    reference = read_image(args.reference)
    rows, skipped = [], []
    for path in tests:
        try:
            planes = compare(reference, read_image(path), args.data_range)
        except (OSError, ValueError, TypeError) as err:  # name the file, go on with the others
            print(f"napari-compand metrics: skipped {path}: {err}", file=sys.stderr)
            skipped.append(path)
            continue
        for scores in planes:
            plane = ",".join(map(str, scores.plane))
            rows.append((str(path), plane, scores.psnr, scores.ssim))
    if not rows:
        raise ValueError(f"none of the {len(tests)} test image(s) could be compared")
    print(f"reference: {args.reference}\n")
    print("| test | plane | PSNR (dB) | SSIM |\n|---|---|---|---|")
    for path, plane, p, s in rows:
        print(f"| {path} | {plane or '-'} | {p:.2f} | {s:.4f} |")
    if args.csv is not None:

        def write_csv(temporary: Path) -> None:
            with open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["test", "plane", "psnr_db", "ssim"])
                writer.writerows(rows)

        write_atomic(args.csv, write_csv)
    if skipped:
        print(
            f"napari-compand metrics: {len(skipped)} of {len(tests)} test image(s) skipped: "
            + ", ".join(str(p) for p in skipped),
            file=sys.stderr,
        )
    return 0
