"""Progress reporting: one callback, ``progress(fraction, message)``, for every long job.

A callback may raise :class:`~idm_host.errors.Cancelled` (or any exception) to stop the job; the job
then writes nothing partial.
"""
from __future__ import annotations

import time
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


class Throttle:
    """Which progress reports to pass on, for a receiver that must not be flooded (a GUI, a network
    client): at most one per ``interval_s``, always the final one (fraction 1), and with
    ``on_new_stage`` every change of message. The fraction passed on is clamped to 0..1 and, with
    ``monotonic``, never goes below the last one passed on.

    Example:
        >>> t = Throttle(60.0)
        >>> t(0.1, "a"), t(0.2, "a"), t(1.0, "a")
        (0.1, None, 1.0)
    """

    def __init__(self, interval_s: float = 0.05, *, monotonic: bool = True, on_new_stage: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.interval_s = float(interval_s)
        self.monotonic = monotonic
        self.on_new_stage = on_new_stage
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget what was passed on (for a new job)."""
        self._last_t: float | None = None
        self._last_fraction = 0.0
        self._last_stage: str | None = None

    def __call__(self, fraction: float, stage: str = "") -> float | None:
        """The fraction to pass on now, or None to drop this report."""
        f = min(max(float(fraction), 0.0), 1.0)
        if self.monotonic:
            f = max(f, self._last_fraction)
        now = self._clock()
        due = (self._last_t is None or now - self._last_t >= self.interval_s or f >= 1.0
               or (self.on_new_stage and stage != self._last_stage))
        if not due:
            return None
        self._last_t, self._last_fraction, self._last_stage = now, f, stage
        return f
