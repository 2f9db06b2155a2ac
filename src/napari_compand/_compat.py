"""Process-level workarounds, applied when the package is imported."""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["avoid_llvm_clash", "release_freed_memory"]


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


def release_freed_memory() -> None:
    """Hand memory that has been freed back to the operating system (glibc's
    ``malloc_trim(0)``; elsewhere nothing).

    Many short-lived arrays of a few hundred kB, allocated by several threads,
    fragment glibc's heap: freed space between the arrays still held stays part of
    the process. Measured without it: restoring an 8192x8192 RGB image tile by tile
    peaked at 3.7 GiB (``benchmarks/bench_inference.py``); degrading 40 BSDS500
    images at three scales with the two Bayer halftones grew the training process
    by 1.69 GiB for 0.69 GiB of cached versions (0.73 GiB with it), and a 300-image
    run grew past 20 GiB and was killed.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (``None`` elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc
        return None
