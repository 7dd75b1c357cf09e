"""Edits that tell what they did (offscreen, on a real Session): quantise merging stacked hits in one
undo step so that the MIDI export agrees, paste saying what did not fit, the hover tooltip, the
time/velocity fields, Cut, undo labels, and shortcuts without clashes."""
from __future__ import annotations

import pretty_midi
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QApplication

from gui.document import ExportOptions, export
from gui.keys import EDITING_KEYS, key_sequences, shortcut_clashes
from gui.views.hit_inspector import HitInspector
from idm_host.midi import from_midi_velocity, to_midi_velocity

CTRL = Qt.KeyboardModifier.ControlModifier


def messages(model) -> list[str]:
    got: list[str] = []
    model.status_message.connect(got.append)
    return got


def midi_notes(path) -> int:
    return sum(len(i.notes) for i in pretty_midi.PrettyMIDI(str(path)).instruments)


def test_quantise_merges_stacked_hits_in_one_step_and_the_export_agrees(qtbot, grid, session_model, tmp_path):
    m = session_model
    said = messages(m)
    # two hats 10 ms and 20 ms after a grid line at 120 BPM (1/16 = 0.125 s): both land on 0.25 s
    m.add_hits({"HH_CHH": [(0.26, 0.9), (0.27, 0.3)]})
    n_before = m.n_hits()
    grid.select_all()
    assert grid.quantise_selected(1.0)
    assert m.session.undo_label == "quantise"
    lane = m.hits("HH_CHH")
    assert len(set(lane.times.tolist())) == len(lane)  # no two hits of a lane on one time
    assert m.n_hits() == n_before - 2  # the two extra hats merged into the one already at 0.25 s
    at = lane.velocities[abs(lane.times - 0.25) < 1e-9]
    assert at.tolist() == [pytest.approx(0.9)]  # the loudest is kept
    assert said and "2 hits" in said[-1] and "merged" in said[-1]
    export(m.session, ExportOptions(folder=tmp_path, name="q", stems=False, midi=True))
    assert midi_notes(tmp_path / "q.mid") == m.n_hits()
    m.undo()  # one step brings back the quantise and the merged hits
    assert m.n_hits() == n_before
    assert sorted(m.hits("HH_CHH").times.tolist())[2:4] == [pytest.approx(0.26), pytest.approx(0.27)]


def test_half_strength_quantise_merges_nothing(grid, session_model):
    m = session_model
    m.add_hits({"HH_CHH": [(0.26, 0.9)]})
    n = m.n_hits()
    grid.select_all()
    grid.quantise_selected(0.5)
    assert m.n_hits() == n


def test_paste_near_the_end_reports_the_hits_that_did_not_fit(qtbot, grid, session_model):
    m = session_model
    said = messages(m)
    grid.set_selection(m.hits("KD").ids)  # 4 kicks, 1 s apart
    assert grid.copy_selected() == 4
    grid.set_cursor(m.duration_s - 1.5)
    qtbot.keyClick(grid, Qt.Key.Key_V, CTRL)
    assert len(m.hits("KD")) == 4 + 2
    assert said[-1] == "Pasted 2 of 4 hits; 2 would fall after the end of the file (not pasted)"
    assert m.session.undo_label == "paste"
    said.clear()
    grid.set_cursor(0.5)
    assert grid.paste() == 4 and not said  # everything fitted: nothing to say


def test_cut_copies_and_deletes_in_one_step(qtbot, grid, session_model):
    m = session_model
    grid.set_selection(m.hits("SD").ids)
    qtbot.keyClick(grid, Qt.Key.Key_X, CTRL)
    assert len(m.hits("SD")) == 0
    grid.set_cursor(1.0)
    assert grid.paste() == 4
    m.undo()
    m.undo()
    assert len(m.hits("SD")) == 4


def test_hover_tooltip_gives_exact_time_and_velocity(grid, session_model):
    t = float(session_model.hits("SD").times[1])
    text = grid.hit_tooltip(grid.point_of("SD", t, 0.75))
    assert f"{t:.4f} s" in text and "Snare" in text
    assert f"MIDI {to_midi_velocity(0.75)}" in text and "velocity 0.750" in text
    assert grid.hit_tooltip(grid.empty_point("TT_LMT", 1.3)) == ""


def test_inspector_types_a_velocity_and_a_time_undoably(qtbot, grid, session_model):
    m = session_model
    ins = HitInspector(m, grid)
    qtbot.addWidget(ins)
    assert not ins.velocity.isEnabled() and ins.velocity.text() == "–"
    ids = m.hits("KD").ids[:2].tolist()
    grid.set_selection(ids)
    assert ins.velocity.isEnabled() and ins.time.value() == pytest.approx(0.0)
    ins.velocity.setValue(100)
    assert m.hits("KD").velocities[:2].tolist() == [pytest.approx(from_midi_velocity(100))] * 2
    assert all(to_midi_velocity(float(v)) == 100 for v in m.hits("KD").velocities[:2])
    ins.time.setValue(0.5)  # the earliest goes to 0.5 s; the other keeps its distance (1 s)
    assert m.hits("KD").times[:2].tolist() == [pytest.approx(0.5), pytest.approx(1.5)]
    m.undo()
    assert m.hits("KD").times[:2].tolist() == [pytest.approx(0.0), pytest.approx(1.0)]
    m.undo()
    assert m.hits("KD").velocities[0] == pytest.approx(0.9)


def test_key_sequences_drop_repeats_of_a_standard_key():
    from PyQt6.QtGui import QKeySequence

    seqs = [s.toString() for s in key_sequences(QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z", "Ctrl+Y")]
    assert len(seqs) == len(set(seqs)) and "Ctrl+Shift+Z" in seqs and "Ctrl+Y" in seqs
    a, b = QAction("One"), QAction("Two")
    a.setShortcut(QKeySequence("Ctrl+K"))
    b.setShortcuts([QKeySequence("Ctrl+K"), QKeySequence("Ctrl+J")])
    assert shortcut_clashes([a, b]) == {"Ctrl+K": ["One", "Two"]}


def test_main_window_menus_shortcuts_and_help(qtbot):
    from gui.main_window import MainWindow

    w = MainWindow(use_audio_device=False)
    qtbot.addWidget(w)
    assert shortcut_clashes(w.findChildren(QAction)) == {}
    edit = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Edit")
    names = [a.text().replace("&", "") for a in edit.actions() if not a.isSeparator()]
    assert names[:5] == ["Undo", "Redo", "Cut", "Copy", "Paste"]
    assert "Ctrl+X" in [s.toString() for s in w.cut_action.shortcuts()]
    w._show_keys()
    table = w.keys_dialog.table
    assert table.rowCount() == len(EDITING_KEYS) and table.columnCount() == 3
    assert table.item(0, 1).font().fixedPitch() or table.item(0, 1).font().family() != w.font().family()
    w.keys_dialog.close()


def test_window_and_docks_fit_a_1280x720_screen(qtbot):
    from gui.main_window import MainWindow
    from gui.screen_fit import FRAME_ALLOWANCE

    w = MainWindow(use_audio_device=False)
    qtbot.addWidget(w)
    for d in (w.kit_dock, w.mixer_dock) + ((w.osc_dock,) if w.osc_panel is not None else ()):
        d.show()
    w.show()
    qtbot.waitExposed(w)
    QApplication.processEvents()
    need = w.minimumSizeHint().expandedTo(w.minimumSize())
    assert need.width() + FRAME_ALLOWANCE.width() <= 1280 and need.height() + FRAME_ALLOWANCE.height() <= 720, need
    # the window opened inside the (offscreen) screen
    avail = w.screen().availableGeometry()
    assert w.width() <= avail.width() and w.height() <= avail.height()


def test_kit_buttons_and_mixer_combos_show_their_whole_text(qtbot, session_model):
    from gui.views.kit_panel import KitPanel
    from gui.views.mixer import MixerPanel

    kit, mixer = KitPanel(session_model), MixerPanel(session_model)
    for w in (kit, mixer):
        qtbot.addWidget(w)
        w.show()
    qtbot.waitExposed(mixer)
    for tile in kit.tiles.values():
        b = tile.replace_button
        assert b.width() >= b.sizeHint().width(), (b.width(), b.sizeHint().width())
    for strip in mixer.strips.values():
        c = strip.fx_combo
        longest = max(c.fontMetrics().horizontalAdvance(c.itemText(i)) for i in range(c.count()))
        assert c.width() >= max(c.sizeHint().width(), longest + 30), (c.width(), longest)  # text + arrow


def test_long_status_messages_end_at_a_word_with_an_ellipsis(qtbot):
    from gui.views.status_bar import StatusBar, elide_words

    assert elide_words("one two three", lambda t: len(t) <= 20) == "one two three"
    assert elide_words("one two three", lambda t: len(t) <= 10) == "one two …"
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.resize(300, 24)
    bar.show()
    text = "a long message " * 20
    bar.showMessage(text)
    assert bar.currentMessage().endswith("…") and bar.last_message == text and bar.toolTip() == text
    assert bar.fontMetrics().horizontalAdvance(bar.currentMessage()) <= 300


def test_counts_read_in_the_singular_and_the_plural():
    from gui.views.osc_panel import plural

    assert [plural(1, "analysis"), plural(2, "analysis"), plural(0, "message"), plural(1, "job")] == [
        "1 analysis", "2 analyses", "0 messages", "1 job"]
