"""The paper's Tables I–III, measured on your images, with the paper's numbers beside ours.

Hou & Qiu report mean PSNR/SSIM on COCO test images for

* Table I: bit-depth expansion from 1–5 bits to 8 bits, conv1_1 loss;
* Table II: 3-bit expansion with the conv1_1 … conv5_1 losses;
* Table III: inverse halftoning (Floyd–Steinberg) with the conv1_1 … conv5_1 losses.

:func:`plan` lists what to measure (zoo models or checkpoint files, each
expansion model also *in bin*, i.e. with :func:`~napari_compand.degrade.keep_in_bin`,
and the classical baselines of :mod:`napari_compand.evaluation`), :func:`measure`
degrades every image once per degradation and tone (grey and colour) and scores
every method on it, and :func:`markdown` / :func:`write_csv` lay the results out
like the paper's tables.

>>> from napari_compand import paper_tables
>>> methods = paper_tables.plan(task="expand", bits=[3], models=["expand-3bit/conv1_1"])
>>> [m.label for m in methods]
['Eq. 2 as-is', 'mid-bin', 'expand-3bit/conv1_1', 'expand-3bit/conv1_1 in bin']
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import zoo
from .degrade import HALFTONE_BLUR_SIGMA, Degradation, DegradationMode, keep_in_bin
from .evaluation import Scores, baseline, evaluate_many, grey_version, model_restorer
from .inference import RestoreOptions, load_model
from .paper import CLASSIC_GREY_IMAGES, CLASSIC_IMAGES, classic_name, reported
from .vocabulary import Task

__all__ = [
    "TONES",
    "Method",
    "Result",
    "classic_markdown",
    "markdown",
    "measure",
    "plan",
    "read_csv",
    "write_csv",
    "write_per_image_csv",
]

#: Image tones every method is scored on.
TONES = ("grey", "colour")

_HALFTONE = Degradation(DegradationMode.HALFTONE, method="floyd-steinberg")


@dataclass(frozen=True)
class Method:
    """One row of a table: a baseline or a model applied to one degradation."""

    label: str
    degradation: Degradation
    restorer: Callable[[np.ndarray], np.ndarray] | None  # None: read back from a CSV
    loss_layer: str | None = None  # None for baselines
    variant: str = ""  # "", "pixel" (extra pixel loss), ...
    consistent: bool = False

    @property
    def task(self) -> str:
        return Task.from_degradation(self.degradation).value

    @property
    def bits(self) -> int | None:
        return self.degradation.bits if self.task == Task.EXPAND else None

    @property
    def tables(self) -> tuple[str, ...]:
        """Which of Tables I, II, III the row belongs to."""
        if self.task == Task.INVERSE_HALFTONE:
            return ("III",)
        if self.loss_layer is None:  # baselines: in I, and mid-bin also in II
            return ("I", "II") if self.bits == 3 and self.label == "mid-bin" else ("I",)
        if not self.loss_layer.startswith("conv"):  # pixel-loss models: not in the layer study
            return ("I",)
        tables = ()
        if self.loss_layer == "conv1_1" or self.bits != 3:
            tables += ("I",)
        if self.bits == 3:
            tables += ("II",)
        return tables

    @property
    def is_input(self) -> bool:
        """The degraded input itself, scored as it is (the paper's "compressed" and
        "halftone" columns)."""
        return self.loss_layer is None and self.label.endswith("as-is")

    def paper(self, table: str, tone: str) -> tuple[float, float] | None:
        """The paper's (PSNR, SSIM) for this row in ``table`` (``"I"``, ``"II"``,
        ``"III"``) and ``tone``: the network of this task, bits and loss layer, or the
        degraded input for the *as-is* rows; ``None`` where the paper has no such row
        (baselines, pixel losses, in-bin and self-ensemble variants)."""
        if self.is_input:
            row = reported(self.task, self.bits, "conv1_1", tone, table)
            return None if row is None else (row.input_psnr, row.input_ssim)
        ensembled = re.search(r" x\d+( in bin)?$", self.label)
        if self.loss_layer is None or self.consistent or self.variant or ensembled:
            return None
        row = reported(self.task, self.bits, self.loss_layer, tone, table)
        return None if row is None else (row.psnr, row.ssim)


@dataclass(frozen=True)
class Result:
    """Mean scores of one method on one tone."""

    method: Method
    tone: str
    scores: Scores


def plan(
    task: str | None = None,
    bits: Iterable[int] | None = None,
    models: Sequence[str] | None = None,
    *,
    consistent: bool = True,
    self_ensemble: bool | int = False,
    device: str = "auto",
) -> list[Method]:
    """The methods to measure: baselines first, then models, per degradation.

    Parameters
    ----------
    task
        ``expand``, ``inverse-halftone`` or ``None`` (both).
    bits
        Input bit depths for expansion (default 1–5); models of other depths are left out.
    models
        Zoo names or checkpoint files (default: every shipped model of the task).
        Inverse halftoning is scored on Floyd–Steinberg (Table III), so models that
        read a Bayer dither's threshold map are left out.
    consistent
        Also score each expansion model *in bin* (:func:`~napari_compand.degrade.keep_in_bin`).
    self_ensemble
        Also score each model averaged over 8 (``True`` or 8) or 2 views
        (:data:`~napari_compand.vocabulary.ENSEMBLE_VIEWS`; expansion models in bin:
        ``x8 in bin``, ``x2 in bin``; inverse halftoning ``x8``, ``x2``), for that many
        times the time. Rows without it are the network alone.
    device
        Where the networks run.
    """
    if task is not None and task not in {t.value for t in Task}:
        raise ValueError(f"unknown task {task!r}; choose expand or inverse-halftone")
    # restore's own reading of the setting (True: 8, False: 1) and its check
    views = RestoreOptions(self_ensemble=self_ensemble).self_ensemble or 1
    depths = sorted(set(bits or range(1, 6)))
    for depth in depths:
        if not 1 <= depth <= 7:
            raise ValueError(f"bits must be between 1 and 7, got {depth}")
    loaded = [load_model(m) for m in (models or [m.name for m in zoo.shipped()])]
    methods: list[Method] = []
    if task is None or task == Task.EXPAND:
        for depth in depths:
            degradation = Degradation(DegradationMode.QUANTIZE, bits=depth)
            methods += [
                Method("Eq. 2 as-is", degradation, baseline("as-is", degradation)),
                Method("mid-bin", degradation, baseline("midbin", degradation)),
            ]
            for model in loaded:
                if model.task != Task.EXPAND or model.bits != depth:
                    continue
                plain = _last_result(model_restorer(model, device=device))
                methods.append(_model_row(model, "", degradation, plain))
                if consistent:  # the same network output, clamped: no second forward pass
                    methods.append(_model_row(model, " in bin", degradation, _in_bin(plain, depth)))
                if views > 1:
                    ensembled = model_restorer(
                        model, consistent=True, self_ensemble=views, device=device
                    )
                    methods.append(_model_row(model, f" x{views} in bin", degradation, ensembled))
    if task is None or task == Task.INVERSE_HALFTONE:
        methods += [
            Method("halftone as-is", _HALFTONE, baseline("as-is", _HALFTONE)),
            Method(
                f"Gaussian blur (sigma {HALFTONE_BLUR_SIGMA})",
                _HALFTONE,
                baseline("gaussian", _HALFTONE),
            ),
        ]
        for model in loaded:
            # Table III is Floyd–Steinberg; a model that reads a dither's threshold map
            # restores Bayer dithers only (its card scores them)
            if model.task == Task.INVERSE_HALFTONE and not model.network.config.threshold_map:
                restorer = model_restorer(model, device=device)
                methods.append(_model_row(model, "", _HALFTONE, restorer))
                if views > 1:
                    ensembled = model_restorer(model, self_ensemble=views, device=device)
                    methods.append(_model_row(model, f" x{views}", _HALFTONE, ensembled))
    if models and not any(m.loss_layer for m in methods):
        raise ValueError(
            "none of the given models matches the task and bits asked for "
            f"(task {task or 'any'}, bits {', '.join(map(str, depths))}; inverse halftoning "
            "is scored on Floyd–Steinberg, which Bayer-only models cannot restore)"
        )
    return methods


def _model_row(model, suffix: str, degradation: Degradation, restorer) -> Method:
    """The row of ``model`` (a LoadedModel) labelled ``<name><suffix>``; suffixes
    with ``in bin`` mark the consistent variants."""
    return Method(
        model.name + suffix,
        degradation,
        restorer,
        model.loss_layer,
        _variant(model.name),
        consistent="in bin" in suffix,
    )


def _in_bin(restorer, bits: int) -> Callable[[np.ndarray], np.ndarray]:
    """``restorer`` followed by :func:`~napari_compand.degrade.keep_in_bin`."""
    return lambda degraded: keep_in_bin(restorer(degraded), degraded, bits)


def _last_result(
    restorer: Callable[[np.ndarray], np.ndarray],
) -> Callable[[np.ndarray], np.ndarray]:
    """``restorer`` that returns its previous result when called again on the same array."""
    last: list = [None, None]

    def cached(degraded: np.ndarray) -> np.ndarray:
        if last[0] is not degraded:
            last[:] = [degraded, restorer(degraded)]
        return last[1]

    return cached


def _variant(name: str) -> str:
    """``expand-3bit/conv1_1-pixel`` -> ``pixel``; plain names -> ``""``."""
    tail = name.rsplit("/", 1)[-1]
    return tail.split("-", 1)[1] if tail.startswith("conv") and "-" in tail else ""


def measure(
    images: Sequence[np.ndarray],
    methods: Sequence[Method],
    tones: Sequence[str] = TONES,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Degrade each image once per degradation and tone; score every method on it.

    ``images`` are uint8 RGB ``(Y, X, 3)``; the grey tone uses their luminance
    (:func:`~napari_compand.evaluation.grey_version`). ``progress(done, total)``
    is called after each restored image.
    """
    unknown = set(tones) - set(TONES)
    if unknown or not tones:
        raise ValueError(f"tones must be among {TONES}, got {list(tones)}")
    if not images:
        raise ValueError("no images to evaluate")
    groups: dict[Degradation, list[Method]] = {}
    for method in methods:
        groups.setdefault(method.degradation, []).append(method)
    toned = {t: [grey_version(i) for i in images] if t == "grey" else images for t in tones}
    total = len(images) * len(methods) * len(tones)
    finished = 0
    scores: dict[tuple[int, str], Scores] = {}
    for degradation, group in groups.items():
        for tone in tones:

            def forward(done: int, _: int, before: int = finished) -> None:
                if progress is not None:
                    progress(before + done, total)

            restorers = {id(method): method.restorer for method in group}
            found = evaluate_many(toned[tone], degradation, restorers, forward)
            scores.update({(key, tone): value for key, value in found.items()})
            finished += len(images) * len(group)
    return [Result(m, tone, scores[(id(m), tone)]) for m in methods for tone in tones]


_TITLES = {
    "I": "Table I: bit-depth expansion to 8 bits, conv1_1 loss",
    "II": "Table II: 3-bit expansion by loss layer",
    "III": "Table III: inverse halftoning (Floyd–Steinberg) by loss layer",
}


def markdown(results: Sequence[Result], data: str = "") -> str:
    """The results as markdown tables laid out like the paper's Tables I–III.

    Each row is one method: mean PSNR (dB) / SSIM for every tone measured, then the
    paper's PSNR / SSIM on COCO for the same tones (:mod:`napari_compand.paper`; the
    *as-is* rows: the paper's degraded input).
    """
    tones = [t for t in TONES if any(r.tone == t for r in results)]
    by_method: dict[int, dict[str, Scores]] = {}
    order: list[Method] = []
    for result in results:
        if id(result.method) not in by_method:
            order.append(result.method)
        by_method.setdefault(id(result.method), {})[result.tone] = result.scores
    images = results[0].scores.images if results else 0
    blocks = []
    for table, title in _TITLES.items():
        rows = [m for m in order if table in m.tables]
        if table == "I":  # by bit depth, keeping the order within a depth
            rows.sort(key=lambda m: m.bits or 0)
        if not rows:
            continue
        first = "bits" if table == "I" else "loss"
        header = (
            f"| {first} | method | "
            + " | ".join(f"{t} PSNR / SSIM" for t in tones)
            + " | "
            + " | ".join(f"paper {t} (COCO)" for t in tones)
            + " |"
        )
        lines = [f"### {title}", "", header, "|" + "---|" * (2 * len(tones) + 2)]
        for i, method in enumerate(rows):
            key = (
                str(method.bits)
                if table == "I"
                else (method.loss_layer or "–") + (f" + {method.variant}" if method.variant else "")
            )
            cells = [_cell(by_method[id(method)].get(t)) for t in tones]
            cells += [_paper_cell(method.paper(table, t)) for t in tones]
            lines.append(f"| {key} | {method.label} | " + " | ".join(cells) + " |")
            last_of_depth = i + 1 == len(rows) or rows[i + 1].bits != method.bits
            if table == "I" and last_of_depth:
                lines += _unmeasured_paper_row(method, rows, tones)
        blocks.append("\n".join(lines))
    source = f" on {data}" if data else ""
    grey = "Grey: the images' luminance; " if "grey" in tones else ""
    note = (
        f"Mean over {images} images{source}. {grey}colour: PSNR over all RGB values, SSIM "
        "averaged over channels. *in bin*: output clamped into the quantization bin of each "
        "input pixel (Eq. 2); *x2*, *x8*: averaged over that many views (expansion: turns "
        "and flips; inverse halftoning: copies shifted by 1-3 pixels). *paper*: Hou & Qiu's "
        "means over 100 COCO validation images (Tables I and II drew different samples: "
        "3-bit conv1_1 colour is 30.79 dB in one, 32.64 in the other); on an *as-is* row, "
        "their degraded input."
    )
    return "\n\n".join(blocks + [note]) + "\n"


def classic_markdown(results: Sequence[Result], images: Sequence[str]) -> str:
    """The paper's Table IV (colour) and Fig. 8 (grey) beside ours, image by image, for
    the images among ``images`` (file names or stems, in the order :func:`measure` scored
    them) that the paper restored: Koala, Cactus, Bear, Barbara, Shop, Peppers in colour,
    Lenna and Peppers in grey (:func:`napari_compand.paper.classic_name`). Rows: every
    inverse-halftoning method measured; ``""`` when no such image or method is there.
    """
    found = [(i, classic_name(Path(str(name)).stem)) for i, name in enumerate(images)]
    found = [(i, name) for i, name in found if name]
    blocks = []
    for tone, paper_rows, title in (
        ("colour", CLASSIC_IMAGES, "Table IV: inverse halftoning of classic images, colour"),
        ("grey", CLASSIC_GREY_IMAGES, "Fig. 8: inverse halftoning of classic images, grey"),
    ):
        measured = [
            r
            for r in results
            if r.tone == tone and r.method.task == Task.INVERSE_HALFTONE and r.scores.per_image
        ]
        lines = []
        for index, name in found:
            if name not in paper_rows or not measured:
                continue
            theirs = paper_rows[name]
            earlier = {k: v for k, v in theirs.items() if k not in ("CNN inverse", "halftone")}
            best = max(earlier, key=lambda k: earlier[k][0])
            for result in measured:
                psnr_db, ssim_value = result.scores.per_image[index]
                lines.append(
                    f"| {name} | {result.method.label} | {psnr_db:.2f} / {ssim_value:.3f} | "
                    f"{_paper_cell(theirs['CNN inverse'])} | {best} {_paper_cell(theirs[best])} |"
                )
        if lines:
            header = (
                f"| image | method | {tone} PSNR / SSIM | paper's CNN inverse | "
                "paper's best earlier method |"
            )
            blocks.append("\n".join([f"### {title}", "", header, "|---|---|---|---|---|"] + lines))
    if not blocks:
        return ""
    note = (
        "Floyd–Steinberg halftones of the images named as in the paper, restored here and "
        "scored on these files; the paper's copies of these images may differ in size and "
        "crop, so compare with care."
    )
    return "\n\n".join(blocks + [note]) + "\n"


def _paper_cell(paper: tuple[float, float] | None) -> str:
    return "–" if paper is None else f"{paper[0]:.2f} / {paper[1]:.2f}"


def _unmeasured_paper_row(
    method: Method, rows: Sequence[Method], tones: Sequence[str]
) -> list[str]:
    """Table I's line for the paper's conv1_1 U-Net at ``method``'s depth when none of
    ``rows`` of that depth carries its figure (that zoo model was retired or not asked
    for): the paper's numbers, nothing measured; else no line."""
    found = [reported(method.task, method.bits, "conv1_1", t, "I") for t in tones]
    same_depth = [r for r in rows if r.bits == method.bits and not r.is_input]
    if not any(found) or any(r.paper("I", t) for r in same_depth for t in tones):
        return []
    measured = " | ".join(["–"] * len(tones))
    paper = " | ".join(_paper_cell(None if f is None else (f.psnr, f.ssim)) for f in found)
    return [f"| {method.bits} | the paper's U-Net, conv1_1 (not measured) | {measured} | {paper} |"]


def _cell(scores: Scores | None) -> str:
    return "–" if scores is None else f"{scores.psnr:.2f} / {scores.ssim:.3f}"


def write_csv(results: Sequence[Result], path: str | Path) -> Path:
    """One line per method and tone, with the paper's numbers for that tone where it has
    them (for a row of two tables, those of the first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "tables",
                "task",
                "bits",
                "method",
                "loss_layer",
                "in_bin",
                "tone",
                "psnr_db",
                "ssim",
                "images",
                "paper_psnr_db",
                "paper_ssim",
            ]
        )
        for r in results:
            m = r.method
            paper = m.paper(m.tables[0], r.tone) or (None, None)
            writer.writerow(
                [
                    "+".join(m.tables),
                    m.task,
                    m.bits if m.bits is not None else "",
                    m.label,
                    m.loss_layer or "",
                    int(m.consistent),
                    r.tone,
                    r.scores.psnr,  # full precision: read_csv gives the same tables back
                    r.scores.ssim,
                    r.scores.images,
                    "" if paper[0] is None else paper[0],
                    "" if paper[1] is None else paper[1],
                ]
            )
    return path


def write_per_image_csv(results: Sequence[Result], images: Sequence[str], path: str | Path) -> Path:
    """Every image's PSNR/SSIM: one line per image, method and tone.

    ``images`` names the images in the order :func:`measure` scored them (for example
    their file paths); the mean of a method's lines is its score in :func:`write_csv`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "task", "bits", "method", "in_bin", "tone", "psnr_db", "ssim"])
        for r in results:
            if len(r.scores.per_image) != len(images):
                raise ValueError(
                    f"{r.method.label} ({r.tone}) has {len(r.scores.per_image)} per-image "
                    f"scores for {len(images)} images"
                )
            m = r.method
            for image, (psnr_db, ssim_value) in zip(images, r.scores.per_image, strict=True):
                writer.writerow(
                    [
                        image,
                        m.task,
                        m.bits if m.bits is not None else "",
                        m.label,
                        int(m.consistent),
                        r.tone,
                        psnr_db,
                        ssim_value,
                    ]
                )
    return path


def read_csv(path: str | Path) -> list[Result]:
    """Results written by :func:`write_csv`, e.g. to lay them out again with :func:`markdown`.

    The methods come back without their restorers (they cannot be measured again).
    """
    methods: dict[tuple[str, str, str], Method] = {}
    results = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["method"], row["task"], row["bits"])  # baselines repeat per depth
            if key not in methods:
                degradation = (
                    Degradation(DegradationMode.QUANTIZE, bits=int(row["bits"]))
                    if row["task"] == Task.EXPAND
                    else _HALFTONE
                )
                methods[key] = Method(
                    row["method"],
                    degradation,
                    None,
                    row["loss_layer"] or None,
                    _variant(re.sub(r"( x\d+)?( in bin)?$", "", row["method"])),
                    row["in_bin"] == "1",
                )
            scores = Scores(float(row["psnr_db"]), float(row["ssim"]), int(row["images"]))
            results.append(Result(methods[key], row["tone"], scores))
    return results
