"""Torch device selection shared by training and inference."""

from __future__ import annotations

import torch

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """Device names usable on this machine, best first, always ending in ``cpu``."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices + ["cpu"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; a named device must exist.

    Raises
    ------
    RuntimeError
        If ``cuda`` or ``mps`` is requested but not available.
    """
    name = getattr(name, "value", name)
    if not isinstance(name, str):
        raise TypeError(
            f"device must be a name such as 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'; got {name!r}"
        )
    if name == "auto":
        return torch.device(available_devices()[0])
    base = name.split(":")[0]
    if base not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    if base != "cpu" and base not in available_devices():
        raise RuntimeError(
            f"device {name!r} was requested but is not available here "
            f"(available: {', '.join(available_devices())})"
        )
    return torch.device(name)
