"""Checkpoints: safetensors files with JSON metadata; data only, never code.

Layout of a file:

* tensors ``model.<name>``: the network's state dict;
* tensors ``optim.<param index>.<exp_avg|exp_avg_sq|step>``: Adam's state, only in
  checkpoints meant for resuming (dropped by :func:`export_weights`);
* in files stored as int8 (metadata ``"dtype": "int8"``, :func:`quantize_weights`): each
  weight of two or more dimensions as ``model.<name>`` int8 ``q`` with ``scale.<name>``,
  one float32 scale ``s`` per output row, read back as ``w = q * s``;
* metadata key ``napari_compand``: a JSON object with ``format``,
  ``format_version``, ``package_version``, ``task``, ``bits`` or
  ``halftone_method``, ``loss_layer``, ``architecture`` (the model config),
  ``recipe`` (the full training config), ``data``, ``iterations_done``,
  ``validation`` (history of PSNR/SSIM), ``init`` (warm start source) and, for
  resumable files, ``optimizer_param_groups``.

Loading never unpickles anything; a corrupt, truncated or foreign file raises
:class:`CheckpointError` with a message naming the file and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ._io import OutputError, _refuse_inputs, write_atomic
from .models import ModelConfig, Restorer, build_model

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "average_weights",
    "export_weights",
    "file_version",
    "load_checkpoint",
    "quantize_weights",
    "read_metadata",
    "save_checkpoint",
]

FORMAT = "napari-compand-checkpoint"
FORMAT_VERSION = 1
_KEY = "napari_compand"


class CheckpointError(ValueError):
    """A file is not a readable napari-compand checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: metadata, model weights and (maybe) optimizer state."""

    path: Path
    metadata: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def model_config(self) -> ModelConfig:
        """The architecture recorded in the file."""
        return ModelConfig(**self.metadata["architecture"])

    def build_model(self) -> Restorer:
        """The network with the file's weights, in eval mode."""
        model = build_model(self.model_config)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as err:
            raise CheckpointError(
                f"{self.path}: weights do not fit the recorded architecture: {err}"
            ) from err
        return model.eval()


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    metadata: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    int8: bool = False,
) -> Path:
    """Write ``model`` (and ``optimizer`` state) with ``metadata``, atomically.

    The file is written next to ``path`` and renamed into place, so a crash or
    stop while saving never leaves a truncated checkpoint behind. ``int8`` stores every
    weight of two or more dimensions as int8 with one scale per output row
    (:func:`int8_rows`; a quarter of float32's size, half of float16's) and sets the
    metadata's ``dtype`` to ``"int8"``.
    """
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    if int8:
        if optimizer is not None:
            raise CheckpointError("an int8 file holds weights only, not a resumable run")
        for key, value in list(tensors.items()):
            if value.is_floating_point() and value.ndim >= 2:
                name = key[len("model.") :]
                tensors[key], tensors[f"scale.{name}"] = int8_rows(value)
        meta["dtype"] = "int8"
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, values in state["state"].items():
            for name, value in values.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{index}.{name}"] = tensor.detach().cpu().contiguous()
        meta["optimizer_param_groups"] = state["param_groups"]
    return write_atomic(
        path, lambda temporary: save_file(tensors, temporary, metadata={_KEY: json.dumps(meta)})
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Everything is checked before tensors are read: the metadata is a JSON object
    of this format with a valid architecture, and the file's tensors have exactly
    the names, shapes and (floating) dtypes of that architecture, so a file that
    declares a huge network cannot allocate it. Weights must be finite.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file is corrupt, truncated, not safetensors, not ours, or its
        metadata or tensors do not describe a working model; the message names
        the file.
    """
    path = Path(path)
    header, layout = _read_header(path)
    metadata = _metadata(path, header)
    config = _architecture(path, metadata)
    _check_layout(path, config, layout)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:
        raise CheckpointError(f"{path}: could not read its tensors: {err}") from err
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    for key, scale in tensors.items():
        if key.startswith("scale."):
            name = key[len("scale.") :]
            model_state[name] = from_int8_rows(model_state[name], scale)
    bad = [k for k, v in model_state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"{path}: weights contain NaN or infinite values ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); the run that wrote it diverged"
        )
    optimizer_state = None
    if "optimizer_param_groups" in metadata:
        groups = metadata.pop("optimizer_param_groups")
        state: dict[int, dict[str, torch.Tensor]] = {}
        try:
            for key, value in tensors.items():
                if key.startswith("optim."):
                    _, index, name = key.split(".", 2)
                    state.setdefault(int(index), {})[name] = value
        except ValueError as err:
            raise CheckpointError(f"{path}: malformed optimizer tensor names: {err}") from err
        if not isinstance(groups, list):
            raise CheckpointError(f"{path}: optimizer_param_groups must be a list")
        optimizer_state = {"state": state, "param_groups": groups}
    return Checkpoint(path, metadata, model_state, optimizer_state)


def file_version(path: str | Path) -> tuple[str, int, int, int, int]:
    """What identifies one version of a file for caches: resolved path, device,
    inode, size and modification time in nanoseconds (a file replaced by another
    within the same second still gets a new key)."""
    path = Path(path)
    info = path.stat()
    return (str(path.resolve()), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked metadata of a checkpoint, without reading its tensors.

    Raises
    ------
    FileNotFoundError, CheckpointError
        As :func:`load_checkpoint`.
    """
    path = Path(path)
    header, _ = _read_header(path)
    metadata = _metadata(path, header)
    _architecture(path, metadata)
    metadata.pop("optimizer_param_groups", None)
    return metadata


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[tuple[int, ...], str]]]:
    """The file's metadata strings and each tensor's ``(shape, dtype)``; no tensor data."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            layout = {key: _layout(handle, key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:  # SafetensorError, OSError, ...
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (corrupt or truncated?): {err}"
        ) from err
    return header, layout


#: Metadata entries that must be text when present.
_TEXT_FIELDS = ("zoo_name", "task", "loss_layer", "loss", "halftone_method", "package_version")
#: Metadata entries that must be JSON objects when present.
_OBJECT_FIELDS = ("recipe", "evaluation")


def _metadata(path: Path, header: dict[str, str]) -> dict[str, Any]:
    """The parsed ``napari_compand`` metadata entry, checked field by field."""
    if _KEY not in header:
        raise CheckpointError(f"{path} is a safetensors file but not a napari-compand checkpoint")
    try:
        metadata = json.loads(header[_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"{path}: checkpoint metadata must be a JSON object, got {type(metadata).__name__}"
        )
    if metadata.get("format") != FORMAT or "architecture" not in metadata:
        raise CheckpointError(f"{path}: metadata does not describe a napari-compand model")
    version = metadata.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer napari-compand (format {version}); upgrade the package"
        )
    for name in _TEXT_FIELDS:
        if name in metadata and not isinstance(metadata[name], str):
            raise CheckpointError(f"{path}: metadata {name!r} must be text, got {metadata[name]!r}")
    for name in _OBJECT_FIELDS:
        if name in metadata and not isinstance(metadata[name], dict):
            raise CheckpointError(f"{path}: metadata {name!r} must be a JSON object")
    bits = metadata.get("bits")
    if bits is not None and (
        not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 15
    ):
        raise CheckpointError(f"{path}: metadata 'bits' must be an integer 1-15, got {bits!r}")
    return metadata


def _architecture(path: Path, metadata: dict[str, Any]) -> ModelConfig:
    architecture = metadata["architecture"]
    if not isinstance(architecture, dict):
        raise CheckpointError(f"{path}: metadata 'architecture' must be a JSON object")
    try:
        return ModelConfig(**architecture)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid architecture in its metadata: {err}") from err


def _layout(handle, key: str) -> tuple[tuple[int, ...], str]:
    view = handle.get_slice(key)
    return tuple(view.get_shape()), view.get_dtype()


_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


def _check_layout(
    path: Path, config: ModelConfig, layout: dict[str, tuple[tuple[int, ...], str]]
) -> None:
    """The file's ``model.*`` tensors against the declared architecture, built on
    the ``meta`` device (no memory): same names, shapes, and float dtypes where the
    network has floats."""
    with torch.device("meta"):
        expected = build_model(config).state_dict()
    stored = {k[len("model.") :]: v for k, v in layout.items() if k.startswith("model.")}
    scales = {k[len("scale.") :]: v for k, v in layout.items() if k.startswith("scale.")}
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    if missing or extra:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise CheckpointError(
            f"{path}: its weights do not fit the architecture in its metadata ({detail})"
        )
    for name, tensor in expected.items():
        shape, dtype = stored[name]
        if shape != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: weight {name} has shape {shape}, the declared architecture needs "
                f"{tuple(tensor.shape)}"
            )
        if name in scales:
            if dtype != "I8" or scales[name] != ((shape[0],), "F32") or len(shape) < 2:
                raise CheckpointError(
                    f"{path}: weight {name} has a scale but is not an int8 tensor of two or "
                    f"more dimensions with one float32 scale per row ({dtype} {shape}, "
                    f"scale {scales[name]})"
                )
        elif tensor.is_floating_point() and dtype not in _FLOAT_DTYPES:
            raise CheckpointError(
                f"{path}: weight {name} is stored as {dtype}; weights must be floating point"
            )
    stray = sorted(set(scales) - set(expected))
    if stray:
        raise CheckpointError(f"{path}: scales of no weight of the architecture ({stray[:3]})")


def export_weights(
    source: str | Path,
    target: str | Path,
    half: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Copy a checkpoint without its optimizer state (for shipping); ``half`` stores fp16;
    ``metadata`` entries are added to (or replace) the source's.

    Raises
    ------
    CheckpointError
        If ``target`` is ``source`` itself (a checkpoint is never written over).
    """
    _refuse_source_as_target([source], target)
    checkpoint = load_checkpoint(source)
    record = {**checkpoint.metadata, **(metadata or {})}
    return _save_weights_only(target, checkpoint.build_model(), record, half)


def quantize_weights(source: str | Path, target: str | Path) -> Path:
    """Copy a checkpoint's weights (no optimizer state) as int8 with one scale per output
    row (:func:`int8_rows`): a 1.58 M-parameter network takes 1.6 MB instead of 3.2 MB as
    float16. The network's outputs change a little (measure them: ``scripts/package_zoo.py
    --int8`` re-scores a zoo model); biases and normalisation stay as they are.

    Raises
    ------
    CheckpointError
        If ``target`` is ``source`` itself (a checkpoint is never written over).
    """
    _refuse_source_as_target([source], target)
    checkpoint = load_checkpoint(source)
    half = checkpoint.metadata.get("dtype") == "float16"
    return _save_weights_only(target, checkpoint.build_model(), checkpoint.metadata, half, True)


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric int8 quantisation with one scale per row (first dimension).

    For row :math:`i` of :math:`W` (flattened), :math:`s_i = \max_j |W_{ij}| / 127` and
    :math:`q_{ij} = \operatorname{round}(W_{ij} / s_i) \in [-127, 127]`, so
    :math:`|W_{ij} - q_{ij} s_i| \le s_i / 2`.

    Returns
    -------
    rows, scale
        ``rows`` int8 of ``weight``'s shape, ``scale`` float32 of shape ``(len(weight),)``.

    Examples
    --------
    >>> rows, scale = int8_rows(torch.tensor([[0.5, -1.0], [0.0, 0.0]]))
    >>> rows.tolist()
    [[64, -127], [0, 0]]
    >>> error = (from_int8_rows(rows, scale) - torch.tensor([[0.5, -1.0], [0.0, 0.0]])).abs()
    >>> bool((error <= scale[:, None] / 2).all())
    True
    """
    flat = weight.float().reshape(len(weight), -1)
    scale = flat.abs().amax(dim=1) / 127
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    rows = torch.round(flat / safe[:, None]).clamp(-127, 127).to(torch.int8)
    return rows.reshape(weight.shape).contiguous(), scale.contiguous()


def from_int8_rows(rows: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight :func:`int8_rows` stored: ``rows * scale`` row by row."""
    shape = (-1,) + (1,) * (rows.ndim - 1)
    return rows.float() * scale.float().reshape(shape)


def _refuse_source_as_target(sources: Sequence[str | Path], target: str | Path) -> None:
    """Raise if ``target`` names one of ``sources`` (the same file, by any path)."""
    try:
        _refuse_inputs([Path(target)], [Path(source) for source in sources], "checkpoint")
    except OutputError:
        raise CheckpointError(
            f"{target} is one of the checkpoints being read; write the result to a new file"
        ) from None


def _save_weights_only(
    target: str | Path, model: Restorer, metadata: dict[str, Any], half: bool, int8: bool = False
) -> Path:
    """Save ``model`` without optimizer state, fp16 if ``half`` (its weights int8 if
    ``int8``), its ``dtype`` recorded."""
    return save_checkpoint(
        target,
        model.half() if half else model,
        {**metadata, "dtype": "float16" if half else "float32"},
        int8=int8,
    )


def _recipe_difference(metadata: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The recipe settings of ``metadata`` that differ from ``reference``'s, apart from
    ``iterations`` (a run's snapshots carry the schedule's length as fitted then; the
    iterations done are recorded beside)."""
    recipe, other = metadata.get("recipe", {}), reference.get("recipe", {})
    return {
        key: value
        for key, value in recipe.items()
        if key != "iterations" and other.get(key) != value
    }


def average_weights(
    sources: list[str | Path] | tuple[str | Path, ...], target: str | Path, half: bool = False
) -> Path:
    """Write the mean of several checkpoints' weights (no optimizer state).

    ``w = (w_1 + ... + w_n) / n`` per tensor, in float32: checkpoints of one training run
    taken along its course (a stochastic weight average) can score higher than any one of
    them when the run's steps jitter around a minimum; measure it (docs/results.md). The
    metadata is the last source's, plus ``"weight_average"``: the sources' file names and
    ``iterations_done``, and where the sources come from runs with different recipes (the
    fine-tunes of one start, a "model soup"), ``"recipe_differences"``: per source, the
    recipe settings in which it differs from the last source's.

    Raises
    ------
    CheckpointError
        If fewer than two sources are given, ``target`` is one of them, or they differ in
        task, bits, halftone or architecture (weights of different networks have no
        meaningful mean).
    """
    if len(sources) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints, got {len(sources)}")
    _refuse_source_as_target(sources, target)
    loaded = [load_checkpoint(source) for source in sources]
    last = loaded[-1]
    identity = ("task", "bits", "halftone_method")
    for checkpoint in loaded[:-1]:
        differs = [k for k in identity if checkpoint.metadata.get(k) != last.metadata.get(k)]
        if checkpoint.model_config != last.model_config:  # older files omit defaults
            differs.append("architecture")
        if differs:
            raise CheckpointError(
                f"{checkpoint.path} and {last.path} differ in {', '.join(differs)}: "
                "only checkpoints of one model can be averaged"
            )
    model = last.build_model()
    state = {
        key: torch.stack([c.model_state[key].float() for c in loaded]).mean(0).to(value.dtype)
        if value.is_floating_point()
        else value
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(state)
    sources_record = {
        "files": [c.path.name for c in loaded],
        "iterations_done": [c.metadata.get("iterations_done") for c in loaded],
    }
    differences = [_recipe_difference(c.metadata, last.metadata) for c in loaded]
    if any(differences):  # separate runs (a "model soup"), not one run's snapshots
        sources_record["recipe_differences"] = differences
    return _save_weights_only(
        target, model, {**last.metadata, "weight_average": sources_record}, half
    )
