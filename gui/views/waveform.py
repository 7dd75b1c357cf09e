"""The mixture's waveform, zoomed with the onset grid, and an overview strip of the whole file."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QLineF, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from .. import theme
from ..peaks import Peaks
from ..theme import HEADER_W
from .painting import painting
from .time_axis import TimeAxis

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel


def _draw_columns(p: QPainter, peaks: Peaks, axis_start: float, pps: float, width: int,
                  x0: float, top: float, height: float, color: QColor) -> None:
    xs, mn, mx = peaks.columns(axis_start, pps, width)
    if len(xs) == 0:
        return
    mid = top + height / 2
    scale = (height / 2 - 1) / peaks.peak
    y0 = mid - mx * scale
    y1 = mid - mn * scale
    y1 = np.maximum(y1, y0 + 1)
    p.setPen(QPen(color, 1))
    p.drawLines([QLineF(x0 + x + 0.5, a, x0 + x + 0.5, b) for x, a, b in zip(xs.tolist(), y0.tolist(), y1.tolist())])


class _MixtureStrip(QWidget):
    """A strip of fixed height (px) that draws the session's mixture against ``axis``, with a
    playhead; it repaints when the axis or the session changes."""

    def __init__(self, model: "SessionModel", axis: TimeAxis, height: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.axis = axis
        self.playhead_s: float | None = None
        self.setFixedHeight(height)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        axis.changed.connect(self.update)
        model.session_changed.connect(self.update)

    def set_playhead(self, time_s: float | None) -> None:
        self.playhead_s = time_s
        self.update()


class WaveformView(_MixtureStrip):
    """The mixture in the visible time range, aligned with the onset grid's lanes.

    Clicking sets the edit cursor (``cursor_requested(float)``); the wheel scrolls or (Ctrl) zooms.
    """

    cursor_requested = pyqtSignal(float)

    def __init__(self, model: "SessionModel", axis: TimeAxis, parent: QWidget | None = None):
        super().__init__(model, axis, 84, parent)
        self.setObjectName("WaveformView")
        self.cursor_s = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_cursor(self, time_s: float) -> None:
        self.cursor_s = time_s
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        with painting(self, theme.BACKGROUND) as (p, w, h):
            p.fillRect(QRectF(0, 0, HEADER_W, h), theme.PANEL)
            p.setPen(theme.TEXT)
            p.drawText(QRectF(10, 0, HEADER_W - 12, h), Qt.AlignmentFlag.AlignVCenter, "Mix")
            peaks = self.model.mixture_peaks
            if peaks is None:
                p.setPen(theme.TEXT_DIM)
                p.drawText(QRectF(HEADER_W, 0, w - HEADER_W, h), Qt.AlignmentFlag.AlignCenter,
                           "Open an audio file (Ctrl+O) or drop one here")
                return
            p.setPen(QPen(theme.GRID_BEAT, 1))
            p.drawLine(QPointF(HEADER_W, h / 2), QPointF(w, h / 2))
            _draw_columns(p, peaks, self.axis.start_s, self.axis.px_per_s, w - HEADER_W, HEADER_W, 3, h - 6,
                          theme.WAVEFORM)
            for t, color, style in ((self.cursor_s, theme.ACCENT, Qt.PenStyle.DotLine),
                                    (self.playhead_s, theme.PLAYHEAD, Qt.PenStyle.SolidLine)):
                if t is None:
                    continue
                x = HEADER_W + self.axis.x_of(t)
                if HEADER_W <= x <= w:
                    p.setPen(QPen(color, 1.5, style))
                    p.drawLine(QPointF(x, 0), QPointF(x, h))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.position().x() >= HEADER_W and self.model.has_session:
            self.cursor_requested.emit(max(self.axis.time_of(event.position().x() - HEADER_W), 0.0))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = (event.angleDelta().y() or event.angleDelta().x()) / 120.0
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.axis.zoom(1.25 ** steps, event.position().x() - HEADER_W)
        else:
            self.axis.scroll(-steps * self.axis.span_s * 0.1)
        event.accept()


class OverviewBar(_MixtureStrip):
    """The whole mixture in a thin strip with the visible range boxed; click or drag to scroll."""

    def __init__(self, model: "SessionModel", axis: TimeAxis, parent: QWidget | None = None):
        super().__init__(model, axis, 30, parent)
        self.setObjectName("OverviewBar")

    def _pps(self) -> float:
        return max(self.width() - HEADER_W, 1) / max(self.axis.duration_s, 1e-6)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        with painting(self, theme.PANEL) as (p, w, h):
            peaks = self.model.mixture_peaks
            if peaks is None:
                return
            p.fillRect(QRectF(HEADER_W, 0, w - HEADER_W, h), theme.BACKGROUND)
            pps = self._pps()
            _draw_columns(p, peaks, 0.0, pps, w - HEADER_W, HEADER_W, 2, h - 4, theme.TEXT_DIM)
            x0 = HEADER_W + self.axis.start_s * pps
            x1 = HEADER_W + self.axis.end_s * pps
            box = QColor(theme.ACCENT)
            box.setAlpha(45)
            p.fillRect(QRectF(x0, 0, max(x1 - x0, 3), h), box)
            p.setPen(QPen(theme.ACCENT, 1))
            p.drawRect(QRectF(x0, 0.5, max(x1 - x0, 3), h - 1))
            if self.playhead_s is not None:
                p.setPen(QPen(theme.PLAYHEAD, 1.5))
                x = HEADER_W + self.playhead_s * pps
                p.drawLine(QPointF(x, 0), QPointF(x, h))
            p.setPen(theme.TEXT_DIM)
            p.drawText(QRectF(10, 0, HEADER_W - 12, h), Qt.AlignmentFlag.AlignVCenter, _fmt_time(self.axis.duration_s))

    def _scroll_to_x(self, x: float) -> None:
        t = (x - HEADER_W) / self._pps()
        self.axis.scroll_to(t - self.axis.span_s / 2)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.model.has_session:
            self._scroll_to_x(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.model.has_session and event.buttons() & Qt.MouseButton.LeftButton:
            self._scroll_to_x(event.position().x())


def _fmt_time(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60.0)
    return f"{int(m)}:{s:05.2f}"
