"""napari-compand: image companding and inverse halftoning (Hou & Qiu) for napari.

The Qt-free core is importable without napari:

* :mod:`napari_compand.degrade` — bit-depth reduction (Eq. 2), halftoning, and
  :func:`~napari_compand.degrade.keep_in_bin` (consistency with a low-bit input),
* :mod:`napari_compand.metrics` — PSNR and SSIM between images and stacks,
* :mod:`napari_compand.inference` — restoring images with a trained network,
* :mod:`napari_compand.zoo` — the shipped pretrained models,
* :mod:`napari_compand.evaluation` and :mod:`napari_compand.paper_tables` — scoring
  models and baselines, laid out like the paper's Tables I–III,
* :mod:`napari_compand.paper` — the numbers the paper reports (Tables I–IV, Fig. 8),
* :mod:`napari_compand.training` — the training engine.

The napari widgets live in the private ``_widgets`` package and are wired to
napari only through ``napari.yaml``.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ._compat import avoid_llvm_clash

avoid_llvm_clash()  # napari already open: protect every later torch._dynamo import

try:
    __version__ = version("napari-compand")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

#: public name -> the module that defines it, imported on first use (numba and scipy
#: load only when degradations or metrics are used, not for ``napari-compand --help``)
_HOMES = {
    "HALFTONE_METHODS": "vocabulary",
    "Degradation": "degrade",
    "DegradationMode": "degrade",
    "halftone": "degrade",
    "keep_in_bin": "degrade",
    "quantize": "degrade",
    "psnr": "metrics",
    "ssim": "metrics",
}

__all__ = ["__version__", *sorted(_HOMES)]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
