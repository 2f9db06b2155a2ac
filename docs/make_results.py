"""Measure the shipped zoo and draw the figures of docs/results.md.

Needs the evaluation images of ``../shared/data`` (or ``--set5-set14`` / ``--bsds``
folders) and matplotlib (``pip install -e ".[docs]"``)::

    python docs/make_results.py tables     # --set5-set14 DIR... (default ../shared/data/eval/*)
    python docs/make_results.py bsds       # --bsds DIR (default ../shared/data/bsds/test)
    python docs/make_results.py figures
    python docs/make_results.py ablation   # --runs runs/ablation (scripts/ablation.py output)
    python docs/make_results.py defaults   # from the shipped files' metadata
    python docs/make_results.py relayout   # the measured tables again, from their CSVs

``tables`` writes ``docs/results/set5_set14.{md,csv}`` (every shipped model, in-bin
variants, 8x self-ensemble for Table I); ``bsds`` writes ``docs/results/bsds_test.{md,csv}``
(the conv1_1 models, colour); ``figures`` draws ``docs/images/psnr_vs_bits.png`` from the CSVs
and ``docs/images/conv1_1_vs_conv5_1.png``; ``ablation`` copies the JSON records of
``scripts/ablation.py`` to ``docs/results/ablation/``, writes ``docs/results/ablation.md`` and
draws ``docs/images/ablation_loss.png``; ``defaults`` writes ``docs/results/defaults.md``
(and the same tables into ``docs/results.md`` between its ``defaults`` markers; the tables of
``tables`` and ``bsds`` get a note naming their models retired since): the default
model of every task against the targets of issues 11 and 12, from the scores that
``scripts/package_zoo.py`` measured and stored in each shipped file (no images needed);
``relayout`` writes the tables of ``tables`` and ``bsds`` again from their CSVs, with the
paper's numbers of :mod:`napari_compand.paper` (no images needed). ``tables``, ``bsds`` and
``relayout`` also fill docs/results.md's copy of those tables (its ``measured`` markers).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

from napari_compand import paper_tables, zoo
from napari_compand._io import collect_images, read_image, to_uint8_channels
from napari_compand.degrade import halftone
from napari_compand.evaluation import classical_baseline
from napari_compand.inference import default_views, load_model, restore
from napari_compand.metrics import psnr
from napari_compand.paper import TABLE_I, reported
from napari_compand.vocabulary import Task

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "results"
IMAGES = DOCS / "images"


def _images(folders) -> list[np.ndarray]:
    return [to_uint8_channels(read_image(f), 3) for f in collect_images(folders)]


def _run(images, methods, name: str, data: str, tones=paper_tables.TONES) -> None:
    from tqdm import tqdm

    with tqdm(desc=name, total=0) as bar:

        def advance(done, total):
            bar.total = total
            bar.update(done - bar.n)

        results = paper_tables.measure(images, methods, tones, progress=advance)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(paper_tables.markdown(results, data=data))
    refresh_retired_note(RESULTS / f"{name}.md")
    paper_tables.write_csv(results, RESULTS / f"{name}.csv")
    fill_block(DOCS / "results.md", "measured", measured_section())
    print((RESULTS / f"{name}.md").read_text())


RETIRED_NOTE = "<!-- retired models -->"
#: the measured tables of ``tables`` and ``bsds``, whose models may leave the zoo later
MEASURED_TABLES = ("set5_set14.md", "bsds_test.md")


def refresh_retired_note(page: Path) -> None:
    """End measured table ``page`` with a note naming its models that have been retired from
    the zoo since (:data:`napari_compand.zoo.RETIRED`) and their successors, replacing an
    earlier note; no note when none of its models is retired."""
    text = page.read_text().split("\n" + RETIRED_NOTE)[0].rstrip("\n") + "\n"
    gone = [
        f"`{name}` (use `{successor}`)"
        for name, successor in zoo.RETIRED.items()
        if re.search(rf"\| {re.escape(name)}[ |]", text)
    ]
    if gone:
        text += (
            f"\n{RETIRED_NOTE}\nRetired from the zoo since this table was measured (they no "
            f"longer load by name): {', '.join(gone)}. The paper's U-Nets that still ship are "
            "now stored as int8 (at most 0.12 dB from the float16 weights measured here; "
            "docs/results.md). The defaults' current scores: docs/results/defaults.md.\n"
        )
    page.write_text(text)


def tables(folders) -> None:
    images = _images(folders)
    conv1_1 = [m.name for m in zoo.shipped() if m.task == "expand" and m.loss_layer == "conv1_1"]
    others = [m.name for m in zoo.shipped() if m.name not in conv1_1]
    methods = paper_tables.plan("expand", models=conv1_1, self_ensemble=True)
    methods += [
        m
        for m in paper_tables.plan(models=others)
        if m.loss_layer is not None or m.task == "inverse-halftone"
    ]
    _run(images, methods, "set5_set14", "Set5 + Set14")


def bsds(folders) -> None:
    images = _images(folders)
    names = [m.name for m in zoo.shipped() if m.loss_layer == "conv1_1"]
    methods = paper_tables.plan(models=names)
    for bits in (1, 2):  # where the ensemble is needed to pass the paper
        best = zoo.default_model("expand", bits)
        methods.append(paper_tables.plan("expand", [bits], [best], self_ensemble=True)[-1])
    # colour only (the targets; grey is measured on Set5 + Set14): half the CPU time
    _run(images, methods, "bsds_test", "BSDS500 test", tones=["colour"])


def grid_ratio(clean: np.ndarray, restored: np.ndarray, period: int) -> float:
    """Power of the error at the 2D harmonics of ``period`` px over the mean elsewhere.

    The error ``restored - clean`` (channel mean, cropped to a multiple of ``period``)
    is Fourier transformed; a pattern repeating every ``period`` pixels puts its
    energy on the lattice of frequencies ``(k H / period, m W / period)``. 1 means
    no periodic structure at that period.
    """
    error = restored.astype(np.float64).mean(-1) - clean.astype(np.float64).mean(-1)
    h, w = (s - s % period for s in error.shape)
    power = np.abs(np.fft.fft2(error[:h, :w])) ** 2
    fy, fx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    lattice = (fy % (h // period) == 0) & (fx % (w // period) == 0)
    lattice[0, 0] = False
    rest = ~lattice
    rest[0, 0] = False
    return float(power[lattice].mean() / power[rest].mean())


def grid_table(folders) -> str:
    """Median grid ratio over the images for each inverse-halftoning layer model."""
    images = _images(folders)
    lines = [
        "| model | 16 px harmonics | 8 px harmonics |",
        "|---|---|---|",
    ]
    for model in [m.name for m in zoo.shipped() if m.task == "inverse-halftone"]:
        ratios = {16: [], 8: []}
        for clean in images:
            restored = restore(halftone(clean, rgb=True), model)
            for period in ratios:
                ratios[period].append(grid_ratio(clean, restored, period))
        lines.append(f"| {model} | {np.median(ratios[16]):.1f}x | {np.median(ratios[8]):.1f}x |")
    return "\n".join(lines) + "\n"


def figures(folders) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(exist_ok=True)
    # PSNR vs bits, colour, Set5+Set14 (and BSDS test where measured)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, name, title in (
        (axes[0], "set5_set14", "Set5 + Set14"),
        (axes[1], "bsds_test", "BSDS500 test"),
    ):
        path = RESULTS / f"{name}.csv"
        if not path.exists():
            ax.set_visible(False)
            continue
        with open(path) as handle:
            rows = [
                r for r in csv.DictReader(handle) if r["tone"] == "colour" and r["task"] == "expand"
            ]
        series: dict[str, dict[int, float]] = {}
        for r in rows:
            label = r["method"].split("/", 1)[-1] if "/" in r["method"] else r["method"]
            series.setdefault(label, {})[int(r["bits"])] = float(r["psnr_db"])
        wanted = {
            "Eq. 2 as-is": ("as-is (Eq. 2)", ":", "grey"),
            "mid-bin": ("mid-bin", "--", "tab:grey"),
            "conv1_1": ("ours, conv1_1", "-", "tab:blue"),
            "conv1_1-pixel in bin": ("ours, conv1_1 + pixel, in bin", "-", "tab:green"),
            "conv1_1-pixel x8 in bin": ("ours, + x8 self-ensemble", "-", "tab:red"),
        }
        for key, (label, style, colour) in wanted.items():
            if key in series:
                xs = sorted(series[key])
                ax.plot(
                    xs, [series[key][x] for x in xs], style, marker="o", color=colour, label=label
                )
        paper = {b: row.psnr for (b, tone), row in TABLE_I.items() if tone == "colour"}
        ax.plot(list(paper), list(paper.values()), "k-", marker="s", label="Hou & Qiu (COCO)")
        ax.set(title=f"Bit-depth expansion to 8 bits, colour, {title}", xlabel="input bits")
        ax.set_ylabel("PSNR (dB)")
        ax.set_xticks(range(1, 6))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMAGES / "psnr_vs_bits.png", dpi=110)
    print(f"wrote {IMAGES / 'psnr_vs_bits.png'}")

    # conv1_1 vs conv5_1 crops of a restored halftone
    files = collect_images(folders)
    pick = next((f for f in files if f.stem.lower() == "monarch"), files[0])
    clean = to_uint8_channels(read_image(pick), 3)
    ht = halftone(clean, rgb=True)
    outputs = {name: restore(ht, f"inverse-halftone/{name}") for name in ("conv1_1", "conv5_1")}
    h, w = clean.shape[:2]
    y, x, size = h // 2 - 48, w // 2 - 48, 96
    panels = [("original", clean), ("Floyd–Steinberg halftone", ht)] + [
        (f"{n} loss: {psnr(clean, o, rgb=True):.2f} dB", o) for n, o in outputs.items()
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image[y : y + size, x : x + size], interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{pick.stem}, {size}x{size} crop; PSNR over the whole image", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "conv1_1_vs_conv5_1.png", dpi=110)
    print(f"wrote {IMAGES / 'conv1_1_vs_conv5_1.png'}")
    (RESULTS / "grid_artifacts.md").write_text(grid_table(folders))
    print((RESULTS / "grid_artifacts.md").read_text())


def ablation(runs: Path) -> None:
    """Table and loss curves of the equal wall-clock ablation (scripts/ablation.py)."""
    import json
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = RESULTS / "ablation"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(runs).glob("*.json")):
        shutil.copy(path, target / path.name)
    records = [json.loads(p.read_text()) for p in sorted(target.glob("*.json"))]
    lines = [
        "| task | network | parameters | iterations in the budget | Set5+Set14 PSNR / SSIM "
        "| classical base | gain | s per 768x512 (1 thread, other job running) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for task, ax in zip(("ih", "ex4"), axes, strict=True):
        for r in (r for r in records if r["run"].startswith(task + "_")):
            arch = r["recipe"]["model"]
            label = r["run"].split("_", 1)[1]
            if arch["arch"] == "resunet":
                label += (
                    f" {'/'.join(map(str, arch['widths']))} x {'/'.join(map(str, arch['blocks']))}"
                )
            label += f", {arch['base']} base"
            base = next(v for k, v in r.items() if k in ("gaussian", "midbin"))
            score = r["set5+set14"]
            gain = score["psnr"] - base["psnr"]
            lines.append(
                f"| {'inverse halftone (FS)' if task == 'ih' else '4-bit expansion'} | {label} "
                f"| {r['parameters'] / 1e6:.2f} M | {r['iterations']:,} | {score['psnr']:.2f} / "
                f"{score['ssim']:.3f} | {base['psnr']:.2f} | {gain:+.2f} dB "
                f"| {r['seconds_per_768x512']:.2f} |"
            )
            curve = np.array(r["loss_curve"])
            if len(curve):
                ax.plot(curve[:, 1] / 60, 10 * np.log10(1 / curve[:, 2]), label=label, lw=1)
        ax.set(
            title="inverse halftoning (Floyd–Steinberg)" if task == "ih" else "4-bit expansion",
            xlabel="training minutes (1 CPU thread each)",
            ylabel="training PSNR of the batch loss (dB)",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    IMAGES.mkdir(exist_ok=True)
    fig.savefig(IMAGES / "ablation_loss.png", dpi=110)
    (RESULTS / "ablation.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / "ablation.md").read_text())
    print(f"wrote {IMAGES / 'ablation_loss.png'}")


#: Colour PSNR targets (dB) of issues 11 and 12 by expansion bits (``None``: inverse
#: halftoning), the same on every set unless given per set; ``None``: mid-bin + 0.5 dB.
TARGETS: dict[int | None, float | dict[str, float] | None] = {
    1: 19.0,
    2: 26.0,
    3: 32.9,
    4: 37.9,
    5: 42.6,
    6: None,
    7: None,
    None: {"set5+set14": 31.5, "bsds/test": 31.8},
}

#: "A Little Bit More" (Punnappurath & Brown, TPAMI 2022, D4) on Set5 + Set14, colour, as
#: measured with its public weights and test script (issue 12).
LITTLE_BIT_MORE = {3: 32.84, 4: 37.88, 5: 42.52}

#: Evaluation sets as ``scripts/package_zoo.py`` names them in the metadata.
SETS = {"set5+set14": "Set5 + Set14 (16 images)", "bsds/test": "BSDS500 test (200 images)"}


def _psnr(evaluation: dict, key: str) -> float | None:
    scores = evaluation.get(key)
    return scores["psnr"] if scores else None


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


#: The tasks with a default model, as ``(task, bits)``: expansion from 1-7 bits, inverse halftoning.
DEFAULT_TASKS = [(Task.EXPAND.value, bits) for bits in range(1, 8)] + [
    (Task.INVERSE_HALFTONE.value, None)
]


def defaults_table(data: str) -> str:
    """One markdown row per task of the default model's stored scores on ``data``.

    Colour and grey are what ``restore`` gives with its default options: the mean of two
    views' restorations (``"<set> x2"``: the image and its quarter turn for expansion, its
    one-pixel shift for inverse halftoning; *1 view* is the network alone), and for a grey
    image the grey partner where one ships. *Margin* is colour
    minus the target (for 6 and 7 bits
    the target is mid-bin + 0.5 dB); *grey gap* is colour minus grey (target: at most 0.5).
    """
    lines = [
        "| task | default model | target | colour | margin | 1 view colour | x8 colour | grey "
        "| grey gap | classical colour / grey | paper (COCO) colour / grey | A Little Bit More |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, bits in DEFAULT_TASKS:
        name = zoo.default_model(task, bits)
        evaluation = zoo.get(name).evaluation
        partner = zoo.grey_partner(name)
        grey_source = zoo.get(partner).evaluation if partner else evaluation
        classical = classical_baseline(task)
        one_view = _psnr(evaluation, data)
        count = default_views(load_model(name))  # what restore averages by default
        views = f" x{count}" if count > 1 else ""
        colour = _psnr(evaluation, f"{data}{views}")
        grey = _psnr(grey_source, f"{data} grey{views}")
        base = _psnr(evaluation, f"{data} baseline {classical}")
        base_grey = _psnr(evaluation, f"{data} grey baseline {classical}")
        target = TARGETS[bits]
        if isinstance(target, dict):
            target = target[data]
        if target is not None:
            target_text = f"≥ {target:.1f}"
        elif base is not None:
            target, target_text = base + 0.5, f"mid-bin + 0.5 = {base + 0.5:.2f}"
        else:
            target_text = "mid-bin + 0.5"
        margin = None if colour is None or target is None else colour - target
        met = margin is not None and margin >= 0
        margin_text = _cell(margin, "{:+.2f}") + (" met" if met else "")
        gap = None if colour is None or grey is None else colour - grey
        gap_text = _cell(gap, "{:.2f}") + (" met" if gap is not None and gap <= 0.5 else "")
        paper = {  # Table I or III, conv1_1 loss: the paper's network for this task
            tone: reported(task, bits, "conv1_1", tone) if data == "set5+set14" else None
            for tone in ("colour", "grey")
        }
        paper_text = " / ".join(_cell(p.psnr if p else None) for p in paper.values())
        rival = LITTLE_BIT_MORE.get(bits) if data == "set5+set14" else None
        label = "inverse halftone (Floyd–Steinberg)"
        if bits:
            label = f"expand, {bits} bit{'s' if bits > 1 else ''}"
        model = f"`{name}`" + (f" + `{partner}`" if partner else "")
        lines.append(
            f"| {label} | {model} | {target_text} | {_cell(colour)} | {margin_text} "
            f"| {_cell(one_view if views else None)} "
            f"| {_cell(_psnr(evaluation, f'{data} x8'))} | {_cell(grey)} | {gap_text} "
            f"| {_cell(base)} / {_cell(base_grey)} | {paper_text} "
            f"| {_cell(rival)} |"
        )
    return "\n".join(lines) + "\n"


#: The bar for every halftone of the mix (issue 11): the default beats the best blur by this.
HALFTONE_GAIN_TARGET = 3.0


def halftones_table() -> str:
    """Per halftone of ``KNOWN_HALFTONES``, Set5 + Set14 colour, from the stored scores: the
    best Gaussian blur and each inverse-halftoning ResUNet with restore's default views
    (``"x2"``; the network alone where that was not scored), the default in bold.

    The default is what ``restore`` picks when a layer's metadata names the halftone
    (``zoo.default_model(..., halftone=...)``); the gain and the target
    (:data:`HALFTONE_GAIN_TARGET` dB over the best blur) are its.
    """
    from napari_compand.degrade import KNOWN_HALFTONES, Degradation

    task = Task.INVERSE_HALFTONE.value
    halftones = [Degradation("halftone", method=m, serpentine=s) for m, s in KNOWN_HALFTONES]
    defaults = [zoo.default_model(task, halftone=h) for h in halftones]
    models = list(dict.fromkeys([zoo.default_model(task), *defaults]))
    scores = {name: zoo.get(name).evaluation.get(zoo.HALFTONE_SCORES, {}) for name in models}
    lines = [
        "| halftone | best blur (sigma) | "
        + " | ".join(f"`{name}`" for name in models)
        + f" | default's gain over the blur | target (+{HALFTONE_GAIN_TARGET:g} dB) |",
        "|---|---|" + "---|" * len(models) + "---|---|",
    ]
    for kind, default in zip(halftones, defaults, strict=True):
        entry = scores[default].get(kind.label)
        label = kind.label.removeprefix("halftone ")
        if entry is None:
            lines.append(f"| {label} | – |" + " – |" * len(models) + " – | – |")
            continue
        blur = entry["best_gaussian"]
        gain = _default_views_psnr(entry) - blur["psnr"]
        short = HALFTONE_GAIN_TARGET - gain
        cells = []
        for name in models:
            own = scores[name].get(kind.label)
            cell = _cell(_default_views_psnr(own) if own else None)
            cells.append(f"**{cell}**" if name == default else cell)
        lines.append(
            f"| {label} | {blur['psnr']:.2f} ({blur['sigma']:g}) | "
            + " | ".join(cells)
            + f" | {gain:+.2f} | {'met' if short <= 0 else f'missed by {short:.2f}'} |"
        )
    return "\n".join(lines) + "\n"


def noise_table(data: str = "set5+set14", shared: bool = False) -> str:
    """Per default model, its stored scores on noisy versions of ``data``'s colour images
    (``"<set> noise"``, written by ``scripts/package_zoo.py --noise``; the noisy image is the
    ground truth; ``shared``: the rows of one noise field for all channels, else of
    independent noise per channel): baseline → model (gain; images below the baseline) per
    noise sigma."""
    rows = {
        name: [
            r
            for r in zoo.get(name).evaluation.get(f"{data} noise", [])
            if bool(r.get("shared")) == shared
        ]
        for name in (zoo.default_model(task, bits) for task, bits in DEFAULT_TASKS)
    }
    sigmas = next((tuple(r["sigma"] for r in v) for v in rows.values() if v), ())
    lines = [
        "| default | baseline | views | " + " | ".join(f"sigma {s:g}" for s in sigmas) + " |",
        "|---|---|---|" + "---|" * len(sigmas),
    ]
    for name, noise in rows.items():
        if not noise:
            lines.append(f"| `{name}` | – | – |" + " – |" * len(sigmas))
            continue
        cells = [
            f"{r['baseline']['psnr']:.2f} → {r['model']['psnr']:.2f} "
            f"({r['model']['psnr'] - r['baseline']['psnr']:+.2f}; "
            f"{r['images_below_baseline']} of {r['model']['images']} below)"
            for r in noise
        ]
        baseline_name = noise[0]["baseline"]["name"]
        lines.append(
            f"| `{name}` | {baseline_name} | {noise[0]['views']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _default_views_psnr(entry: dict) -> float:
    """A stored per-halftone score with restore's default 2 views, else the network's alone."""
    return entry.get("x2", entry)["psnr"]


def defaults() -> None:
    """Write ``docs/results/defaults.md``: the defaults against the targets, per set."""
    parts = [
        "<!-- generated by `python docs/make_results.py defaults` from the shipped files -->",
        "",
    ]
    for data, title in SETS.items():
        parts += [f"**{title}**, mean PSNR (dB):", "", defaults_table(data)]
    parts += [
        "**Ten halftones, Set5 + Set14 colour**, mean PSNR (dB) with restore's default 2 "
        "views; a halftone gets the model in bold, whether its layer metadata names the "
        "method or `degrade.detect_degradation` recognises it from the pixels:",
        "",
        halftones_table(),
        "**Noisy images, Set5 + Set14 colour** (each image plus Gaussian noise of standard "
        "deviation sigma, 8-bit levels, is the ground truth; `evaluation.noise_robustness`), "
        "mean PSNR (dB), baseline → default (gain; images below the baseline); noise "
        "independent per channel, as in multichannel micrographs:",
        "",
        noise_table(),
        "and one noise field for all channels, as in camera photographs (demosaicing and "
        "4:2:0 JPEG leave little noise in the chroma):",
        "",
        noise_table(shared=True),
    ]
    text = "\n".join(parts)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "defaults.md").write_text(text)
    for name in MEASURED_TABLES:  # models retired since they were measured
        if (RESULTS / name).is_file():
            refresh_retired_note(RESULTS / name)
    fill_block(DOCS / "results.md", "defaults", text)  # and in docs/results.md
    print(text)


def fill_block(page: Path, name: str, text: str) -> None:
    """Put ``text`` into ``page`` between its ``<!-- name:start -->`` and
    ``<!-- name:end -->`` markers, replacing what was there."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = page.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{page} has no {start} ... {end} block to fill")
    before, rest = content.split(start)
    page.write_text(before + start + "\n" + text + "\n" + end + rest.split(end)[1])


#: the measured tables (``tables``, ``bsds``): file stem -> the data they were measured on
MEASURED = {"set5_set14": "Set5 + Set14", "bsds_test": "BSDS500 test"}


def measured_section() -> str:
    """docs/results.md's copy of the measured tables: each table of
    ``results/<name>.md`` under its data's name."""
    parts = ["<!-- generated by `python docs/make_results.py relayout` from docs/results/ -->"]
    for name, data in MEASURED.items():
        page = RESULTS / f"{name}.md"
        if not page.is_file():
            continue
        tones = "grey and colour" if "grey PSNR" in page.read_text() else "colour"
        images = re.search(r"Mean over (\d+) images", page.read_text())
        count = f" ({images[1]} images)" if images else ""
        body = page.read_text().replace("### Table", f"### {data}: Table")
        parts.append(f"## {data}{count}, {tones}\n\n{body.strip()}\n")
    return "\n\n".join(parts)


def relayout() -> None:
    """Lay the measured tables out again from their CSVs, with the paper's numbers of
    :mod:`napari_compand.paper` (no images or models needed): ``results/<name>.md`` and
    ``.csv``, and their copy in docs/results.md."""
    for name, data in MEASURED.items():
        table = RESULTS / f"{name}.csv"
        results = paper_tables.read_csv(table)
        paper_tables.write_csv(results, table)
        (RESULTS / f"{name}.md").write_text(paper_tables.markdown(results, data=data))
        refresh_retired_note(RESULTS / f"{name}.md")
    fill_block(DOCS / "results.md", "measured", measured_section())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "what", choices=("tables", "bsds", "figures", "ablation", "defaults", "relayout")
    )
    parser.add_argument("--runs", default="runs/ablation", help="scripts/ablation.py output")
    parser.add_argument(
        "--set5-set14", nargs="+", default=["../shared/data/eval/set5", "../shared/data/eval/set14"]
    )
    parser.add_argument("--bsds", nargs="+", default=["../shared/data/bsds/test"])
    args = parser.parse_args()
    if args.what == "tables":
        tables(args.set5_set14)
    elif args.what == "bsds":
        bsds(args.bsds)
    elif args.what == "ablation":
        ablation(Path(args.runs))
    elif args.what == "defaults":
        defaults()
    elif args.what == "relayout":
        relayout()
    else:
        figures(args.set5_set14)


if __name__ == "__main__":
    main()
