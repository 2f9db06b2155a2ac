"""Long computations as generators of ``(done, total)`` steps, and one way to run them.

:mod:`napari_compand.degrade` and :mod:`napari_compand.inference` write their
work as generators that yield ``(done, total)`` after each plane or tile and
return the result; napari's thread workers iterate them (progress, cancel), and
plain calls run them with :func:`drive`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

__all__ = ["Cancelled", "Progress", "Steps", "drive"]

T = TypeVar("T")

#: Callback ``progress(done, total)``, called after each finished step.
Progress = Callable[[int, int], None]

#: A computation that yields ``(done, total)`` and returns its result.
Steps = Generator[tuple[int, int], None, T]


class Cancelled(RuntimeError):
    """Raised by :func:`drive` when ``should_stop`` returned True."""


def drive(
    steps: Steps[T],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    cancelled: type[Exception] = Cancelled,
    message: str = "cancelled",
) -> T:
    """Run ``steps`` to its end and return its result.

    ``progress`` is called after every step; ``should_stop`` is polled after every
    step, and returning True closes the generator (so it can release resources)
    and raises ``cancelled(message)``.

    >>> def count(n):
    ...     for i in range(n):
    ...         yield i + 1, n
    ...     return "done"
    >>> seen = []
    >>> drive(count(3), progress=lambda d, t: seen.append(d))
    'done'
    >>> seen
    [1, 2, 3]
    """
    try:
        while True:
            try:
                done, total = next(steps)
            except StopIteration as stop:
                return stop.value
            if progress is not None:
                progress(done, total)
            if should_stop is not None and should_stop():
                raise cancelled(message)
    finally:
        steps.close()
