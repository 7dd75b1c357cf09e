"""The onset grid driven with real mouse, wheel and key events on a real Session (offscreen)."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import QPoint, QPointF, Qt

from gui.views import grid_math
from gui.views.onset_grid import HEADER_W, MIN_BAR_FRACTION, RULER_H, OnsetGridView
from gui.views.time_axis import TimeAxis

L = Qt.MouseButton.LeftButton
NO = Qt.KeyboardModifier.NoModifier


def times(model, cls):
    return [round(h.time_s, 6) for h in model.session.hits[cls]]


def pt(p: QPointF) -> QPoint:
    return QPoint(int(round(p.x())), int(round(p.y())))


def drag(qtbot, w, a: QPointF, b: QPointF, mods=NO, steps=4):
    qtbot.mousePress(w, L, mods, pt(a))
    for k in range(1, steps + 1):
        p = a + (b - a) * (k / steps)
        qtbot.mouseMove(w, pt(p))
    qtbot.mouseRelease(w, L, mods, pt(b))


def test_click_adds_a_snapped_hit_and_alt_click_a_free_one(qtbot, grid, session_model):
    qtbot.mouseClick(grid, L, NO, pt(grid.empty_point("SD", 1.04)))
    assert 1.0 in times(session_model, "SD")
    x = int(round(grid.x_of(1.31)))
    qtbot.mouseClick(grid, L, Qt.KeyboardModifier.AltModifier, QPoint(x, int(grid.empty_point("SD", 1.31).y())))
    expected = grid.time_of(x)
    assert any(abs(t - expected) < 1e-6 for t in times(session_model, "SD"))
    assert len(session_model.session.hits["SD"]) == 6
    assert grid.selected_count() == 1  # the new hit is selected


def test_drag_moves_with_snap_and_undo_redo_restore(qtbot, grid, session_model):
    kd = session_model.session.hits["KD"]
    hit = next(h for h in kd if abs(h.time_s - 1.0) < 1e-9)
    drag(qtbot, grid, grid.point_of("KD", 1.0, hit.velocity), grid.point_of("KD", 1.27, hit.velocity))
    assert times(session_model, "KD") == [0.0, 1.25, 2.0, 3.0]
    assert session_model.session.hit(hit.id)[1].time_s == pytest.approx(1.25)
    session_model.undo_action.trigger()
    assert times(session_model, "KD") == [0.0, 1.0, 2.0, 3.0]
    session_model.redo_action.trigger()
    assert times(session_model, "KD") == [0.0, 1.25, 2.0, 3.0]


def test_right_click_deletes_and_undo_brings_the_same_hit_back(qtbot, grid, session_model):
    before = session_model.session.hits["SD"]
    qtbot.mouseClick(grid, Qt.MouseButton.RightButton, NO, pt(grid.point_of("SD", 1.5, 0.75)))
    assert times(session_model, "SD") == [0.5, 2.5, 3.5]
    session_model.undo()
    assert session_model.session.hits["SD"] == before


def test_rubber_band_select_then_delete_is_one_undo_step(qtbot, grid, session_model):
    lane = grid.lane_rect(grid.classes.index("HH_CHH"))
    a = QPointF(grid.x_of(0.2), lane.top() + 2)
    b = QPointF(grid.x_of(1.3), lane.bottom() - 2)
    drag(qtbot, grid, a, b)
    assert grid.selected_count() == 5  # 0.25, 0.5, 0.75, 1.0, 1.25
    qtbot.keyClick(grid, Qt.Key.Key_Delete)
    assert len(session_model.session.hits["HH_CHH"]) == 16 - 5
    session_model.undo()
    assert len(session_model.session.hits["HH_CHH"]) == 16


def test_copy_paste_at_the_edit_cursor(qtbot, grid, session_model):
    grid.set_selection(session_model.hits("KD").ids)
    qtbot.keyClick(grid, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseClick(grid, L, NO, QPoint(int(round(grid.x_of(0.5))), RULER_H // 2))  # ruler: set cursor
    assert grid.cursor_s == pytest.approx(0.5, abs=1 / grid.axis.px_per_s)
    qtbot.keyClick(grid, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    got = times(session_model, "KD")
    assert len(got) == 8
    c = grid.cursor_s
    for t in (0.0, 1.0, 2.0, 3.0):
        assert any(abs(g - (c + t)) < 1e-6 for g in got)
    session_model.undo()
    assert times(session_model, "KD") == [0.0, 1.0, 2.0, 3.0]


def test_velocity_by_wheel_and_by_shift_drag(qtbot, grid, session_model):
    hit = session_model.session.hits["SD"][0]
    p = grid.point_of("SD", hit.time_s, hit.velocity)
    from PyQt6.QtCore import QPoint as P
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    ev = QWheelEvent(p, grid.mapToGlobal(p), P(0, 0), P(0, 120), Qt.MouseButton.NoButton, NO,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(grid, ev)
    v1 = session_model.session.hit(hit.id)[1].velocity
    assert v1 == pytest.approx(hit.velocity + 0.05)
    lane_h = grid.lane_height()
    start = grid.point_of("SD", hit.time_s, v1)
    drag(qtbot, grid, start, start - QPointF(0, 0.15 * (lane_h - 5) * (1 - MIN_BAR_FRACTION)), Qt.KeyboardModifier.ShiftModifier)
    v2 = session_model.session.hit(hit.id)[1].velocity
    assert v2 == pytest.approx(v1 + 0.15, abs=0.03)
    assert session_model.session.hit(hit.id)[1].time_s == hit.time_s


def test_quantise_with_strength(qtbot, grid, session_model):
    ids = session_model.add_hits({"TT_LMT": [(1.3, 0.8)]})
    grid.set_selection(ids)
    grid.quantise_selected(0.5)
    assert session_model.session.hit(ids[0])[1].time_s == pytest.approx(1.3 + 0.5 * (1.25 - 1.3))


def test_zoom_keeps_the_time_under_the_mouse_and_keys_scroll(qtbot, grid):
    axis = grid.axis
    x = 400.0
    t_before = grid.time_of(x)
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    ev = QWheelEvent(QPointF(x, 30), grid.mapToGlobal(QPointF(x, 30)), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    pps = axis.px_per_s
    QApplication.sendEvent(grid, ev)
    assert axis.px_per_s == pytest.approx(pps * 1.25 ** 2)
    assert grid.time_of(x) == pytest.approx(t_before, abs=1e-6)
    start = axis.start_s
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    assert axis.start_s > start
    qtbot.keyClick(grid, Qt.Key.Key_Home)
    assert axis.start_s == 0.0
    qtbot.keyClick(grid, Qt.Key.Key_Minus)
    assert axis.px_per_s < pps * 1.25 ** 2


def test_hits_are_drawn_where_they_are(qtbot, grid, session_model):
    img = grid.grab().toImage()
    hit = session_model.session.hits["KD"][1]
    p = grid.point_of("KD", hit.time_s, hit.velocity)
    lane = grid.lane_rect(grid.classes.index("KD"))
    on = img.pixelColor(int(p.x()), int(lane.bottom() - 5))
    off = img.pixelColor(int(grid.x_of(hit.time_s + 0.06)), int(lane.bottom() - 5))
    assert on.red() > off.red() + 80  # the kick's orange bar vs the lane background
    grid.set_selection([hit.id])
    img = grid.grab().toImage()
    top = grid.hit_top("KD", hit.velocity)
    outline = img.pixelColor(int(p.x()), int(top - 1))
    assert outline.lightness() > 200  # selected hits are outlined in white


def test_grid_math_is_the_tempo_model():
    """The editor has no grid arithmetic of its own: snapping, quantising and bar lines are tempo.py's."""
    from idm_host import tempo

    assert grid_math.snap is tempo.snap and grid_math.quantize is tempo.quantize
    assert grid_math.bar_beat is tempo.bar_beat
    t = tempo.Tempo(128.0, 0.1, 3)
    for label in grid_math.DIVISIONS:
        assert grid_math.step_s(t, label) == tempo.grid_step_s(t, label)
    assert not hasattr(grid_math, "BEATS_PER_BAR")


def test_without_a_session_clicks_do_nothing(qtbot):
    from gui.session_model import SessionModel

    model = SessionModel()
    g = OnsetGridView(model, TimeAxis())
    qtbot.addWidget(g)
    g.resize(600, 300)
    qtbot.mouseClick(g, L, NO, QPoint(HEADER_W + 50, 100))
    assert model.n_hits() == 0 and not model.undo_action.isEnabled()


def test_clicking_a_lane_name_selects_its_hits(qtbot, grid, session_model):
    y = int(grid.lane_rect(grid.classes.index("SD")).center().y())
    qtbot.mouseClick(grid, L, NO, QPoint(20, y))
    assert sorted(grid.selected_ids()) == sorted(session_model.hits("SD").ids.tolist())
    y = int(grid.lane_rect(grid.classes.index("KD")).center().y())
    qtbot.mouseClick(grid, L, Qt.KeyboardModifier.ShiftModifier, QPoint(20, y))
    assert grid.selected_count() == len(session_model.hits("SD")) + len(session_model.hits("KD"))


def test_dragging_a_hit_into_another_lane_changes_its_class(qtbot, grid, session_model):
    hit = session_model.session.hits["SD"][0]
    a = grid.point_of("SD", hit.time_s, hit.velocity)
    b = QPointF(grid.x_of(hit.time_s + 0.25), grid.lane_rect(grid.classes.index("TT_LMT")).center().y())
    drag(qtbot, grid, a, b)
    cls, moved = session_model.session.hit(hit.id)
    assert cls == "TT_LMT" and moved.time_s == pytest.approx(hit.time_s + 0.25)
    assert len(session_model.session.hits["SD"]) == 3
    session_model.undo()
    assert session_model.session.hit(hit.id)[0] == "SD"
