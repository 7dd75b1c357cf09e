"""The shared time axis of the waveform, the ruler and the onset grid: what is visible, and the zoom."""
from __future__ import annotations

import math

from PyQt6.QtCore import QObject, pyqtSignal

#: Most pixels per second (zoomed in: 1 px = 0.5 ms).
MAX_PX_PER_S = 2000.0
#: Fewest seconds the view can show.
MIN_SPAN_S = 0.25


class TimeAxis(QObject):
    """Maps seconds to pixels for every view that shows time.

    ``start_s`` is the time at the left edge of the data area, ``px_per_s`` the zoom, ``width_px``
    the width of the data area, ``duration_s`` the length of the session. ``changed`` is emitted
    whenever one of them changes.
    """

    changed = pyqtSignal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.start_s = 0.0
        self.px_per_s = 100.0
        self.width_px = 800
        self.duration_s = 10.0

    # -- queries
    @property
    def end_s(self) -> float:
        return self.start_s + self.width_px / self.px_per_s

    @property
    def span_s(self) -> float:
        return self.width_px / self.px_per_s

    def x_of(self, time_s: float) -> float:
        """Pixel offset in the data area of ``time_s``."""
        return (time_s - self.start_s) * self.px_per_s

    def time_of(self, x: float) -> float:
        """Seconds at pixel offset ``x`` of the data area."""
        return self.start_s + x / self.px_per_s

    # -- changes
    def set_duration(self, duration_s: float, *, fit: bool = True) -> None:
        self.duration_s = max(float(duration_s), MIN_SPAN_S)
        if fit:
            self.fit()
        else:
            self._clamp_and_emit()

    def set_width(self, width_px: int) -> None:
        width_px = max(int(width_px), 10)
        if width_px != self.width_px:
            span = self.span_s
            self.width_px = width_px
            if self.span_s > self.duration_s * 1.02 or span >= self.duration_s * 0.999:
                self.px_per_s = self.width_px / max(self.duration_s, MIN_SPAN_S)
            self._clamp_and_emit()

    def fit(self) -> None:
        """Show the whole session."""
        self.start_s = 0.0
        self.px_per_s = self.width_px / max(self.duration_s, MIN_SPAN_S)
        self._clamp_and_emit()

    def set_view(self, start_s: float, span_s: float) -> None:
        span_s = max(span_s, MIN_SPAN_S)
        self.px_per_s = self.width_px / span_s
        self.start_s = start_s
        self._clamp_and_emit()

    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        """Multiply the zoom by ``factor`` (> 1 zooms in), keeping the time under ``anchor_x`` still."""
        if anchor_x is None:
            anchor_x = self.width_px / 2
        anchor_t = self.time_of(anchor_x)
        min_pps = self.width_px / max(self.duration_s, MIN_SPAN_S)
        self.px_per_s = min(max(self.px_per_s * factor, min_pps), MAX_PX_PER_S)
        self.start_s = anchor_t - anchor_x / self.px_per_s
        self._clamp_and_emit()

    def scroll(self, delta_s: float) -> None:
        self.start_s += delta_s
        self._clamp_and_emit()

    def scroll_to(self, start_s: float) -> None:
        self.start_s = start_s
        self._clamp_and_emit()

    def ensure_visible(self, time_s: float, margin: float = 0.1) -> None:
        """Scroll (page-wise) so that ``time_s`` is on screen, e.g. to follow the playhead."""
        span = self.span_s
        if time_s < self.start_s or time_s > self.start_s + span * (1 - margin):
            self.start_s = time_s - span * margin
            self._clamp_and_emit()

    def _clamp_and_emit(self) -> None:
        if not math.isfinite(self.start_s):
            self.start_s = 0.0
        max_start = max(self.duration_s - self.span_s, 0.0)
        self.start_s = min(max(self.start_s, 0.0), max_start)
        self.changed.emit()
