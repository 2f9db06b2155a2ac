"""Evaluate trained checkpoints and copy them into the zoo (package data).

For every ``<job>.safetensors`` given (fp16 exports written by ``train_zoo.py``),
score the model and its classical baseline on the evaluation sets with
:mod:`napari_compand.evaluation`, add ``zoo_name``, ``description`` and
``evaluation`` to its metadata, and write it to
``src/napari_compand/zoo/weights/<task>__<name>.safetensors``.

Example::

    python scripts/package_zoo.py runs/gpu1/ih_conv1_1.safetensors \\
        --eval set5+set14=../shared/data/eval/set5,../shared/data/eval/set14 \\
        --eval bsds/test=../shared/data/bsds/test --x8 set5+set14

``--x8 SET`` also scores the models with the 8-view self-ensemble on that set, colour
and grey (key ``"<SET>[ grey] x8"``; expansion in bin); ``--x2 SET`` with the 2 views that
``restore`` averages by default (key ``"<SET>[ grey] x2"``; with ``--halftones`` also per
halftone). ``--zoo NAME ...`` with ``--x2``/``--x8`` adds those scores to models that are
shipped already, and the one-view scores of any ``--eval`` set they were never scored on,
keeping everything else. The scores without a suffix are the network's
alone (one view). ``--noise SET`` adds the scores on noisy versions of that set's colour
images (key ``"<SET> noise"``; a grey partner: its grey images, ``"<SET> grey noise"``;
:func:`napari_compand.evaluation.noise_robustness`, with
restore's default 2 views, next to the classical baseline), for new and ``--zoo`` models:
one row per sigma and noise kind (``--noise-kinds``: ``independent`` per channel, as in
multichannel micrographs, and ``shared``, one field for all channels, as in camera
photographs; each row's ``"shared"`` says which). A ``--zoo`` model keeps its rows of the
kinds not asked for.

``--out DIR`` writes the new files there instead of the package's zoo (to score a stage
before deciding whether it ships).

``--int8 NAME ...`` stores shipped models as int8 with one scale per output row
(:func:`napari_compand.checkpoints.quantize_weights`: half the size of float16) and scores
them again on the ``--eval`` sets, which must be every set of one-view scores they have
(their other scores could not be kept); each file keeps its float16 scores under
``"float16 evaluation"``.

Every score is the model's own network's (``grey_partner=False``): a colour model's
grey rows are not those of its grey partner (``<name>-grey``), which has its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from train_zoo import zoo_name  # this folder: the job names are train_zoo's

from napari_compand._io import collect_images, read_image, to_uint8_channels
from napari_compand.checkpoints import load_checkpoint, quantize_weights, save_checkpoint
from napari_compand.degrade import KNOWN_HALFTONES, Degradation
from napari_compand.evaluation import (
    NOISE_SIGMAS,
    baseline,
    best_gaussian,
    classical_baseline,
    evaluate_many,
    grey_version,
    model_restorer,
    noise_robustness,
)
from napari_compand.inference import load_model
from napari_compand.paper import reported
from napari_compand.training.config import TrainingConfig
from napari_compand.vocabulary import ORDERED_METHODS

NOISE_KINDS = ("independent", "shared")  # per channel (micrographs), one field (cameras)
ZOO = Path(__file__).resolve().parents[1] / "src" / "napari_compand" / "zoo" / "weights"


def warm_starts(meta: dict) -> list[dict]:
    """The training stages a model grew from, oldest first, each with its recipe."""
    stages, parent = [], meta.get("init")
    keys = ("recipe", "iterations_done", "device", "precision", "data", "validation")
    # how a stage's weights were chosen: kept only where the stage recorded it
    choices = ("weight_average", "best")
    while isinstance(parent, str) and Path(parent).is_file():
        previous = load_checkpoint(parent).metadata
        stage = {key: previous.get(key) for key in keys}
        stage.update({key: previous[key] for key in choices if previous.get(key)})
        stages.insert(0, stage)
        stages[:0] = previous.get("warm_starts", [])  # a packaged parent carries its own chain
        parent = previous.get("init")
    return stages


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--eval", action="append", default=[], help="NAME=DIR[,DIR...]")
    parser.add_argument("--note", default="", help="added to each model's description")
    parser.add_argument(
        "--halftones",
        metavar="SET",
        help="also score inverse-halftoning models on every halftone of KNOWN_HALFTONES on "
        "this evaluation set, next to each halftone's best Gaussian blur",
    )
    parser.add_argument(
        "--new-halftones-only",
        action="store_true",
        help="with --zoo and --halftones: score only the halftones a shipped model has no "
        "score for yet (one added to KNOWN_HALFTONES)",
    )
    parser.add_argument(
        "--x8",
        action="append",
        default=[],
        metavar="SET",
        help="also score the models with 8 views (self-ensemble) on this evaluation set",
    )
    parser.add_argument(
        "--x2",
        action="append",
        default=[],
        metavar="SET",
        help="also score the models with restore's default 2 views on this set",
    )
    parser.add_argument(
        "--noise",
        metavar="SET",
        help="also score the models (2 views) on noisy versions of this set's colour images",
    )
    parser.add_argument(
        "--noise-kinds",
        nargs="+",
        choices=NOISE_KINDS,
        default=list(NOISE_KINDS),
        help="with --noise: independent noise per channel (micrographs), one noise field for "
        "all channels (shared: camera photographs), or both",
    )
    parser.add_argument(
        "--zoo",
        nargs="+",
        default=[],
        metavar="NAME",
        help="shipped models to add the --x2 / --x8 scores to, and the scores of any --eval "
        "set they were never scored on (nothing else changes)",
    )
    parser.add_argument(
        "--int8",
        nargs="+",
        default=[],
        metavar="NAME",
        help="shipped models to store as int8 (half of float16's size) and score again on "
        "the --eval sets",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ZOO,
        help="where new checkpoints are written (default: the package's zoo; a scratch "
        "folder to score a stage without touching the zoo)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads (1 beside a training run)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = {}
    for item in args.eval:
        name, dirs = item.split("=", 1)
        files = collect_images(dirs.split(","))
        sets[name] = [to_uint8_channels(read_image(f), 3) for f in files]
    # each set's colour images and their grey versions, made once
    tones = {
        name: (("", colour), (" grey", [grey_version(i) for i in colour]))
        for name, colour in sets.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    ensembles = {2: args.x2, 8: args.x8}
    halftone_images = sets[args.halftones] if args.halftones else None
    noisy_images = sets[args.noise] if args.noise else None
    for name in args.int8:
        store_int8(name, tones)
    for name in args.zoo:
        add_shipped_scores(
            name,
            tones,
            ensembles,
            halftone_images,
            args.new_halftones_only,
            noisy_images,
            args.noise,
            args.noise_kinds,
            args.halftones or "",
        )
    # read every warm-start chain first: packaging may overwrite a parent file
    lineage = {path: warm_starts(load_checkpoint(path).metadata) for path in args.checkpoints}
    for path in args.checkpoints:
        checkpoint = load_checkpoint(path)
        meta = dict(checkpoint.metadata)
        name = zoo_name(path.stem)
        degradation = TrainingConfig.from_dict(meta["recipe"]).degradation
        model = load_model(path)
        evaluation = {}
        for set_name, set_tones in tones.items():
            evaluation.update(set_scores(model, meta, degradation, set_tones, set_name, name))
        for views, set_names in ensembles.items():
            for set_name in set_names:
                evaluation.update(
                    ensemble_scores(model, degradation, tones[set_name], set_name, name, views)
                )
        if args.halftones and meta["task"] == "inverse-halftone":
            evaluation[f"{args.halftones} halftones"] = halftone_scores(
                model, sets[args.halftones], name, views=2 if args.x2 else 1
            )
        if args.noise:
            key, noisy, kinds = noise_inputs(meta, sets[args.noise], args.noise, args.noise_kinds)
            evaluation[key] = noise_scores(model, meta, degradation, noisy, name, kinds)
        for tone in ("colour", "grey"):  # the paper's network of this task and loss
            paper = reported(meta["task"], meta.get("bits"), meta["loss_layer"], tone)
            if paper and not meta["recipe"].get("pixel_weight"):
                key = "paper (COCO)" + (" grey" if tone == "grey" else "")
                evaluation[key] = {"psnr": paper.psnr, "ssim": paper.ssim}
        what = (
            f"{meta['bits']}-bit -> 8-bit expansion"
            if meta["task"] == "expand"
            else f"inverse halftoning ({meta['halftone_method']})"
        )
        recipe = TrainingConfig.from_dict(meta["recipe"])
        loss = ("VGG19 " if recipe.perceptual_weight else "") + recipe.loss_name
        stages = lineage[path]
        warm = ""
        if stages:
            meta["init"] = "see warm_starts"
            meta["warm_starts"] = stages
            warm = " after warm starts " + " + ".join(
                f"{s['iterations_done']} iterations on {s['device']}" for s in stages
            )
        meta.update(
            zoo_name=name,
            description=f"{what}, {meta['architecture'].get('arch', 'unet')}, {loss} loss, "
            f"{meta['iterations_done']} iterations" + warm + ". " + args.note,
            evaluation=evaluation,
        )
        target = args.out / f"{name.replace('/', '__')}.safetensors"
        _save_weights(checkpoint, target, meta)
        print(f"-> {target} ({target.stat().st_size / 2**20:.2f} MiB)", flush=True)


def _save_weights(checkpoint, path: Path, meta: dict) -> None:
    """Write ``checkpoint``'s weights (kept fp16 or int8 when its metadata says so) with
    ``meta``; an int8 file's weights come back exactly (their float16 values requantise to
    the same rows and scales)."""
    network = checkpoint.build_model()
    if meta.get("dtype") in ("float16", "int8"):
        network = network.half()
    save_checkpoint(path, network, meta, int8=meta.get("dtype") == "int8")


def store_int8(name: str, sets: dict[str, tuple]) -> None:
    """Store shipped model ``name`` as int8 and replace its one-view scores on ``sets``
    (:func:`set_scores`) by the int8 network's; the float16 scores are kept under
    ``"float16 evaluation"``. Refused for a model with scores of another kind (ensembles,
    halftones, noise) or of a set not in ``sets``: those could not be kept true."""
    from napari_compand import zoo

    path = zoo.path_of(name)
    if path is None:
        raise SystemExit(f"no shipped model {name!r}")
    meta = dict(load_checkpoint(path).metadata)
    if meta.get("dtype") == "int8":
        raise SystemExit(f"{name} is stored as int8 already")
    old = {k: v for k, v in meta["evaluation"].items() if not k.startswith("paper (COCO)")}
    kept = {k: v for k, v in meta["evaluation"].items() if k.startswith("paper (COCO)")}
    temporary = path.with_name(path.stem + ".int8-tmp.safetensors")
    quantize_weights(path, temporary)
    try:
        checkpoint = load_checkpoint(temporary)
        model = load_model(temporary)
        degradation = TrainingConfig.from_dict(meta["recipe"]).degradation
        new = {}
        for set_name, set_tones in sets.items():
            new.update(set_scores(model, meta, degradation, set_tones, set_name, name))
        if set(new) != set(old):
            raise SystemExit(
                f"{name}: its scores {sorted(set(old) - set(new))} are not one-view scores of "
                f"the --eval sets {sorted(sets)}; it stays float16"
            )
        for key in sorted(new):
            print(f"{name:34s} {key:34s} {old[key]['psnr']:.3f} -> {new[key]['psnr']:.3f} dB")
        meta.update(
            dtype="int8",
            evaluation={**kept, **new},
            **{"float16 evaluation": old},
        )
        _save_weights(checkpoint, path, meta)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"-> {path} ({path.stat().st_size / 2**20:.2f} MiB)", flush=True)


def set_scores(
    model, meta: dict, degradation: Degradation, tones: tuple, set_name: str, name: str
) -> dict:
    """One view's scores of ``model`` (its network alone; an expansion model that is not in
    bin by construction also with ``consistent``) and of its task's classical baseline for
    each ``(tone, images)`` of ``tones`` (colour and grey): ``{"<set>[ grey][ variant]": ...}``
    with variants ``""``, ``" consistent"`` and ``" baseline <classical>"``."""
    classical = classical_baseline(meta["task"])
    restorers = {"": model_restorer(model, grey_partner=False)}
    in_bin_by_construction = meta["architecture"].get("base") == "bin"
    if meta["task"] == "expand" and not in_bin_by_construction:
        restorers[" consistent"] = model_restorer(model, consistent=True, grey_partner=False)
    found = {}
    for tone, images in tones:
        key = f"{set_name}{tone}"
        every = {**restorers, classical: baseline(classical, degradation)}
        scores = evaluate_many(images, degradation, every)  # one degradation per image
        for variant in restorers:
            found[f"{key}{variant}"] = scores[variant].as_dict()
            if in_bin_by_construction:  # already in bin: the same scores
                found[f"{key} consistent"] = scores[variant].as_dict()
            print(f"{name:34s} {key + variant:26s} {scores[variant].psnr:6.2f} dB", flush=True)
        found[f"{key} baseline {classical}"] = scores[classical].as_dict()
        print(f"{name:34s} {key + ' ' + classical:26s} {scores[classical].psnr:6.2f} dB")
    return found


def ensemble_scores(
    model, degradation: Degradation, tones: tuple, set_name: str, name: str, views: int
) -> dict:
    """Scores with a self-ensemble of ``views`` views (expansion in bin) for each
    ``(tone, images)`` of ``tones`` (colour and grey): ``{"<set>[ grey] x<views>": ...}``."""
    suffix = f"x{views}"
    expand = model.task == "expand"
    restorer = model_restorer(model, consistent=expand, self_ensemble=views, grey_partner=False)
    found = {}
    for tone, images in tones:
        scores = evaluate_many(images, degradation, {suffix: restorer})[suffix]
        found[f"{set_name}{tone} {suffix}"] = scores.as_dict()
        print(f"{name:34s} {set_name + tone + ' ' + suffix:26s} {scores.psnr:6.2f} dB", flush=True)
    return found


def add_shipped_scores(
    name: str,
    sets: dict[str, tuple],
    ensembles: dict[int, list[str]],
    halftones: list | None,
    only_new: bool = False,
    noisy: list | None = None,
    noise_set: str | None = None,
    noise_kinds: Sequence[str] = NOISE_KINDS,
    halftone_set: str = "",
) -> None:
    """Add the one-view scores of every set of ``sets`` that shipped model ``name`` was never
    scored on (:func:`set_scores`), the scores of ``ensembles`` (views -> set names of
    ``sets``) and, for an
    inverse-halftoning model with ``halftones`` images, the per-halftone scores with 2 views
    too (:func:`halftone_scores`; ``only_new``: only of halftones it has no score for)
    and, with ``noisy`` images (of set ``noise_set``), the scores on their noisy versions
    (:func:`noise_scores`) of ``noise_kinds`` to its metadata; file read and written once,
    everything else (the noise rows of other kinds too) kept."""
    from napari_compand import zoo

    path = zoo.path_of(name)
    if path is None:
        raise SystemExit(f"no shipped model {name!r}")
    checkpoint = load_checkpoint(path)
    meta = dict(checkpoint.metadata)
    degradation = TrainingConfig.from_dict(meta["recipe"]).degradation
    model = load_model(path)
    evaluation = dict(meta["evaluation"])
    for set_name, set_tones in sets.items():
        if set_name not in evaluation:  # a set it was never scored on: its one-view scores
            evaluation.update(set_scores(model, meta, degradation, set_tones, set_name, name))
    for views, set_names in ensembles.items():
        for set_name in set_names:
            evaluation.update(
                ensemble_scores(model, degradation, sets[set_name], set_name, name, views)
            )
    if halftones is not None and meta["task"] == "inverse-halftone":
        # its key, or for a model never scored per halftone, that of the set given
        key = next((k for k in evaluation if k.endswith(" halftones")), f"{halftone_set} halftones")
        kept = evaluation.get(key, {}) if only_new else {}
        evaluation[key] = {**kept, **halftone_scores(model, halftones, name, 2, skip=kept)}
    if noisy is not None:
        key, noisy, noise_kinds = noise_inputs(meta, noisy, noise_set, noise_kinds)
        kept = [r for r in evaluation.get(key, []) if _noise_kind(r) not in noise_kinds]
        evaluation[key] = kept + noise_scores(model, meta, degradation, noisy, name, noise_kinds)
    meta["evaluation"] = evaluation
    _save_weights(checkpoint, path, meta)
    print(f"-> {path}", flush=True)


def noise_inputs(
    meta: dict, colour: list, noise_set: str, kinds: Sequence[str]
) -> tuple[str, list, list[str]]:
    """What ``--noise`` scores a model of metadata ``meta`` on: ``(key, images, kinds)``.

    A colour model: ``"<set> noise"``, the set's ``colour`` images, ``kinds``. A grey-only
    model (a grey partner, which restores only grey images): ``"<set> grey noise"``, their
    grey versions, and only ``independent`` noise (one channel has one noise field)."""
    if meta["architecture"].get("channels", 3) == 1:
        return f"{noise_set} grey noise", [grey_version(i) for i in colour], ["independent"]
    return f"{noise_set} noise", colour, list(kinds)


def _noise_kind(row: dict) -> str:
    """``"shared"`` or ``"independent"``: the noise of a stored noise row (rows written
    before the kinds were told apart are independent)."""
    return "shared" if row.get("shared") else "independent"


def noise_scores(
    model,
    meta: dict,
    degradation: Degradation,
    images: list,
    name: str,
    kinds: Sequence[str] = NOISE_KINDS,
    views: int = 2,
) -> list[dict]:
    """Scores on noisy versions of ``images`` (each noisy image the ground truth;
    :func:`napari_compand.evaluation.noise_robustness`) for each noise kind of ``kinds``
    (:data:`NOISE_KINDS`), the model with ``views`` views (expansion in bin) and its task's
    classical baseline: one entry per kind and noise sigma with both scores and how many
    images the model restores below the baseline. Sigma 0 (the clean images) is the same
    for every kind and is restored once."""
    classical = classical_baseline(meta["task"])
    expand = meta["task"] == "expand"
    restorers = {
        "model": model_restorer(model, consistent=expand, self_ensemble=views, grey_partner=False),
        "baseline": baseline(classical, degradation),
    }
    clean = noise_robustness(images, degradation, restorers, [0.0])  # the same for every kind
    noisy = [sigma for sigma in NOISE_SIGMAS if sigma]
    table = []
    for kind in kinds:
        shared = kind == "shared"
        found_by_sigma = clean | noise_robustness(
            images, degradation, restorers, noisy, shared=shared
        )
        for sigma, found in found_by_sigma.items():
            net, base = found["model"], found["baseline"]
            table.append(
                {
                    "sigma": sigma,
                    "shared": shared,
                    "views": views,
                    "model": net.as_dict(),
                    "baseline": {**base.as_dict(), "name": classical},
                    "images_below_baseline": net.images_below(base),
                }
            )
            print(
                f"{name:34s} {kind} noise sigma {sigma:<4g} {net.psnr:6.2f} dB "
                f"({classical} {base.psnr:.2f}, {table[-1]['images_below_baseline']} images below)",
                flush=True,
            )
    return table


def halftone_scores(
    model, images: list, name: str, views: int = 1, skip: dict | None = None
) -> dict:
    """Colour PSNR/SSIM on every halftone of ``KNOWN_HALFTONES`` but those (labels) in
    ``skip`` (the network alone, and with ``views`` views under ``"x<views>"`` when more
    than 1), with its best Gaussian. A model that reads a threshold map is scored on the
    ordered dithers only (it refuses others)."""
    table = {}
    restorers = {"": model_restorer(model, grey_partner=False)}
    if views > 1:
        restorers[f"x{views}"] = model_restorer(model, self_ensemble=views, grey_partner=False)
    ordered_only = model.network.config.threshold_map
    for method, serpentine in KNOWN_HALFTONES:
        if ordered_only and method not in ORDERED_METHODS:
            continue
        degradation = Degradation("halftone", method=method, serpentine=serpentine)
        if skip and degradation.label in skip:
            continue
        found = evaluate_many(images, degradation, restorers)
        scores = found[""]
        sigma, blur = best_gaussian(images, degradation)
        table[degradation.label] = {
            **scores.as_dict(),
            **{key: found[key].as_dict() for key in restorers if key},
            "best_gaussian": {**blur.as_dict(), "sigma": sigma},
        }
        more = "".join(f", {key} {found[key].psnr:.2f} dB" for key in restorers if key)
        print(
            f"{name:34s} {degradation.label:36s} {scores.psnr:6.2f} dB{more} "
            f"(best Gaussian {blur.psnr:.2f} dB, sigma {sigma})",
            flush=True,
        )
    return table


if __name__ == "__main__":
    main()
