"""The onset grid: a lane per drum class, with hits drawn by velocity, edited with mouse and keys.

Mouse:
    click an empty spot        add a hit there (snapped to the grid; hold Alt for no snap)
    click a hit                select it (Ctrl toggles, Shift adds to the selection)
    drag a hit                 move the selection in time (snapped; Alt: free), or into another lane
    Shift+drag / drag the top  change the selection's velocity
    drag on an empty spot      rubber-band select (Ctrl/Shift: add to the selection)
    right-click a hit          delete it (or the selection it belongs to)
    wheel over a hit           velocity up/down (the whole selection if the hit is selected)
    wheel                      scroll in time; Ctrl+wheel zooms around the mouse
    click the ruler            set the edit cursor (where Paste puts hits)
    click a lane's name        select that lane's hits (Shift/Ctrl: add to the selection)
    drag a lane's name         drag that drum's separated stem (WAV) out of the window
Keys:
    Delete/Backspace delete, Ctrl+C/X/V copy, cut and paste at the edit cursor, Ctrl+A select all,
    Esc clear selection, Up/Down velocity, Ctrl+Left/Right nudge by a grid step (Alt: 1 ms),
    Left/Right/PageUp/PageDown scroll, +/- zoom, Home/End jump.

The view never changes the session itself: it calls the intent methods of
:class:`gui.session_model.SessionModel` (one undo step each) and redraws when the model says so.
Only visible hits are drawn, and when more hits than pixels are visible, the loudest per pixel.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QEvent, QLineF, QMimeData, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import (
    QColor, QDrag, QFont, QFontMetricsF, QHelpEvent, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent,
)
from PyQt6.QtWidgets import QApplication, QSizePolicy, QToolTip, QWidget

from idm_host.classes import class_info
from idm_host.errors import IdmError
from idm_host.midi import to_midi_velocity

from .. import theme
from ..hit_clipboard import CLIP_MIME, clip_of, decode_clip, encode_clip, place_clip
from ..theme import HEADER_W, RULER_H
from . import grid_math
from .time_axis import TimeAxis
from .transport import file_drag_mime

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel

MIN_LANE_H = 18
DRAG_THRESHOLD_PX = 4
PICK_RADIUS_PX = 5
TOP_HANDLE_PX = 4
VELOCITY_BUCKETS = 8
WHEEL_VELOCITY_STEP = 0.05
MIN_VELOCITY = 0.01
#: Selected hits get a white outline when at most this many are in view (else only the light fill).
MAX_OUTLINED = 400

#: Lane order from top to bottom (classes not listed follow, alphabetically).
LANE_ORDER = ("KD", "SD", "HH_CHH", "HH_PHH", "HH_OHH", "TT_HFT", "TT_LMT", "TT_HMT", "CY_RD", "CY_CR")


#: Share of the lane height a hit of velocity 0 still gets, so that soft hits stay visible.
MIN_BAR_FRACTION = 0.22


def bar_height(velocity, lane_h: float):
    """Pixel height of a hit bar: from ``MIN_BAR_FRACTION`` of the lane (velocity 0) to all of it (1)."""
    usable = lane_h - 5
    return usable * (MIN_BAR_FRACTION + (1 - MIN_BAR_FRACTION) * np.asarray(velocity, dtype=np.float64))


class OnsetGridView(QWidget):
    """The hit editor.

    Signals:
        selection_changed(): the set of selected hit ids changed.
        cursor_moved(float): the edit cursor (s) moved.
        hit_auditioned(str, float): a hit was added or clicked: class and velocity (for audition).
    """

    selection_changed = pyqtSignal()
    cursor_moved = pyqtSignal(float)
    hit_auditioned = pyqtSignal(str, float)

    def __init__(self, model: "SessionModel", axis: TimeAxis, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("OnsetGridView")
        self.model = model
        self.axis = axis
        self.division = grid_math.DEFAULT_DIVISION
        self.snap_enabled = True
        self.quantise_strength = 1.0
        self.playhead_s: float | None = None
        self.cursor_s = 0.0
        self.selected: np.ndarray = np.empty(0, dtype=np.int64)  # sorted hit ids
        self._clipboard: list[tuple[str, float, float]] = []
        self._drag: dict | None = None
        self._press_pos: QPointF | None = None
        self._colors: dict[str, QColor] = {}
        self._bucket_colors: dict[str, list[QColor]] = {}
        self._lanes: tuple[str, ...] = ()
        #: ``stem_provider(class) -> Path`` writes a class's stem for dragging out (set by the window).
        self.stem_provider = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAcceptDrops(False)
        self._font = QFont(self.font())
        self._font.setPointSizeF(8.5)
        model.hits_changed.connect(self._on_model_hits_changed)
        model.tempo_changed.connect(self.update)
        model.session_changed.connect(self._on_model_session_changed)
        axis.changed.connect(self.update)
        self._on_model_session_changed()

    # ------------------------------------------------------------------ geometry
    @property
    def classes(self) -> tuple[str, ...]:
        """The lanes, top to bottom: kick, snare, hats, toms, cymbals (then any other class)."""
        return self._lanes

    def _lane_order(self) -> tuple[str, ...]:
        known = {c: i for i, c in enumerate(LANE_ORDER)}
        return tuple(sorted(self.model.classes, key=lambda c: (known.get(c, len(known)), c)))

    def lane_height(self) -> float:
        n = max(len(self.classes), 1)
        return max(MIN_LANE_H, (self.height() - RULER_H) / n)

    def lane_rect(self, index: int) -> QRectF:
        h = self.lane_height()
        return QRectF(HEADER_W, RULER_H + index * h, self.width() - HEADER_W, h)

    def lane_at(self, y: float) -> int | None:
        if y < RULER_H:
            return None
        i = int((y - RULER_H) // self.lane_height())
        return i if 0 <= i < len(self.classes) else None

    def x_of(self, time_s: float) -> float:
        return HEADER_W + self.axis.x_of(time_s)

    def time_of(self, x: float) -> float:
        return self.axis.time_of(x - HEADER_W)

    def hit_top(self, symbol: str, velocity: float) -> float:
        """The y of the top of a hit bar of ``velocity`` in ``symbol``'s lane."""
        rect = self.lane_rect(self.classes.index(symbol))
        return rect.bottom() - 2 - float(bar_height(velocity, rect.height()))

    def point_of(self, symbol: str, time_s: float, velocity: float = 1.0) -> QPointF:
        """A point inside a hit's bar, below its velocity handle (for tests and tools)."""
        rect = self.lane_rect(self.classes.index(symbol))
        top = self.hit_top(symbol, velocity)
        y = min(top + TOP_HANDLE_PX + 3, rect.bottom() - 3)
        return QPointF(self.x_of(time_s), max(y, top))

    def empty_point(self, symbol: str, time_s: float) -> QPointF:
        """A point in ``symbol``'s lane at ``time_s`` (for tests and tools)."""
        rect = self.lane_rect(self.classes.index(symbol))
        return QPointF(self.x_of(time_s), rect.top() + 3)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.axis.set_width(max(self.width() - HEADER_W, 10))
        super().resizeEvent(event)

    # ------------------------------------------------------------------ grid
    def grid_step(self) -> float:
        return grid_math.step_s(self.model.tempo_model, self.division)

    def snap_time(self, time_s: float, modifiers: Qt.KeyboardModifier | None = None) -> float:
        """``time_s`` snapped to the grid, unless snapping is off or Alt is held."""
        free = modifiers is not None and bool(modifiers & Qt.KeyboardModifier.AltModifier)
        time_s = min(max(time_s, 0.0), self.model.duration_s)
        if not self.snap_enabled or free:
            return time_s
        t = grid_math.snap(time_s, self.model.tempo_model, self.division)
        return t if t <= self.model.duration_s else time_s

    # ------------------------------------------------------------------ model events
    def _on_model_session_changed(self) -> None:
        self._lanes = self._lane_order()
        self.selected = np.empty(0, dtype=np.int64)
        self._drag = None
        self._colors = {c: theme.class_color(c, i) for i, c in enumerate(self.classes)}
        self._bucket_colors = {
            c: [theme.velocity_color(col, (b + 0.5) / VELOCITY_BUCKETS) for b in range(VELOCITY_BUCKETS)]
            + [theme.selected_color(col)]
            for c, col in self._colors.items()
        }
        self.setMinimumHeight(RULER_H + max(len(self.classes), 4) * MIN_LANE_H)
        self.update()
        self.selection_changed.emit()

    def _on_model_hits_changed(self, symbol: str) -> None:
        if len(self.selected):
            alive = np.concatenate([self.model.hits(c).ids for c in self.classes] or [np.empty(0, np.int64)])
            keep = self.selected[np.isin(self.selected, alive)]
            if len(keep) != len(self.selected):
                self.selected = keep
                self.selection_changed.emit()
        self.update()

    # ------------------------------------------------------------------ selection
    def selected_count(self) -> int:
        return len(self.selected)

    def selected_ids(self) -> list[int]:
        return self.selected.tolist()

    def set_selection(self, ids) -> None:
        self.selected = np.unique(np.asarray(list(ids), dtype=np.int64))
        self.selection_changed.emit()
        self.update()

    def select_all(self) -> None:
        self.set_selection(np.concatenate([self.model.hits(c).ids for c in self.classes] or [[]]))

    def clear_selection(self) -> None:
        if len(self.selected):
            self.set_selection([])

    def is_selected(self, hit_id: int) -> bool:
        i = np.searchsorted(self.selected, hit_id)
        return bool(i < len(self.selected) and self.selected[i] == hit_id)

    def hit_at(self, pos: QPointF) -> tuple[str, int, float, float] | None:
        """The hit under ``pos``: (class, id, time_s, velocity), or None."""
        lane = self.lane_at(pos.y())
        if lane is None or pos.x() < HEADER_W:
            return None
        symbol = self.classes[lane]
        hits = self.model.hits(symbol)
        if len(hits) == 0:
            return None
        t = self.time_of(pos.x())
        radius = PICK_RADIUS_PX / self.axis.px_per_s
        i = int(np.searchsorted(hits.times, t))
        best = None
        for j in (i - 1, i, i + 1):
            if 0 <= j < len(hits) and abs(hits.times[j] - t) <= radius:
                if best is None or abs(hits.times[j] - t) < abs(hits.times[best] - t):
                    best = j
        if best is None:
            return None
        return symbol, int(hits.ids[best]), float(hits.times[best]), float(hits.velocities[best])

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        try:
            self.paint(p)
        finally:
            p.end()

    def paint(self, p: QPainter) -> None:
        """Draw everything (also used by the benchmark to time a redraw)."""
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, theme.BACKGROUND)
        lane_h = self.lane_height()
        for i in range(len(self.classes)):
            p.fillRect(self.lane_rect(i), theme.LANE_A if i % 2 == 0 else theme.LANE_B)
        if not self.model.has_session:
            p.setPen(theme.TEXT_DIM)
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter,
                       "No session yet.\nOpen an audio file (Ctrl+O) or drop one on the window;\n"
                       "the drum hits it contains appear here, one lane per drum.")
            return
        self._paint_grid(p, h)
        p.setClipRect(QRectF(HEADER_W, RULER_H, w - HEADER_W, h - RULER_H))
        bar_w = float(min(max(self.axis.px_per_s * 0.02, 3.0), 8.0))
        hide = self._drag is not None and self._drag["mode"] in ("move", "velocity")
        for i, symbol in enumerate(self.classes):
            self._paint_lane_hits(p, i, symbol, lane_h, bar_w, hide)
        self._paint_drag_overlay(p, lane_h, bar_w)
        self._paint_cursors(p, h)
        p.setClipping(False)
        self._paint_ruler(p, w)
        self._paint_headers(p, lane_h)

    def _paint_grid(self, p: QPainter, h: int) -> None:
        times, rank = grid_math.grid_lines(
            self.axis.start_s, self.axis.end_s, self.model.tempo_model, self.division,
            min_px=7.0, px_per_s=self.axis.px_per_s)
        xs = HEADER_W + (times - self.axis.start_s) * self.axis.px_per_s
        for r, color in ((0, theme.GRID_SUB), (1, theme.GRID_BEAT), (2, theme.GRID_BAR)):
            sel = xs[(rank == r) & (xs >= HEADER_W)]
            if len(sel):
                p.setPen(QPen(color, 1))
                p.drawLines([QLineF(x, RULER_H, x, h) for x in sel.tolist()])

    def _paint_lane_hits(self, p: QPainter, index: int, symbol: str, lane_h: float, bar_w: float,
                         hide_selected: bool) -> None:
        hits = self.model.hits(symbol)
        if len(hits) == 0:
            return
        pps = self.axis.px_per_s
        margin_s = 4.0 / pps
        lo = int(np.searchsorted(hits.times, self.axis.start_s - margin_s))
        hi = int(np.searchsorted(hits.times, self.axis.end_s + margin_s))
        if hi <= lo:
            return
        t = hits.times[lo:hi]
        v = hits.velocities[lo:hi]
        sel = np.isin(hits.ids[lo:hi], self.selected, assume_unique=True) if len(self.selected) else None
        if hide_selected and sel is not None:
            t, v, sel = t[~sel], v[~sel], None  # the drag overlay draws them at their new place
        xs = HEADER_W + (t - self.axis.start_s) * pps
        if sel is None:
            sel = np.zeros(len(xs), dtype=bool)
        if len(xs) * bar_w > 2 * self.width():
            # bars overlap: keep the loudest per bar-wide column (selected if any hit there is)
            cols = (xs // bar_w).astype(np.int64)
            order = np.lexsort((-v, cols))
            cs = cols[order]
            first = np.ones(len(order), dtype=bool)
            first[1:] = cs[1:] != cs[:-1]
            starts = np.nonzero(first)[0]
            any_sel = np.maximum.reduceat(sel[order], starts) if sel.any() else np.zeros(len(starts), dtype=bool)
            pick = order[starts]
            xs, v, sel = cols[pick] * bar_w + bar_w / 2, v[pick], any_sel.astype(bool)
        bottom = RULER_H + (index + 1) * lane_h - 2
        heights = bar_height(v, lane_h)
        # colour index: velocity bucket, or VELOCITY_BUCKETS for selected hits (drawn lighter)
        buckets = np.minimum((v * VELOCITY_BUCKETS).astype(np.int64), VELOCITY_BUCKETS - 1)
        buckets[sel] = VELOCITY_BUCKETS
        colors = self._bucket_colors.get(symbol) or [theme.ACCENT] * (VELOCITY_BUCKETS + 1)
        left = (xs - bar_w / 2).tolist()
        tops = (bottom - heights).tolist()
        hl = heights.tolist()
        p.setPen(Qt.PenStyle.NoPen)
        for b in np.unique(buckets).tolist():
            idx = np.nonzero(buckets == b)[0].tolist()
            p.setBrush(colors[b])
            p.drawRects([QRectF(left[k], tops[k], bar_w, hl[k]) for k in idx])
        n_sel = int(sel.sum())
        if 0 < n_sel <= MAX_OUTLINED:
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(theme.SELECTION, 0))  # cosmetic 1 px pen: cheap
            p.drawRects([QRectF(left[k] - 1, tops[k] - 1, bar_w + 1, hl[k] + 1) for k in np.nonzero(sel)[0].tolist()])

    def _paint_drag_overlay(self, p: QPainter, lane_h: float, bar_w: float) -> None:
        d = self._drag
        if d is None:
            return
        if d["mode"] == "rubber" and d.get("rect") is not None:
            p.setPen(QPen(theme.ACCENT, 1, Qt.PenStyle.DashLine))
            fill = QColor(theme.ACCENT)
            fill.setAlpha(40)
            p.setBrush(fill)
            p.drawRect(d["rect"])
            return
        if d["mode"] not in ("move", "velocity"):
            return
        pps = self.axis.px_per_s
        p.setPen(QPen(theme.SELECTION, 1.5))
        for symbol, (times, vels) in self._preview().items():
            i = self.classes.index(symbol)
            bottom = RULER_H + (i + 1) * lane_h - 2
            colors = self._bucket_colors[symbol]
            for t, v in zip(times.tolist(), vels.tolist()):
                x = HEADER_W + (t - self.axis.start_s) * pps - bar_w / 2
                hh = float(bar_height(v, lane_h))
                p.setBrush(colors[min(int(v * VELOCITY_BUCKETS), VELOCITY_BUCKETS - 1)])
                p.drawRect(QRectF(x, bottom - hh, bar_w, hh))

    def _paint_cursors(self, p: QPainter, h: int) -> None:
        x = self.x_of(self.cursor_s)
        if HEADER_W <= x <= self.width():
            p.setPen(QPen(theme.ACCENT, 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(x, RULER_H), QPointF(x, h))
        if self.playhead_s is not None:
            x = self.x_of(self.playhead_s)
            if HEADER_W <= x <= self.width():
                p.setPen(QPen(theme.PLAYHEAD, 1.5))
                p.drawLine(QPointF(x, 0), QPointF(x, h))

    def _paint_ruler(self, p: QPainter, w: int) -> None:
        p.fillRect(QRectF(0, 0, w, RULER_H), theme.PANEL)
        tempo = self.model.tempo_model
        bpm, downbeat = tempo.bpm, tempo.downbeat_s
        p.setFont(self._font)
        times, rank = grid_math.grid_lines(self.axis.start_s, self.axis.end_s, tempo, "1/4",
                                           min_px=6.0, px_per_s=self.axis.px_per_s)
        xs = HEADER_W + (times - self.axis.start_s) * self.axis.px_per_s
        bar_len = tempo.bar_s
        label_every = 1
        while bar_len * self.axis.px_per_s * label_every < 28:
            label_every *= 2
        keep = xs >= HEADER_W
        xs, rank, times = xs[keep], rank[keep], times[keep]
        bars = rank == 2
        p.setPen(QPen(theme.TEXT_DIM, 1))
        p.drawLines([QLineF(x, RULER_H * 0.35, x, RULER_H) for x in xs[bars].tolist()])
        p.setPen(QPen(theme.GRID_BAR, 1))
        p.drawLines([QLineF(x, RULER_H * 0.7, x, RULER_H) for x in xs[~bars].tolist()])
        p.setPen(theme.TEXT)
        for x, t in zip(xs[bars].tolist(), times[bars].tolist()):
            bar = int(round((t - downbeat) / bar_len))
            if bar % label_every == 0:
                p.drawText(QPointF(x + 3, 11), str(bar + 1))
        p.setPen(QPen(theme.GRID_BEAT, 1))
        p.drawLine(QPointF(HEADER_W, RULER_H - 0.5), QPointF(w, RULER_H - 0.5))
        p.fillRect(QRectF(0, 0, HEADER_W, RULER_H), theme.PANEL)
        p.setPen(theme.TEXT_DIM)
        p.drawText(QRectF(8, 0, HEADER_W - 8, RULER_H), Qt.AlignmentFlag.AlignVCenter,
                   f"{bpm:.1f} BPM · {self.division}")

    def _paint_headers(self, p: QPainter, lane_h: float) -> None:
        p.setFont(self._font)
        fm = QFontMetricsF(self._font)
        for i, symbol in enumerate(self.classes):
            r = QRectF(0, RULER_H + i * lane_h, HEADER_W, lane_h)
            p.fillRect(r, theme.PANEL)
            p.fillRect(QRectF(0, r.top() + 1, 4, r.height() - 2), self._colors.get(symbol, theme.ACCENT))
            count = str(len(self.model.hits(symbol)))
            room = HEADER_W - 10 - 6 - fm.horizontalAdvance(count) - 6  # the name never runs into the count
            p.setPen(theme.TEXT)
            p.drawText(r.adjusted(10, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(class_info(symbol).name, Qt.TextElideMode.ElideRight, room))
            p.setPen(theme.TEXT_DIM)
            p.drawText(r.adjusted(10, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, count)
            p.setPen(QPen(theme.BACKGROUND, 1))
            p.drawLine(QPointF(0, r.bottom()), QPointF(self.width(), r.bottom()))

    # ------------------------------------------------------------------ drag preview
    def _preview(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The selected hits as the current drag would leave them: ``{class: (times, velocities)}``."""
        d = self._drag or {}
        out = {}
        for symbol in self.classes:
            hits = self.model.hits(symbol)
            if not len(hits) or not len(self.selected):
                continue
            m = np.isin(hits.ids, self.selected, assume_unique=True)
            if not m.any():
                continue
            t, v = hits.times[m], hits.velocities[m]
            lane = symbol
            if d.get("mode") == "move":
                t = np.clip(t + d.get("delta_s", 0.0), 0.0, self.model.duration_s)
                lane = d.get("to_class") or symbol
            elif d.get("mode") == "velocity":
                v = np.clip(v + d.get("delta_v", 0.0), MIN_VELOCITY, 1.0)
            if lane in out:
                out[lane] = (np.concatenate([out[lane][0], t]), np.concatenate([out[lane][1], v]))
            else:
                out[lane] = (t, v)
        return out

    def _selection_classes(self) -> set[str]:
        return {c for c in self.classes if np.isin(self.model.hits(c).ids, self.selected, assume_unique=True).any()}

    # ------------------------------------------------------------------ mouse
    def hit_tooltip(self, pos: QPointF) -> str:
        """What hovering at ``pos`` tells: the hit's class, exact time and velocity ("" off a hit)."""
        hit = self.hit_at(pos)
        if hit is None:
            return ""
        symbol, _, t, v = hit
        bar, beat = grid_math.bar_beat(t, self.model.tempo_model)
        return (f"{class_info(symbol).name}: {t:.4f} s (bar {bar}, beat {beat:.2f})\n"
                f"velocity {v:.3f} (MIDI {to_midi_velocity(v)})")

    def event(self, event: QEvent) -> bool:  # noqa: D102 - Qt override: hover tooltips on hits
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.hit_tooltip(QPointF(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        mods = event.modifiers()
        if not self.model.has_session:
            return
        if pos.x() < HEADER_W:
            lane = self.lane_at(pos.y())
            if lane is not None and event.button() == Qt.MouseButton.LeftButton:
                self._drag = {"mode": "pending-export", "lane": lane}
                self._press_pos = pos
            return
        if pos.y() < RULER_H:
            self.set_cursor(self.time_of(pos.x()))
            return
        lane = self.lane_at(pos.y())
        if lane is None:
            return
        hit = self.hit_at(pos)
        if event.button() == Qt.MouseButton.RightButton:
            if hit is not None:
                _, hit_id, _, _ = hit
                if self.is_selected(hit_id):
                    self.delete_selected()
                else:
                    self.model.delete_hits([hit_id])
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._press_pos = pos
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if hit is not None:
            symbol, hit_id, t, v = hit
            if ctrl and self.is_selected(hit_id):
                self.set_selection(self.selected[self.selected != hit_id])
                self._drag = None
                return
            if not self.is_selected(hit_id):
                base = self.selected.tolist() if (ctrl or shift) else []
                self.set_selection(base + [hit_id])
            self.hit_auditioned.emit(symbol, v)
            on_handle = abs(pos.y() - self.hit_top(symbol, v)) <= TOP_HANDLE_PX
            mode = "velocity" if shift or on_handle else "move"
            self._drag = {"mode": "pending-" + mode, "anchor": (symbol, hit_id, t, v),
                          "delta_s": 0.0, "delta_v": 0.0}
        else:
            self._drag = {"mode": "pending-add", "lane": lane,
                          "base": self.selected.copy() if (ctrl or shift) else np.empty(0, dtype=np.int64)}

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        d = self._drag
        if d is None or self._press_pos is None:
            return
        pos = event.position()
        if d["mode"].startswith("pending"):
            if (pos - self._press_pos).manhattanLength() < DRAG_THRESHOLD_PX:
                return
            if d["mode"] == "pending-export":
                self._drag = self._press_pos = None
                self.drag_stem_out(self.classes[d["lane"]])
                return
            d["mode"] = {"pending-add": "rubber", "pending-move": "move",
                         "pending-velocity": "velocity"}[d["mode"]]
        if d["mode"] == "rubber":
            rect = QRectF(self._press_pos, pos).normalized()
            d["rect"] = rect
            self._rubber_select(rect, d["base"])
        elif d["mode"] == "move":
            anchor_class, _, t0, _ = d["anchor"]
            new_t = self.snap_time(t0 + (pos.x() - self._press_pos.x()) / self.axis.px_per_s, event.modifiers())
            d["delta_s"] = new_t - t0
            # dragging into another lane moves the hits to that class (when they all share one lane)
            lane = self.lane_at(min(max(pos.y(), RULER_H), self.height() - 1))
            target = self.classes[lane] if lane is not None else anchor_class
            if "one_lane" not in d:
                d["one_lane"] = self._selection_classes() == {anchor_class}
            d["to_class"] = target if (target != anchor_class and d["one_lane"]) else None
        elif d["mode"] == "velocity":
            d["delta_v"] = -(pos.y() - self._press_pos.y()) / max((self.lane_height() - 5) * (1 - MIN_BAR_FRACTION), 1.0)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        d, self._drag = self._drag, None
        press, self._press_pos = self._press_pos, None
        if d is None or press is None:
            return
        mode = d["mode"]
        if mode == "pending-export":  # a click (no drag) on a lane's name selects its hits
            ids = self.model.hits(self.classes[d["lane"]]).ids.tolist()
            extend = bool(event.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
            self.set_selection((self.selected.tolist() if extend else []) + ids)
        elif mode == "pending-add":
            symbol = self.classes[d["lane"]]
            t = self.snap_time(self.time_of(press.x()), event.modifiers())
            velocity = self.model.default_velocity(symbol)
            ids = self.model.add_hits({symbol: [(t, velocity)]})
            if ids:
                self.set_selection(ids)
                self.hit_auditioned.emit(symbol, velocity)
            self.set_cursor(t)
        elif mode == "move" and (abs(d["delta_s"]) > 1e-9 or d.get("to_class")):
            self.model.move_hits(self.selected.tolist(), d["delta_s"], to_class=d.get("to_class"))
        elif mode == "velocity" and abs(d["delta_v"]) > 1e-4:
            self._apply_velocity_delta(d["delta_v"])
        elif mode in ("pending-move", "pending-velocity"):
            self.set_cursor(d["anchor"][2])
        self.update()

    def stem_drag_mime(self, symbol: str) -> QMimeData | None:
        """Drag data for ``symbol``'s separated stem as a WAV file (via ``stem_provider``), or None."""
        provider = self.stem_provider
        if provider is None:
            return None
        try:
            path = provider(symbol)
        except IdmError as exc:
            self.model.error_occurred.emit(str(exc))
            return None
        return file_drag_mime([path])

    def drag_stem_out(self, symbol: str) -> None:
        """Start dragging ``symbol``'s stem out of the window (drag a lane's name)."""
        mime = self.stem_drag_mime(symbol)
        if mime is not None:
            drag = QDrag(self)
            drag.setMimeData(mime)
            drag.exec(Qt.DropAction.CopyAction)

    def _rubber_select(self, rect: QRectF, base: np.ndarray) -> None:
        t0, t1 = self.time_of(rect.left()), self.time_of(rect.right())
        lane_h = self.lane_height()
        picked = [base]
        for i, symbol in enumerate(self.classes):
            top = RULER_H + i * lane_h
            if rect.bottom() < top or rect.top() > top + lane_h:
                continue
            hits = self.model.hits(symbol)
            lo, hi = np.searchsorted(hits.times, [t0, t1])
            picked.append(hits.ids[lo:hi])
        self.set_selection(np.concatenate(picked))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta()
        steps = (delta.y() or delta.x()) / 120.0
        if steps == 0:
            return
        pos = event.position()
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.axis.zoom(1.25 ** steps, pos.x() - HEADER_W)
        elif not (mods & Qt.KeyboardModifier.ShiftModifier) and (hit := self.hit_at(pos)) is not None:
            _, hit_id, _, v = hit
            if self.is_selected(hit_id):
                self._apply_velocity_delta(steps * WHEEL_VELOCITY_STEP)
            else:
                self.model.set_velocities({hit_id: float(np.clip(v + steps * WHEEL_VELOCITY_STEP, MIN_VELOCITY, 1.0))},
                                          merge_key=("wheel", hit_id))
        else:
            self.axis.scroll(-steps * self.axis.span_s * 0.1)
        event.accept()

    # ------------------------------------------------------------------ keyboard and actions
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        mods = event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        K = Qt.Key
        if key in (K.Key_Delete, K.Key_Backspace):
            self.delete_selected()
        elif key == K.Key_Escape:
            self.clear_selection()
        elif key == K.Key_A and ctrl:
            self.select_all()
        elif key == K.Key_C and ctrl:
            self.copy_selected()
        elif key == K.Key_X and ctrl:
            self.cut_selected()
        elif key == K.Key_V and ctrl:
            self.paste()
        elif key in (K.Key_Up, K.Key_Down):
            self._apply_velocity_delta((1 if key == K.Key_Up else -1) * WHEEL_VELOCITY_STEP)
        elif key in (K.Key_Left, K.Key_Right) and ctrl:
            self.nudge(-1 if key == K.Key_Left else 1, free=bool(mods & Qt.KeyboardModifier.AltModifier))
        elif key in (K.Key_Left, K.Key_Right):
            self.axis.scroll((-1 if key == K.Key_Left else 1) * self.axis.span_s * 0.1)
        elif key in (K.Key_PageUp, K.Key_PageDown):
            self.axis.scroll((-1 if key == K.Key_PageUp else 1) * self.axis.span_s * 0.9)
        elif key in (K.Key_Plus, K.Key_Equal):
            self.axis.zoom(1.5)
        elif key == K.Key_Minus:
            self.axis.zoom(1 / 1.5)
        elif key == K.Key_Home:
            self.axis.scroll_to(0.0)
        elif key == K.Key_End:
            self.axis.scroll_to(self.model.duration_s)
        else:
            super().keyPressEvent(event)

    def set_cursor(self, time_s: float) -> None:
        self.cursor_s = min(max(float(time_s), 0.0), self.model.duration_s)
        self.cursor_moved.emit(self.cursor_s)
        self.update()

    def set_playhead(self, time_s: float | None) -> None:
        self.playhead_s = time_s
        self.update()

    def set_division(self, label: str) -> None:
        if label in grid_math.DIVISIONS:
            self.division = label
            self.update()

    def delete_selected(self) -> int:
        n = len(self.selected)
        if n and self.model.delete_hits(self.selected.tolist()):
            self.set_selection([])
            return n
        return 0

    def _selected_values(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for c in self.classes:
            hits = self.model.hits(c)
            m = np.isin(hits.ids, self.selected, assume_unique=True)
            out.update(zip(hits.ids[m].tolist(), hits.velocities[m].tolist()))
        return out

    def _apply_velocity_delta(self, delta_v: float) -> None:
        if len(self.selected):
            values = {i: float(np.clip(v + delta_v, MIN_VELOCITY, 1.0)) for i, v in self._selected_values().items()}
            self.model.set_velocities(values)

    def nudge(self, steps: int, *, free: bool = False) -> None:
        """Move the selection by ``steps`` grid steps (1 ms steps with ``free``)."""
        if len(self.selected):
            self.model.move_hits(self.selected.tolist(), steps * (0.001 if free else self.grid_step()))

    def quantise_selected(self, strength: float | None = None) -> bool:
        """Quantise the selection (every hit if nothing is selected) to the grid with ``strength``."""
        strength = self.quantise_strength if strength is None else strength
        ids = self.selected.tolist() if len(self.selected) else None
        return self.model.quantise(ids, self.division, strength)

    def copy_selected(self) -> int:
        """Copy the selection (to the system clipboard too, as JSON); returns how many hits."""
        items = []
        for c in self.classes:
            hits = self.model.hits(c)
            m = np.isin(hits.ids, self.selected, assume_unique=True)
            items += [(c, t, v) for t, v in zip(hits.times[m].tolist(), hits.velocities[m].tolist())]
        if not items:
            return 0
        self._clipboard = clip_of(items)
        data = encode_clip(self._clipboard)
        mime = QMimeData()
        mime.setData(CLIP_MIME, data.encode())
        mime.setText(data)
        QApplication.clipboard().setMimeData(mime)
        return len(items)

    def paste(self, at_s: float | None = None) -> int:
        """Paste the copied hits with the first at ``at_s`` (default: the edit cursor); one undo step."""
        items = self._clipboard
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasFormat(CLIP_MIME):
            decoded = decode_clip(bytes(mime.data(CLIP_MIME)))
            if decoded is not None:
                items = decoded
        at = self.cursor_s if at_s is None else at_s
        add, late, foreign = place_clip(items, at, self.classes, self.model.duration_s)
        ids = self.model.add_hits(add, label="paste") if add else []
        if ids:
            self.set_selection(ids)
        if late or foreign:
            why = []
            if late:
                why.append(f"{late} would fall after the end of the file")
            if foreign:
                why.append(f"{foreign} belong to drums this session does not have")
            self.model.status_message.emit(f"Pasted {len(ids)} of {len(items)} hits; " + " and ".join(why)
                                           + " (not pasted)")
        return len(ids)

    def cut_selected(self) -> int:
        """Copy the selection, then delete it (one undo step: "delete hits"); returns how many hits."""
        n = self.copy_selected()
        if n:
            self.delete_selected()
        return n
