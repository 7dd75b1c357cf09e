"""Progress reporting: one callback, ``progress(fraction, message)``, for every long job.

A callback may raise :class:`~idm_host.errors.Cancelled` (or any exception) to stop the job; the job
then writes nothing partial.
"""
from __future__ import annotations

from typing import Callable, Optional

ProgressCallback = Callable[[float, str], None]


class Stage:
    """Maps a sub-job's own 0..1 progress onto a sub-range of a parent callback.

    The reported fraction never goes backwards.

    Example:
        >>> seen = []
        >>> s = Stage(lambda f, m: seen.append(round(f, 2)), 0.5, 1.0)
        >>> s(0.5, "half")
        >>> seen
        [0.75]
    """

    def __init__(self, parent: Optional[ProgressCallback], start: float = 0.0, end: float = 1.0):
        self._parent = parent
        self._start = start
        self._end = end
        self._last = start

    def __call__(self, fraction: float, message: str = "") -> None:
        if self._parent is None:
            return
        f = self._start + (self._end - self._start) * min(max(float(fraction), 0.0), 1.0)
        f = max(f, self._last)
        self._last = f
        self._parent(f, message)

    def sub(self, start: float, end: float) -> "Stage":
        """A child stage covering ``start..end`` of this stage's own range."""
        span = self._end - self._start
        return Stage(self._parent, self._start + span * start, self._start + span * end)


def report(progress: Optional[ProgressCallback], fraction: float, message: str = "") -> None:
    """Call ``progress`` if given."""
    if progress is not None:
        progress(fraction, message)
