"""Process-level workarounds, applied when the package is imported."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["avoid_llvm_clash"]


def avoid_llvm_clash() -> bool:
    """Keep triton out of processes that already hold Mesa's LLVM; True if applied.

    napari draws with OpenGL; on machines without a GPU driver (VMs, remote
    desktops, Xvfb) Mesa's llvmpipe loads ``libLLVM``. triton, which
    ``torch._dynamo`` and ``torchvision.ops`` import, bundles its own LLVM, and
    loading it into such a process crashes it (segmentation fault). When
    ``libLLVM`` is already mapped and triton not yet imported, triton is marked
    absent, which torch handles as "triton not installed" (eager PyTorch, the
    only mode this package uses, is unaffected).
    """
    if "triton" in sys.modules:
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return False
    if "libLLVM" not in maps:
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True
