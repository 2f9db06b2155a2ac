"""napari-compand: image companding and inverse halftoning (Hou & Qiu) for napari.

The Qt-free core is importable without napari:

* :mod:`napari_compand.degrade` — bit-depth reduction (Eq. 2), halftoning, and
  :func:`~napari_compand.degrade.keep_in_bin` (consistency with a low-bit input),
* :mod:`napari_compand.metrics` — PSNR and SSIM between images and stacks,
* :mod:`napari_compand.inference` — restoring images with a trained network,
* :mod:`napari_compand.zoo` — the shipped pretrained models,
* :mod:`napari_compand.evaluation` and :mod:`napari_compand.paper_tables` — scoring
  models and baselines, laid out like the paper's Tables I–III,
* :mod:`napari_compand.training` — the training engine.

The napari widgets live in the private ``_widgets`` package and are wired to
napari only through ``napari.yaml``.
"""

from importlib.metadata import PackageNotFoundError, version

from ._compat import avoid_llvm_clash
from .degrade import (
    HALFTONE_METHODS,
    Degradation,
    DegradationMode,
    halftone,
    keep_in_bin,
    quantize,
)
from .metrics import psnr, ssim

avoid_llvm_clash()  # napari already open: protect every later torch._dynamo import

try:
    __version__ = version("napari-compand")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "HALFTONE_METHODS",
    "Degradation",
    "DegradationMode",
    "__version__",
    "halftone",
    "keep_in_bin",
    "psnr",
    "quantize",
    "ssim",
]
