"""Checkpoints: safetensors files with JSON metadata; data only, never code.

Layout of a file:

* tensors ``model.<name>``: the network's state dict;
* tensors ``optim.<param index>.<exp_avg|exp_avg_sq|step>``: Adam's state, only in
  checkpoints meant for resuming (dropped by :func:`export_weights`);
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
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..models import ModelConfig, Restorer, build_model

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "export_weights",
    "load_checkpoint",
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
) -> Path:
    """Write ``model`` (and ``optimizer`` state) with ``metadata``, atomically.

    The file is written next to ``path`` and renamed into place, so a crash or
    stop while saving never leaves a truncated checkpoint behind.
    """
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, values in state["state"].items():
            for name, value in values.items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{index}.{name}"] = tensor.detach().cpu().contiguous()
        meta["optimizer_param_groups"] = state["param_groups"]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={_KEY: json.dumps(meta)})
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file is corrupt, truncated, not safetensors, or not ours.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:  # SafetensorError, OSError, ...
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (corrupt or truncated?): {err}"
        ) from err
    if _KEY not in header:
        raise CheckpointError(f"{path} is a safetensors file but not a napari-compand checkpoint")
    try:
        metadata = json.loads(header[_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON: {err}") from err
    if metadata.get("format") != FORMAT or "architecture" not in metadata:
        raise CheckpointError(f"{path}: metadata does not describe a napari-compand model")
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer napari-compand (format {metadata['format_version']}); "
            "upgrade the package"
        )
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer_state = None
    if "optimizer_param_groups" in metadata:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer_state = {"state": state, "param_groups": metadata.pop("optimizer_param_groups")}
    return Checkpoint(path, metadata, model_state, optimizer_state)


def export_weights(source: str | Path, target: str | Path, half: bool = False) -> Path:
    """Copy a checkpoint without its optimizer state (for shipping); ``half`` stores fp16."""
    checkpoint = load_checkpoint(source)
    model = checkpoint.build_model()
    if half:
        model = model.half()
    metadata = dict(checkpoint.metadata)
    metadata["dtype"] = "float16" if half else "float32"
    return save_checkpoint(target, model, metadata)
