"""The model zoo: pretrained checkpoints shipped in the package, and session models.

Shipped models live in ``napari_compand/zoo/weights`` (package data, fp16
safetensors, the paper's U-Nets int8, with JSON metadata: task, bits, loss layer,
architecture, training recipe and evaluation). They are named ``<task>/<loss layer>``:

>>> from napari_compand import zoo
>>> "inverse-halftone/conv1_1" in zoo.names()
True
>>> zoo.get("expand-3bit/conv1_1").bits
3

A colour model may have a grey-only partner, ``<name>-grey``, that restores the
grey images given to it (see :func:`grey_partner`).

Models trained in this Python session (e.g. by the napari Train widget) are
registered with :func:`register_session_model` and named ``session/<file stem>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..vocabulary import Task

__all__ = [
    "ZooModel",
    "default_model",
    "default_model_for",
    "get",
    "grey_partner",
    "models",
    "names",
    "on_session_model_added",
    "path_of",
    "register_session_model",
    "retired_note",
    "session_models",
    "shipped",
]


@dataclass(frozen=True)
class ZooModel:
    """A checkpoint of the zoo and what its metadata says about it."""

    name: str
    path: Path
    metadata: dict[str, Any]

    @property
    def task(self) -> str:
        """``expand`` or ``inverse-halftone``."""
        return self.metadata["task"]

    @property
    def bits(self) -> int | None:
        """Input bit depth of an expansion model (``None`` for inverse halftoning)."""
        return self.metadata.get("bits") if self.task == Task.EXPAND else None

    @property
    def loss_layer(self) -> str:
        """VGG19 layer of the perceptual loss it was trained with."""
        return self.metadata["loss_layer"]

    @property
    def loss(self) -> str:
        """The training loss in words, e.g. ``conv1_1``, ``conv1_1 + 1e+05 x mse``, ``mse``."""
        if "loss" in self.metadata:
            return self.metadata["loss"]
        pixel = self.metadata.get("recipe", {}).get("pixel_weight")
        return self.loss_layer + (f" + {pixel:g} x mse" if pixel else "")

    @property
    def arch(self) -> str:
        """``unet`` (the paper's) or ``resunet``."""
        return self.metadata.get("architecture", {}).get("arch", "unet")

    @property
    def evaluation(self) -> dict[str, Any]:
        """Recorded PSNR/SSIM on evaluation sets, with the classical baseline."""
        return self.metadata.get("evaluation", {})

    @property
    def summary(self) -> str:
        """One line: name, task and the headline evaluation."""
        what = f"{self.bits}-bit -> 8-bit" if self.task == Task.EXPAND else "inverse halftoning"
        scores = self.evaluation.get("set5+set14")
        score = f", Set5+Set14 {scores['psnr']:.2f} dB / {scores['ssim']:.3f}" if scores else ""
        return f"{self.name}: {what}, {self.arch}, {self.loss} loss{score}"


def _read_metadata(path: Path) -> dict[str, Any]:
    """The file's checked metadata, read once per file version (see ``file_version``)."""
    from ..checkpoints import file_version

    return _metadata_of_version(path, file_version(path))


@cache
def _metadata_of_version(path: Path, _version: tuple) -> dict[str, Any]:
    from ..checkpoints import read_metadata

    return read_metadata(path)


@cache
def _shipped() -> dict[str, ZooModel]:
    folder = resources.files(__name__) / "weights"
    found: dict[str, ZooModel] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if entry.name.endswith(".safetensors"):
            path = Path(str(entry))
            metadata = _read_metadata(path)
            name = metadata.get("zoo_name", path.stem.replace("__", "/"))
            found[name] = ZooModel(name, path, metadata)
    # by task, bits and loss layer; a plain model before its variants (resunet, resunet-grey)
    order = sorted(found.values(), key=lambda m: (m.task, m.bits or 0, m.loss_layer, m.name))
    return {m.name: m for m in order}


def shipped() -> list[ZooModel]:
    """The pretrained models inside the package."""
    return list(_shipped().values())


def models() -> list[ZooModel]:
    """Shipped models, then this session's, in name order within each group."""
    session = [ZooModel(_session_name(p), p, _read_metadata(p)) for p in _SESSION]
    return list(_shipped().values()) + session


def names() -> list[str]:
    """Names accepted by :func:`get` and :func:`napari_compand.inference.restore`."""
    return list(_shipped()) + [_session_name(p) for p in _SESSION]


def get(name: str) -> ZooModel:
    """The zoo model called ``name``.

    Raises
    ------
    KeyError
        With the list of valid names, if there is no such model.
    """
    for model in models():
        if model.name == name:
            return model
    raise KeyError(
        f"no model {name!r} in the zoo; {retired_note(name)}available: {', '.join(names())}"
    )


#: Models that shipped once and no longer do, each with the shipped model that superseded it
#: (it scores higher on the same inputs; docs/results.md has both). They were retired to keep
#: the wheel under 100 MB with every current default in it.
RETIRED = {
    "expand-1bit/conv1_1-pixel": "expand-1bit/resunet",
    "expand-2bit/conv1_1-pixel": "expand-2bit/resunet",
    "expand-3bit/conv1_1-pixel": "expand-3bit/resunet",
    "inverse-halftone/conv1_1-pixel": "inverse-halftone/resunet",
    "expand-2bit/resunet-grey": "expand-2bit/resunet",
    "expand-3bit/resunet-grey": "expand-3bit/resunet",
    "expand-4bit/conv1_1": "expand-4bit/resunet",
}


def retired_note(name: str) -> str:
    """``"'<name>' was retired; use '<successor>' (it scores higher). "`` for a retired zoo
    model (:data:`RETIRED`, none of which ships), else ``""``: the start of an error message.

    >>> retired_note("expand-2bit/conv1_1-pixel")[:54]
    "'expand-2bit/conv1_1-pixel' was retired from the zoo; "
    """
    successor = RETIRED.get(name)
    if successor is None:
        return ""
    return f"{name!r} was retired from the zoo; use {successor!r} (it scores higher). "


def path_of(name: str) -> Path | None:
    """Checkpoint file of zoo model ``name``, or ``None`` if it is not a zoo name."""
    if name in _shipped():
        return _shipped()[name].path
    for path in _SESSION:
        if _session_name(path) == name:
            return path
    return None


#: Variants tried in order by :func:`default_model`.
DEFAULT_VARIANTS = ("resunet", "conv1_1")


#: The model for halftones other than raster Floyd–Steinberg (when their method is known),
#: unless the Floyd–Steinberg default scored better on that halftone.
MIXED_HALFTONE_VARIANT = "resunet-mix"

#: The evaluation set whose stored per-halftone scores :func:`default_model` compares.
HALFTONE_SCORES = "set5+set14 halftones"


def _halftone_psnr(name: str, halftone: Any) -> float:
    """``name``'s stored Set5 + Set14 colour PSNR on ``halftone``; -inf if not scored."""
    scores = get(name).evaluation.get(HALFTONE_SCORES, {}).get(halftone.label)
    return scores["psnr"] if scores else float("-inf")


def default_model_for(degradation: Any) -> str:
    """:func:`default_model` for inputs made by ``degradation`` (a
    :class:`~napari_compand.degrade.Degradation`): the expansion default for its bits, or
    the inverse-halftoning model that restores its halftone best.

    >>> from napari_compand.degrade import Degradation
    >>> default_model_for(Degradation("quantize", bits=3))
    'expand-3bit/resunet'
    """
    task = Task.from_degradation(degradation)
    if task is Task.EXPAND:
        return default_model(task, degradation.bits)
    return default_model(task, halftone=degradation)


def default_model(task: str, bits: int | None = None, halftone: Any = None) -> str:
    """The best shipped model for ``task`` (and ``bits`` for ``expand``).

    That is the first of :data:`DEFAULT_VARIANTS` the zoo has: ``resunet``
    (the full-resolution network with a PSNR-oriented loss), then the paper's
    U-Net with the ``conv1_1`` loss. For inverse halftoning that is ``inverse-halftone/resunet``,
    trained on raster Floyd–Steinberg halftones, the common kind, on which it
    scores above the ten-halftone ``resunet-mix`` (the same network; see the model
    cards).

    ``halftone`` is the :class:`~napari_compand.degrade.Degradation` of an
    inverse-halftoning input when it is known (layer metadata, or the Bayer dither or
    error-diffusion kernel that :func:`~napari_compand.degrade.detect_degradation`
    recognised in its pixels). For any other
    halftone than raster Floyd–Steinberg, the default is the shipped
    inverse-halftoning model that scored highest on it (the Set5 + Set14 scores
    on :data:`HALFTONE_SCORES` stored at packaging; models without one for that
    halftone do not compete): ``resunet-mix`` for most other halftones, because the
    Floyd–Steinberg models fall below a plain blur on Jarvis–Judice–Ninke, Stucki,
    Sierra and Atkinson halftones, and specialists such as ``resunet-ordered``
    (Bayer dithers) where they ship.

    Raises
    ------
    KeyError
        If the zoo has no such model.
    """
    task = Task(task)
    if task is Task.EXPAND and bits is None:
        raise KeyError("the default expansion model depends on the input bits; give bits")
    names = [task.model_name(variant, bits) for variant in DEFAULT_VARIANTS]
    default = next((name for name in names if name in _shipped()), None)
    floyd_steinberg = ("floyd-steinberg", False)
    if (
        task is Task.INVERSE_HALFTONE
        and halftone is not None
        and (halftone.method, bool(halftone.serpentine)) != floyd_steinberg
    ):
        scored = [
            name
            for name in _shipped()
            if name.startswith(task.value + "/") and _halftone_psnr(name, halftone) > -math.inf
        ]
        if default is not None:
            scored.append(default)  # it competes (and wins ties) even if not scored
        elif (mixed := task.model_name(MIXED_HALFTONE_VARIANT)) in _shipped():
            scored.append(mixed)
        if scored:
            return max(reversed(scored), key=lambda name: _halftone_psnr(name, halftone))
    if default is not None:
        return default
    raise KeyError(
        f"the zoo has no model for {task.value}"
        + (f" from {bits} bits" if bits else "")
        + f"; available: {', '.join(_shipped())}"
    )


#: Suffix of the grey-only partner of a colour model (see :func:`grey_partner`).
GREY_SUFFIX = "-grey"


def grey_partner(name: str) -> str | None:
    """The shipped grey-only model that restores grey images for colour model ``name``.

    That is ``<name>-grey`` when the zoo ships it: a network with one input
    channel, warm-started from ``name`` and trained on grey images only.
    :func:`napari_compand.inference.restore` sends grey images (and grey +
    alpha) through it unless ``grey_partner=False``; colour images always go
    through ``name``.

    >>> grey_partner("expand-7bit/resunet")
    'expand-7bit/resunet-grey'
    """
    partner = name + GREY_SUFFIX
    shipped = _shipped()
    if name in shipped and partner in shipped:
        return partner
    return None


# -- models trained in this session ---------------------------------------------

_SESSION: list[Path] = []
_LISTENERS: list[Callable[[Path], None]] = []


def _session_name(path: Path) -> str:
    """``session/<stem>``, with ``-2``, ``-3`` ... for later files of the same stem."""
    same = [p for p in _SESSION if p.stem == path.stem]
    position = same.index(path) + 1 if path in same else len(same) + 1
    return f"session/{path.stem}" + (f"-{position}" if position > 1 else "")


def register_session_model(path: str | Path) -> None:
    """Make a checkpoint trained in this session available to restore tools."""
    path = Path(path).resolve()
    if path not in _SESSION:
        _SESSION.append(path)
        for listener in list(_LISTENERS):
            listener(path)


def session_models() -> list[Path]:
    """Checkpoints registered in this session, oldest first."""
    return list(_SESSION)


def on_session_model_added(callback: Callable[[Path], None]) -> Callable[[], None]:
    """Call ``callback(path)`` whenever a model is registered; returns a disconnect function.

    Widgets disconnect when they are closed, so a closed widget is never called.
    """
    _LISTENERS.append(callback)

    def disconnect() -> None:
        if callback in _LISTENERS:
            _LISTENERS.remove(callback)

    return disconnect
