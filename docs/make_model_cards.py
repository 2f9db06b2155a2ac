"""Write docs/models.md: one model card per shipped checkpoint, from its own metadata.

Run after packaging the zoo (``scripts/package_zoo.py``)::

    python docs/make_model_cards.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from napari_compand import paper, zoo
from napari_compand.evaluation import classical_baseline
from napari_compand.vocabulary import HALFTONE_SETS_IN_WORDS

OUT = Path(__file__).resolve().parent / "models.md"

#: The training machines' folders that the metadata names, in words (the photo folders and
#: the BSDS500 val split are made by scripts/training_photos.py).
DATA_FOLDERS = {
    "../shared/data/bsds/": "BSDS500 ",
    "/tmp/dev/bsds/": "BSDS500 ",
    "runs/val80": "the first 80 BSDS500 val images",
    "runs/held20": "the last 20 BSDS500 val images",
    "runs/wp16t": "16 photographs of Debian's lomiri-wallpapers (quartered)",
    "runs/wp40t": (
        "40 photographs of Debian's lomiri-wallpapers, mate-backgrounds and "
        "plasma-workspace-wallpapers (quartered)"
    ),
    "runs/kmc42": "the 24 Kodak and 18 McMaster images (500x500 crops)",
    "runs/urban100": "the 100 colour Urban100 photographs",
}


def _data_in_words(folders: str) -> str:
    """``"../shared/data/bsds/train, runs/wp16t (344 images)"`` -> ``"BSDS500 train, 16
    photographs of Debian's lomiri-wallpapers (quartered) (344 images)"``."""
    for folder, words in DATA_FOLDERS.items():
        folders = folders.replace(folder, words)
    return folders


#: Evaluation sets' names in the cards.
SET_NAMES = {"set5+set14": "Set5+Set14", "bsds/test": "BSDS500 test"}
# a stored noise row's "shared" flag -> its kind in words
NOISE_IN_WORDS = {
    False: "independent per channel",
    True: "one field for all channels (camera-like)",
}


def _scores(evaluation: dict, key: str) -> str:
    s = evaluation.get(key)
    return "–" if not s else f"{s['psnr']:.2f} dB / {s['ssim']:.3f}"


def _stage(recipe: dict, iterations: int, device: str, precision: str | None = None) -> str:
    crops = f"{recipe['crop_size']}² crops, batch {recipe['batch_size']}"
    lr = f"Adam lr {recipe['lr']:g}" + (
        f" ({recipe['lr_schedule']})" if recipe.get("lr_schedule", "constant") != "constant" else ""
    )
    grey = f", {recipe['grey_fraction']:.0%} grey crops" if recipe.get("grey_fraction") else ""
    if recipe.get("model", {}).get("channels") == 1:
        grey = ", grey images only"
    if recipe.get("noise_fraction"):
        grey += (
            f", {recipe['noise_fraction']:.0%} noisy crops (Gaussian, sigma up to "
            f"{recipe['noise_sigma']:g} levels)"
        )
    pixel = f", + {recipe['pixel_weight']:g} x pixel MSE" if recipe.get("pixel_weight") else ""
    bits = f" at {recipe['bits']} bits" if recipe.get("task") == "expand" else ""
    where = f"{device}, {precision}" if precision else device  # older files: not recorded
    return f"{iterations:,} iterations{bits} on {where}: {crops}, {lr}{grey}{pixel}"


_SETTING_WORDS = {
    "lr": "Adam lr {:g}",
    "seed": "seed {}",
    "noise_fraction": "{:.0%} noisy crops",
    "noise_sigma": "noise sigma up to {:g} levels",
    "noise_shared": "{:.0%} of noisy colour crops with one shared field",
    "grey_fraction": "{:.0%} grey crops",
}


def _settings_in_words(difference: dict) -> str:
    """Recipe settings (``checkpoints.average_weights``' ``recipe_differences``) in words."""
    return ", ".join(
        _SETTING_WORDS.get(key, key.replace("_", " ") + " {}").format(value)
        for key, value in difference.items()
        if key not in ("validate_every", "checkpoint_every")  # bookkeeping, not the recipe
    )


def _weights_in_words(stage: dict) -> str:
    """How a stage's weights were chosen: a weight average, its best validation, or ""."""
    average, best = stage.get("weight_average"), stage.get("best")
    if average and average.get("recipe_differences"):  # checkpoints.average_weights
        runs = ", ".join(
            f"{iterations:,} iterations"
            + (f" with {_settings_in_words(difference)}" if difference else " as above")
            for iterations, difference in zip(
                average["iterations_done"], average["recipe_differences"], strict=True
            )
        )
        return (
            f"; its weights are the mean of {len(average['files'])} runs' weights "
            f"(a model soup): {runs}"
        )
    if average:
        sources = ", ".join(
            f"`{Path(file).stem}` at {iterations:,}"
            for file, iterations in zip(average["files"], average["iterations_done"], strict=True)
        )
        return (
            f"; its weights are the mean of {len(average['files'])} checkpoints "
            f"(a stochastic weight average; file at iterations of its stage: {sources})"
        )
    if best:
        return (
            f"; its weights are its best held-out validation (iteration "
            f"{best['iteration']:,}: {best['psnr']:.3f} dB)"
        )
    return ""  # its last iteration


def _storage(meta: dict) -> str:
    """How the file stores its weights; for int8, the float16 network's scores beside."""
    if meta.get("dtype") != "int8":
        return "fp16 weights"
    before = meta.get("float16 evaluation", {})
    scores = [
        f"{key} {before[key]['psnr']:.2f} dB"
        for key in ("set5+set14", "set5+set14 grey")
        if key in before
    ]
    return (
        "int8 weights (one scale per output row, half of fp16's size"
        + (f"; the fp16 weights scored {', '.join(scores)}" if scores else "")
        + ")"
    )


def _partner_lines(model: zoo.ZooModel, partner: str | None) -> list[str]:
    """How grey images are restored, for a model with a grey partner or that is one."""
    if partner:
        return [
            f"- **Grey images** go through its grey-only partner `{partner}` "
            "(`restore(..., grey_partner=False)` sends them through this model; the rows "
            "*via* the partner below are what `restore` gives)."
        ]
    colour = model.name.removesuffix(zoo.GREY_SUFFIX)
    if colour != model.name and zoo.grey_partner(colour) == model.name:
        return [
            f"- **Grey partner** of `{colour}`: warm-started from it and trained on grey "
            "images only; `restore` uses it for grey images given to either name. Its colour "
            "rows restore each channel on its own."
        ]
    return []


def card(model: zoo.ZooModel) -> str:
    meta = model.metadata
    recipe = meta["recipe"]
    arch = meta["architecture"]
    evaluation = model.evaluation
    what = (
        f"{model.bits}-bit → 8-bit expansion (Eq. 2 input)"
        if model.task == "expand"
        else f"inverse halftoning ({meta.get('halftone_method', 'floyd-steinberg')})"
    )
    for name, words in HALFTONE_SETS_IN_WORDS.items():
        what = what.replace(f"({name})", f"of {words}, one drawn per training crop")
    if len(meta.get("halftone_methods", [])) > 1:
        first = meta["halftone_methods"][0].removeprefix("halftone ")
        what += f"; the first table scores its first halftone, {first}"
    if recipe.get("perceptual_weight", 1.0):
        loss = f"VGG19 {meta['loss_layer']} (after ReLU, embedded Caffe weights)"
        if recipe.get("pixel_weight"):
            loss += f" + {recipe['pixel_weight']:g} x pixel MSE"
    else:
        loss = f"pixel {recipe.get('pixel_loss', 'mse').upper()} only (PSNR-oriented)"
    chain = [*meta.get("warm_starts", []), meta]
    stages, previous_blocks, previous_map = [], None, False
    for stage in chain:
        text = _stage(
            stage["recipe"], stage["iterations_done"], stage["device"], stage.get("precision")
        )
        architecture = stage["recipe"].get("model", {})
        blocks = architecture.get("blocks")
        if previous_blocks is not None and blocks != previous_blocks:
            # models.deeper_version: a larger ResUNet warm-started from a smaller one
            text += (
                f", grown to residual blocks {'/'.join(map(str, blocks))} "
                "(the added blocks start as the identity)"
            )
        if architecture.get("threshold_map") and not previous_map:
            # models.with_threshold_map: the map's input weights start at zero
            text += ", now also reading the dither's threshold map (its weights start at zero)"
        stages.append(text + _weights_in_words(stage))
        previous_blocks = blocks
        previous_map = architecture.get("threshold_map", False)
    total = sum(stage["iterations_done"] for stage in chain)
    base = {
        "gaussian": f"Gaussian blur, sigma {arch['sigma']}",
        "midbin": "mid-bin",
        "bin": "position inside the input's quantization bin, starting at mid-bin: every "
        "output stays in its bin",
        "none": "none",
    }
    if arch.get("arch", "unet") == "resunet":
        params = sum(9 * w * w * 2 * n for w, n in zip(arch["widths"], arch["blocks"], strict=True))
        network = (
            f"ResUNet (full resolution + {len(arch['widths']) - 1} coarser levels), widths "
            f"{'/'.join(map(str, arch['widths']))}, residual blocks "
            f"{'/'.join(map(str, arch['blocks']))} per level (~{params / 1e6:.1f} M weights "
            "in the blocks)"
        )
    else:
        network = (
            f"U-Net, {arch['ngf']} base channels, depth {arch['depth']}, at most "
            f"{arch['max_channels']} channels"
        )
    classical = classical_baseline(model.task)
    rows = [
        ("Set5+Set14 colour", "set5+set14", evaluation),
        ("Set5+Set14 grey", "set5+set14 grey", evaluation),
    ]
    if "bsds/test" in evaluation:
        rows += [
            ("BSDS500 test colour", "bsds/test", evaluation),
            ("BSDS500 test grey", "bsds/test grey", evaluation),
        ]
    partner = zoo.grey_partner(model.name)
    if partner:  # what restore() gives grey images: the partner's own grey scores
        theirs = zoo.get(partner).evaluation
        rows += [
            (f"{label}, via `{partner}`", key, theirs)
            for label, key, _ in rows
            if key.endswith("grey") and key in theirs
        ]
    # self-ensembles (expansion in bin): 2 views (what restore does) and 8
    ensembles = [n for n in (2, 8) if any(key.endswith(f" x{n}") for key in evaluation)]
    in_bin = ", in bin" if model.task == "expand" else ""
    titles = {2: f"2 views (restore's default){in_bin}", 8: f"x8 self-ensemble{in_bin}"}
    table = [
        f"| images | model{', 1 view' if ensembles else ''} | in bin | "
        + "".join(f"{titles[n]} | " for n in ensembles)
        + f"{classical} |",
        "|---|---|---|---|" + "---|" * len(ensembles),
    ]
    for label, key, scores in rows:
        table.append(
            f"| {label} | {_scores(scores, key)} | {_scores(scores, key + ' consistent')} "
            + "".join(f"| {_scores(scores, f'{key} x{n}')} " for n in ensembles)
            + f"| {_scores(scores, key + ' baseline ' + classical)} |"
        )
    halftones = next((v for k, v in evaluation.items() if k.endswith(" halftones")), None)
    if halftones:
        two = any("x2" in s for s in halftones.values())
        table += [
            "",
            "| halftone (Set5+Set14, colour) | model, 1 view | "
            + ("2 views (restore's default) | " if two else "")
            + "best Gaussian (sigma) | gain |",
            "|---|---|---|---|" + ("---|" if two else ""),
        ]
        for label, s in halftones.items():
            blur = s["best_gaussian"]
            default = s.get("x2", s)  # what restore gives by default
            gain = default["psnr"] - blur["psnr"]
            table.append(
                f"| {label.removeprefix('halftone ')} | {s['psnr']:.2f} dB / {s['ssim']:.3f} "
                + (f"| {_scores(s, 'x2')} " if two else "")
                + f"| {blur['psnr']:.2f} dB ({blur['sigma']:g}) | {gain:+.2f} dB |"
            )
    noise_key = next((k for k in evaluation if k.endswith(" noise")), None)
    if noise_key:
        noise = evaluation[noise_key]
        views = noise[0]["views"]
        scored = noise_key.removesuffix(" noise")
        grey = scored.endswith(" grey")  # a grey partner's: grey images, one noise field
        data = scored.removesuffix(" grey")
        images = SET_NAMES.get(data, data)
        table += [
            "",
            f"| noise ({images} {'grey' if grey else 'colour'}, the noisy image as ground "
            f"truth) | sigma (levels) | "
            f"model, {views} views | {noise[0]['baseline']['name']} | gain | images below it |",
            "|---|---|---|---|---|---|",
        ]
        for row in noise:
            gain = row["model"]["psnr"] - row["baseline"]["psnr"]
            table.append(
                f"| {'one channel' if grey else NOISE_IN_WORDS[bool(row.get('shared'))]} "
                f"| {row['sigma']:g} "
                f"| {_scores(row, 'model')} | {_scores(row, 'baseline')} "
                f"| {gain:+.2f} dB | {row['images_below_baseline']} of {row['model']['images']} |"
            )
    channels = "1 channel" if arch["channels"] == 1 else f"{arch['channels']} channels"
    reads_map = (
        " (and in, one more: the dither's threshold map at each pixel, from the size and "
        "offset that `degrade.detect_ordered_dither` finds in the halftone; `restore` keeps "
        "each output pixel inside the interval its threshold allows, "
        "`degrade.keep_in_dither`, so the result dithers back to the input)"
        if arch.get("threshold_map")
        else ""
    )
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()[:16]
    lines = [
        f"## {model.name}",
        "",
        f"- **Task**: {what}.",
        f"- **Loss**: {loss}.",
        f"- **Network**: {network}, {channels} in and out{reads_map}, predicting a "
        f"correction to a fixed base ({base[arch['base']]}). {_storage(meta)}, "
        f"{model.path.stat().st_size / 2**20:.1f} MiB, sha256 {digest}….",
        f"- **Data**: {_data_in_words(meta.get('data', '?'))}; "
        f"validation {_data_in_words(meta.get('validation_data', '?'))}.",
        *_partner_lines(model, partner),
        "- **Training** (each stage warm-starts from the one before):",
        *[f"  {i}. {s}" for i, s in enumerate(stages, start=1)],
        f"- **Total**: {total:,} iterations.",
        "",
        *table,
    ]
    return "\n".join(lines + _paper_lines(meta))


def _paper_lines(meta: dict) -> list[str]:
    """What Hou & Qiu report for a paper U-Net of this task, depth and VGG19 loss alone
    (:mod:`napari_compand.paper`: Table I or III, and Table II for the 3-bit layer study;
    both tones); nothing for other networks and losses."""
    layer = meta.get("loss_layer")
    task, bits = meta["task"], meta.get("bits")
    tables = ["I", "II"] if (task, bits, layer) == ("expand", 3, "conv1_1") else [None]
    parts = []
    for table in tables:
        colour = paper.reported_for_model(meta, "colour", table)
        grey = paper.reported_for_model(meta, "grey", table)
        if colour is None or grey is None:
            continue
        default = "III" if task == "inverse-halftone" else "I" if layer == "conv1_1" else "II"
        name = table or default
        parts.append(
            f"Table {name}: colour {colour.psnr:.2f} dB / {colour.ssim:.2f}, grey "
            f"{grey.psnr:.2f} / {grey.ssim:.2f} (its input: {colour.input_psnr:.2f} / "
            f"{grey.input_psnr:.2f} dB)"
        )
    if not parts:
        return []
    return [
        "",
        "The paper reports for this task and loss, on 100 COCO validation images: "
        + "; ".join(parts)
        + (" (the two tables drew different samples)." if len(parts) > 1 else "."),
    ]


def main() -> None:
    header = (
        "# Model cards\n\n"
        "Every checkpoint shipped in `napari_compand/zoo/weights`, as its metadata records it "
        "(`napari-compand models --json` prints all of it). Scores are means over Set5 + Set14 "
        "(16 images) and, where measured at packaging, BSDS500 test (200 images); *in bin* is "
        "the output clamped into each input pixel's quantization bin "
        "(`restore(..., consistent=True)`); grey images are the luminance of the colour ones. "
        "Generated by `docs/make_model_cards.py`; see [results.md](results.md) for the tables "
        "in the paper's layout and [index.md](index.md) for how to use the models. Paths under "
        "`/tmp/dev/bsds` are the GPU machine's copy of BSDS500: all 200 train images and the "
        "first 45 of val (what fitted the 64 MiB upload), validated on 25 test images; earlier "
        "stages used all 400 train + val images.\n"
    )
    OUT.write_text(header + "\n" + "\n\n".join(card(m) for m in zoo.shipped()) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
