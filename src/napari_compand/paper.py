"""What Hou & Qiu report: the numbers of the paper's Tables I–IV and Fig. 8.

Tables I–III are means over 100 COCO validation images (Table I and Table II drew
different samples: they disagree on 3-bit conv1_1 colour, 30.79 against 32.64 dB);
Table IV and Fig. 8 are single classic images. Each row holds the network's output
and the degraded input it restored ("compressed" / "halftone").

:func:`reported` finds the row for a task, bit depth, loss layer and tone; the
tables of :mod:`napari_compand.paper_tables`, ``napari-compand eval``, the model
cards and ``docs/results.md`` read the paper's numbers from here.

>>> from napari_compand import paper
>>> paper.reported("expand", 3, "conv1_1", "grey")
Reported(psnr=31.33, ssim=0.87, input_psnr=23.16, input_ssim=0.78)
>>> paper.reported("expand", 3, "conv1_1", "grey", table="II").psnr
32.57
>>> paper.CLASSIC_IMAGES["barbara"]["CNN inverse"]
(31.79, 0.92)
"""

from __future__ import annotations

from dataclasses import dataclass

from .vocabulary import Task

__all__ = [
    "CLASSIC_GREY_IMAGES",
    "CLASSIC_IMAGES",
    "LOSS_LAYERS",
    "TABLE_I",
    "TABLE_II",
    "TABLE_III",
    "Reported",
    "classic_name",
    "reported",
    "reported_for_model",
]

#: The VGG19 layers of the paper's loss study (Tables II and III).
LOSS_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


@dataclass(frozen=True)
class Reported:
    """One row of the paper: mean PSNR (dB) and SSIM of the network's output and of
    the degraded input."""

    psnr: float
    ssim: float
    input_psnr: float
    input_ssim: float


#: Table I, companding (bit-depth expansion to 8 bits), conv1_1 loss: by (bits, tone).
TABLE_I: dict[tuple[int, str], Reported] = {
    (1, "colour"): Reported(18.67, 0.55, 11.73, 0.40),
    (1, "grey"): Reported(18.81, 0.49, 11.58, 0.35),
    (2, "colour"): Reported(25.65, 0.81, 17.37, 0.67),
    (2, "grey"): Reported(25.84, 0.74, 17.29, 0.61),
    (3, "colour"): Reported(30.79, 0.90, 23.13, 0.85),
    (3, "grey"): Reported(31.33, 0.87, 23.16, 0.78),
    (4, "colour"): Reported(34.52, 0.95, 29.03, 0.94),
    (4, "grey"): Reported(36.69, 0.94, 29.19, 0.90),
    (5, "colour"): Reported(37.59, 0.97, 34.85, 0.98),
    (5, "grey"): Reported(40.24, 0.97, 35.08, 0.96),
}

#: Table II, 3-bit companding with the loss on each layer: by (loss layer, tone).
TABLE_II: dict[tuple[str, str], Reported] = {
    ("conv1_1", "colour"): Reported(32.64, 0.93, 23.13, 0.85),
    ("conv1_1", "grey"): Reported(32.57, 0.91, 23.16, 0.78),
    ("conv2_1", "colour"): Reported(30.00, 0.88, 23.13, 0.85),
    ("conv2_1", "grey"): Reported(30.74, 0.85, 23.16, 0.78),
    ("conv3_1", "colour"): Reported(28.17, 0.87, 23.13, 0.85),
    ("conv3_1", "grey"): Reported(29.60, 0.81, 23.16, 0.78),
    ("conv4_1", "colour"): Reported(25.74, 0.84, 23.13, 0.85),
    ("conv4_1", "grey"): Reported(29.54, 0.82, 23.16, 0.78),
    ("conv5_1", "colour"): Reported(25.43, 0.87, 23.13, 0.85),
    ("conv5_1", "grey"): Reported(27.50, 0.77, 23.16, 0.78),
}

#: Table III, inverse halftoning (Floyd–Steinberg) with the loss on each layer: by
#: (loss layer, tone).
TABLE_III: dict[tuple[str, str], Reported] = {
    ("conv1_1", "colour"): Reported(31.43, 0.91, 8.08, 0.20),
    ("conv1_1", "grey"): Reported(31.36, 0.90, 7.92, 0.14),
    ("conv2_1", "colour"): Reported(20.98, 0.59, 8.08, 0.20),
    ("conv2_1", "grey"): Reported(23.98, 0.67, 7.92, 0.14),
    ("conv3_1", "colour"): Reported(24.05, 0.73, 8.08, 0.20),
    ("conv3_1", "grey"): Reported(27.44, 0.74, 7.92, 0.14),
    ("conv4_1", "colour"): Reported(26.48, 0.85, 8.08, 0.20),
    ("conv4_1", "grey"): Reported(27.82, 0.76, 7.92, 0.14),
    ("conv5_1", "colour"): Reported(25.47, 0.84, 8.08, 0.20),
    ("conv5_1", "grey"): Reported(26.48, 0.69, 7.92, 0.14),
}

#: Table IV, inverse halftoning of colour classic images (Floyd–Steinberg), PSNR (dB) and
#: SSIM of each method: by image, then method ("CNN inverse" is the paper's network).
CLASSIC_IMAGES: dict[str, dict[str, tuple[float, float]]] = {
    "koala": {
        "ALF": (22.36, 0.66),
        "MAP": (23.33, 0.74),
        "LPA-ICI": (24.17, 0.76),
        "GLDP": (24.58, 0.78),
        "LLDO": (25.01, 0.80),
        "CNN inverse": (27.63, 0.89),
    },
    "cactus": {
        "ALF": (22.99, 0.64),
        "MAP": (23.95, 0.77),
        "LPA-ICI": (25.04, 0.79),
        "GLDP": (25.40, 0.81),
        "LLDO": (25.55, 0.82),
        "CNN inverse": (27.69, 0.92),
    },
    "bear": {
        "ALF": (21.82, 0.62),
        "MAP": (22.63, 0.72),
        "LPA-ICI": (23.14, 0.72),
        "GLDP": (23.66, 0.77),
        "LLDO": (24.17, 0.78),
        "CNN inverse": (26.35, 0.89),
    },
    "barbara": {
        "ALF": (25.41, 0.71),
        "MAP": (26.24, 0.78),
        "LPA-ICI": (27.88, 0.83),
        "GLDP": (27.12, 0.80),
        "LLDO": (28.48, 0.85),
        "CNN inverse": (31.79, 0.92),
    },
    "shop": {
        "ALF": (22.14, 0.64),
        "MAP": (22.46, 0.69),
        "LPA-ICI": (24.12, 0.77),
        "GLDP": (23.86, 0.75),
        "LLDO": (24.61, 0.80),
        "CNN inverse": (27.27, 0.89),
    },
    "peppers": {
        "ALF": (30.92, 0.87),
        "MAP": (28.25, 0.77),
        "LPA-ICI": (30.70, 0.87),
        "GLDP": (30.92, 0.87),
        "LLDO": (31.07, 0.87),
        "CNN inverse": (31.44, 0.89),
    },
}

#: Fig. 8, inverse halftoning of grey classic images (Floyd–Steinberg), PSNR (dB) and SSIM
#: of each method, the halftone itself included: by image, then method.
CLASSIC_GREY_IMAGES: dict[str, dict[str, tuple[float, float]]] = {
    "lenna": {
        "halftone": (6.71, 0.40),
        "Fastiht2": (31.37, 0.85),
        "WInHD": (31.77, 0.86),
        "CNN inverse": (33.85, 0.90),
    },
    "peppers": {
        "halftone": (6.93, 0.05),
        "Fastiht2": (31.46, 0.83),
        "WInHD": (31.05, 0.84),
        "CNN inverse": (33.22, 0.87),
    },
}

#: Other spellings of the classic images' names (Set14 ships ``lenna.png``, ``pepper.png``).
_ALIASES = {"lena": "lenna", "pepper": "peppers"}


def classic_name(stem: str) -> str | None:
    """The paper's name for the image file stem ``stem`` (``"Pepper"`` -> ``"peppers"``)
    if Table IV or Fig. 8 reports on it, else ``None``."""
    name = stem.strip().lower()
    name = _ALIASES.get(name, name)
    return name if name in CLASSIC_IMAGES or name in CLASSIC_GREY_IMAGES else None


def reported(
    task: str,
    bits: int | None,
    loss_layer: str | None,
    tone: str = "colour",
    table: str | None = None,
) -> Reported | None:
    """The paper's row for ``task`` (``expand`` at ``bits``, or ``inverse-halftone``),
    the VGG19 ``loss_layer`` and ``tone`` (``colour`` or ``grey``), or ``None`` where the
    paper has none (other depths or losses, a pixel loss).

    ``table`` picks Table I or II for 3-bit conv1_1, which both report (on different
    samples); by default Table I for conv1_1 and Table II for the other layers.
    """
    if tone not in ("colour", "grey"):
        raise ValueError(f"tone must be 'colour' or 'grey', got {tone!r}")
    if table not in (None, "I", "II", "III"):
        raise ValueError(f"table must be 'I', 'II' or 'III', got {table!r}")
    if task == Task.INVERSE_HALFTONE:
        return TABLE_III.get((loss_layer, tone)) if table in (None, "III") else None
    if task != Task.EXPAND:
        raise ValueError(f"unknown task {task!r}; choose expand or inverse-halftone")
    if table == "II" or (table is None and loss_layer != "conv1_1"):
        return TABLE_II.get((loss_layer, tone)) if bits == 3 else None
    if table == "III" or loss_layer != "conv1_1" or bits is None:
        return None
    return TABLE_I.get((bits, tone))


def reported_for_model(
    metadata: dict, tone: str = "colour", table: str | None = None
) -> Reported | None:
    """The paper's row for a checkpoint's ``metadata`` (:mod:`napari_compand.checkpoints`):
    only a paper U-Net trained with a VGG19 loss alone is the paper's model; any other
    network or a pixel term gives ``None``.

    >>> reported_for_model({"task": "inverse-halftone", "loss_layer": "conv1_1",
    ...     "architecture": {"arch": "unet"}, "recipe": {"pixel_weight": 0.0}}).psnr
    31.43
    >>> reported_for_model({"task": "expand", "bits": 3, "loss_layer": "conv1_1",
    ...     "architecture": {"arch": "resunet"}, "recipe": {"pixel_weight": 1.0}}) is None
    True
    """
    if metadata.get("architecture", {}).get("arch", "unet") != "unet":
        return None
    if metadata.get("recipe", {}).get("pixel_weight"):
        return None
    layer = metadata.get("loss_layer")
    if layer not in LOSS_LAYERS:
        return None
    return reported(metadata["task"], metadata.get("bits"), layer, tone, table)
