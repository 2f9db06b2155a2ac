"""Start-up time of ``napari-compand --help`` against a bare Python start, same run.

Target (issue: torch only where it is needed): ``--help`` under 1 s, i.e. the
parser loads neither torch nor numba nor scipy. Prints the median of a few runs
of each and their difference.

    python benchmarks/bench_cli_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    bare = median_seconds([sys.executable, "-c", "pass"])
    help_ = median_seconds([sys.executable, "-m", "napari_compand", "--help"])
    train = median_seconds([sys.executable, "-m", "napari_compand", "train", "--help"])
    print(f"python -c pass:                 {bare:.3f} s")
    print(f"napari-compand --help:          {help_:.3f} s ({help_ - bare:+.3f} s over bare Python)")
    print(f"napari-compand train --help:    {train:.3f} s ({train - bare:+.3f} s over bare Python)")
    print("target: --help under 1 s:", "met" if help_ < 1.0 else "MISSED")


if __name__ == "__main__":
    main()
