"""The real MainWindow, offscreen, on the real engine: open, analyse, edit, undo, replace a kit sample
by a drop, export stems and MIDI (read back independently), save/reopen, re-separate, errors, cancel."""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication, QMessageBox

from gui.document import ExportOptions, SeparatorCache
from idm_host.audio import load_audio, save_audio

L = Qt.MouseButton.LeftButton
NO = Qt.KeyboardModifier.NoModifier
ANALYSIS_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, separator):
    from gui.main_window import MainWindow

    before = {id(w) for w in QApplication.topLevelWidgets()}
    w = MainWindow(separators=SeparatorCache(lambda name: separator), use_audio_device=False)
    w.confirm_close = False
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    w.deleteLater()
    qtbot.wait(10)
    QApplication.processEvents()
    leaked = [x for x in QApplication.topLevelWidgets() if id(x) not in before and x.isVisible()]
    assert not leaked, f"widgets left open: {leaked}"


def open_and_wait(qtbot, w, path):
    with qtbot.waitSignal(w.runner.done, timeout=ANALYSIS_TIMEOUT_MS):
        assert w.open_path(path)
    assert w.last_error is None, w.last_error


def pt(p: QPointF) -> QPoint:
    return QPoint(int(round(p.x())), int(round(p.y())))


def drop_file(widget, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, L, NO)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, L, NO)
    QApplication.sendEvent(widget, drop)


def test_open_edit_undo_drop_sample_export(qtbot, window, demo_loop, tmp_path):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    s = w.model.session
    assert s is not None and w.model.n_hits() > 10
    assert demo_loop.name in w.windowTitle()
    assert not w.progress_panel.isVisible()
    assert str(demo_loop.resolve()) in w.settings.value("recent_files")
    n0 = w.model.n_hits()

    # add, move and delete a hit with the mouse, then undo with the keyboard shortcut
    g = w.grid
    qtbot.mouseClick(g, L, NO, pt(g.empty_point("TT_HMT", 1.03)))
    assert [h.time_s for h in s.hits["TT_HMT"]] == [pytest.approx(g.snap_time(1.03))]
    hit = s.hits["TT_HMT"][0]
    a = g.point_of("TT_HMT", hit.time_s, hit.velocity)
    b = QPointF(g.x_of(2.02), a.y())
    qtbot.mousePress(g, L, NO, pt(a))
    qtbot.mouseMove(g, pt((a + b) / 2))
    qtbot.mouseMove(g, pt(b))
    qtbot.mouseRelease(g, L, NO, pt(b))
    assert s.hit(hit.id)[1].time_s == pytest.approx(g.snap_time(2.02))
    qtbot.mouseClick(g, Qt.MouseButton.RightButton, NO, pt(g.point_of("TT_HMT", s.hit(hit.id)[1].time_s, hit.velocity)))
    assert w.model.n_hits() == n0
    w.activateWindow()
    g.setFocus()
    for expected in (n0 + 1, n0 + 1, n0):  # undo delete, undo move, undo add
        w.model.undo_action.trigger()
        assert w.model.n_hits() in (n0, n0 + 1)
    assert w.model.n_hits() == n0 and not s.hits["TT_HMT"]
    assert w.model.redo_action.isEnabled()

    # replace the snare's one-shot by dropping a sample file on its tile
    sample = 0.5 * np.sin(2 * np.pi * 200 * np.arange(6615) / 22050) * np.exp(-np.arange(6615) / 2000)
    sample_path = save_audio(tmp_path / "my-snare.wav", np.stack([sample, sample]), 22050)
    tile = w.kit_panel.tiles["SD"]
    drop_file(tile, sample_path)
    slot = s.kit["SD"]
    assert slot.origin == "file" and slot.sample_path == str(sample_path.resolve())
    assert slot.one_shot.size == pytest.approx(6615 * 2, abs=4)  # mono, resampled to 44.1 kHz
    assert "my-snare.wav" in tile.origin_label.text() and tile.revert_button.isEnabled()
    drop_file(tile, tmp_path)  # a folder is not an audio file: ignored by dragEnter? it must not change the kit
    assert s.kit["SD"].sample_path == str(sample_path.resolve())

    # export 5 group stems as FLAC, MIDI and the kit; read them back with independent readers
    out = tmp_path / "export"
    opts = ExportOptions(folder=out, name="loop", stems=True, grouping="groups", audio_format="flac",
                         bit_depth=24, midi=True, drum_map="gm", kit=True)
    with qtbot.waitSignal(w.runner.finished, timeout=60_000) as sig:
        w.export(opts)
    written = sig.args[0]
    assert sorted(p.name for p in written if p.parent == out) == sorted(
        ["loop-KD.flac", "loop-SD.flac", "loop-HH.flac", "loop-TT.flac", "loop-CY.flac", "loop.mid"])
    merged = s.stems.merged()
    for i, grp in enumerate(merged.classes):
        a = load_audio(out / f"loop-{grp}.flac", sample_rate=None)
        assert a.samples.shape == merged.audio[i].shape
        np.testing.assert_allclose(a.samples, merged.audio[i], atol=2e-4)  # 24-bit
    notes = [m for m in mido.MidiFile(out / "loop.mid") if m.type == "note_on" and m.velocity > 0]
    assert len(notes) == w.model.n_hits()
    assert sum(1 for m in notes if m.note == 36) == len(s.hits["KD"])
    assert all(m.channel == 9 for m in notes)
    assert load_audio(out / "kit" / "SD.flac", sample_rate=None).n_frames == s.kit["SD"].one_shot.size

    # exporting again without "replace" refuses and leaves the files alone
    before = (out / "loop.mid").stat().st_mtime_ns
    with qtbot.waitSignal(w.runner.failed, timeout=10_000) as sig:
        w.export(opts)
    assert "already exists" in sig.args[0]
    assert (out / "loop.mid").stat().st_mtime_ns == before
    box = w.findChild(QMessageBox, "ErrorBox")
    assert box is not None and box.isVisible()
    box.close()


def test_save_and_reopen_keeps_edits(qtbot, window, demo_loop, tmp_path):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    ids = w.model.add_hits({"CY_CR": [(0.5, 0.9)]})
    assert ids and w.model.modified and w.windowTitle().find("*") > 0
    target = tmp_path / "loop.idmsession"
    assert w.save_to(target)
    assert not w.model.modified and "*" not in w.windowTitle()
    hits_before = {c: [(h.time_s, h.velocity) for h in hs] for c, hs in w.model.session.hits.items()}
    w.model.close()
    open_and_wait(qtbot, w, target)
    assert {c: [(h.time_s, h.velocity) for h in hs] for c, hs in w.model.session.hits.items()} == hits_before
    assert w.model.mixture is not None  # the source was found again for the waveform
    assert w.save_to(target)  # saving again to its own folder needs no flag
    assert w.save_to(tmp_path / "other.idmsession")  # a new name: the session now lives there
    assert not w.save_to(target)  # another existing session is never replaced without asking
    assert "already exists" in w.last_error


def test_reseparate_follows_the_edited_hits(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    s = w.model.session
    hh = [h.id for h in s.hits["HH_CHH"]]
    assert len(hh) > 5
    old_stems = s.stems
    old = s.stems.stem("HH_CHH").copy()
    assert np.abs(old).max() > 1e-3
    w.model.delete_hits(hh)
    with qtbot.waitSignal(w.model.stems_changed, timeout=ANALYSIS_TIMEOUT_MS):
        assert w.reseparate()
    new = s.stems.stem("HH_CHH")
    assert np.abs(new).max() < 1e-6  # no hits left: the stem is silent
    assert np.abs(s.stems.stem("KD")).max() > 1e-3
    # re-separation is one undoable edit that marks the session modified
    assert w.model.modified and "*" in w.windowTitle()
    assert w.model.undo_action.isEnabled() and "re-separate" in w.model.undo_action.text()
    new_stems = s.stems
    with qtbot.waitSignal(w.model.stems_changed, timeout=1000):
        w.model.undo_action.trigger()
    assert s.stems is old_stems
    np.testing.assert_array_equal(s.stems.stem("HH_CHH"), old)
    assert len(s.hits["HH_CHH"]) == 0  # only the re-separation was undone
    w.model.redo_action.trigger()
    assert s.stems is new_stems
    w.model.undo_action.trigger()
    w.model.undo_action.trigger()  # and the deletion: back to the analysed session
    assert [h.id for h in s.hits["HH_CHH"]] == hh and s.stems is old_stems
    assert not w.model.modified and "*" not in w.windowTitle()


def test_fresh_analysis_is_unmodified_until_edited(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    assert not w.model.modified and not w.model.session.modified and "*" not in w.windowTitle()
    with qtbot.waitSignal(w.model.modified_changed, timeout=1000) as sig:
        w.model.set_mixer("KD", gain_db=-3.0)
    assert sig.args == [True] and "*" in w.windowTitle()
    with qtbot.waitSignal(w.model.modified_changed, timeout=1000) as sig:
        w.model.undo()
    assert sig.args == [False] and "*" not in w.windowTitle()
    w.model.redo()
    assert w.model.modified and "*" in w.windowTitle()


def test_bad_file_shows_a_dialog_and_changes_nothing(qtbot, window, tmp_path):
    w = window
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file")
    with qtbot.waitSignal(w.runner.failed, timeout=30_000) as sig:
        w.open_path(bad)
    assert "broken.wav" in sig.args[0] and "Traceback" not in sig.args[0]
    assert not w.model.has_session
    box = w.findChild(QMessageBox, "ErrorBox")
    assert box is not None and "broken.wav" in box.text()
    box.close()


def test_cancel_stops_the_analysis(qtbot, window, tmp_path):
    w = window
    rng = np.random.default_rng(1)
    long = save_audio(tmp_path / "long.wav", (rng.standard_normal(44100 * 60) * 0.1).astype(np.float32), 44100)
    with qtbot.waitSignal(w.runner.cancelled, timeout=ANALYSIS_TIMEOUT_MS):
        w.open_path(long)
        qtbot.waitUntil(lambda: w.progress_panel.isVisible(), timeout=5000)
        qtbot.mouseClick(w.progress_panel.cancel_button, L)
    assert not w.model.has_session
    assert not w.progress_panel.isVisible()


def test_playback_without_a_device_moves_the_playhead(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    assert "no audio output" in w.audio_status.text()
    w.toggle_play()
    qtbot.waitUntil(lambda: (w.grid.playhead_s or 0) > 0.1, timeout=3000)
    assert w.transport.play_button.isChecked()
    w.toggle_play()
    assert not w.player.playing and not w.transport.play_button.isChecked()


def test_window_state_is_remembered(qtbot, separator, tmp_path):
    from gui.main_window import MainWindow

    w = MainWindow(separators=SeparatorCache(lambda name: separator), use_audio_device=False)
    w.resize(740, 590)  # inside the offscreen screen (800 x 600), which restoreGeometry clamps to
    w.show()
    qtbot.waitExposed(w)
    w.mixer_dock.hide()
    w.close()
    w.deleteLater()
    w2 = MainWindow(separators=SeparatorCache(lambda name: separator), use_audio_device=False)
    qtbot.addWidget(w2)
    assert (w2.width(), w2.height()) == (740, 590)
    assert w2.mixer_dock.isHidden() and not w2.kit_dock.isHidden()


def test_keyboard_shortcuts(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    g = w.grid
    g.setFocus()
    n0 = w.model.n_hits()
    ids = w.model.add_hits({"TT_HFT": [(1.01, 0.6)]})
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(g, Qt.Key.Key_Z, ctrl)
    assert w.model.n_hits() == n0
    qtbot.keyClick(g, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)
    assert w.model.n_hits() == n0 + 1
    g.set_selection(ids)
    qtbot.keyClick(g, Qt.Key.Key_Q)  # quantise the selection to 1/16 at full strength
    t = w.model.session.hit(ids[0])[1].time_s
    assert t == pytest.approx(g.snap_time(1.01))
    qtbot.keyClick(g, Qt.Key.Key_Escape)  # no job runs: Esc clears the selection
    assert g.selected_count() == 0
    qtbot.keyClick(g, Qt.Key.Key_Space)
    assert w.player.playing
    qtbot.keyClick(g, Qt.Key.Key_Space)
    assert not w.player.playing


def test_dropping_a_file_on_the_window_opens_it_and_render_plays(qtbot, window, demo_loop):
    w = window
    with qtbot.waitSignal(w.runner.done, timeout=ANALYSIS_TIMEOUT_MS):
        drop_file(w, demo_loop)
    assert w.model.has_session and w.last_error is None
    assert w.recent_menu.actions() and w.recent_menu.actions()[0].text() == str(demo_loop.resolve())
    w.transport.source.setCurrentText("Render")
    with qtbot.waitSignal(w.runner.finished, timeout=60_000):
        w.toggle_play()
    assert w.player.playing and w.player.label == "render"
    w.toggle_play()


def test_overview_click_scrolls_the_editor(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    w.axis.set_view(0.0, 1.0)
    o = w.overview
    from gui.views.onset_grid import HEADER_W

    x = HEADER_W + 0.75 * (o.width() - HEADER_W)
    qtbot.mouseClick(o, L, NO, QPoint(int(x), o.height() // 2))
    centre = w.axis.start_s + w.axis.span_s / 2
    assert centre == pytest.approx(0.75 * w.model.duration_s, abs=0.05)


def test_uncaught_exception_shows_a_dialog(qtbot, window):
    import sys

    from gui.app import show_exception

    try:
        raise ValueError("boom")
    except ValueError:
        show_exception(*sys.exc_info())
    boxes = [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]
    assert boxes and "ValueError: boom" in boxes[-1].text() and "Traceback" in boxes[-1].detailedText()
    for b in boxes:
        b.close()


def test_reseparate_masking_choice_reaches_the_engine(qtbot, window, separator, demo_loop):
    """Audio > Re-separate Masking: the stems equal the engine's own separation of the edited hits
    in the chosen mode."""
    from gui.document import RESEPARATE_MASKING

    w = window
    modes = [a.data() for a in w.masking_group.actions()]
    assert modes == [m for m, _ in RESEPARATE_MASKING] == ["auto", "adaptive", "power", "wiener"]
    assert w.reseparate_masking == "auto" and w.masking_group.checkedAction().data() == "auto"
    open_and_wait(qtbot, w, demo_loop)
    s = w.model.session
    w.model.delete_hits([h.id for h in s.hits["SD"]][:2])
    for mode in ("power", "adaptive"):
        action = next(a for a in w.masking_group.actions() if a.data() == mode)
        action.trigger()
        assert w.reseparate_masking == mode and action.isChecked()
        with qtbot.waitSignal(w.model.stems_changed, timeout=ANALYSIS_TIMEOUT_MS):
            assert w.reseparate()
        want = separator.separate(w.model.mixture, s.transcription(), kit=s.kit_arrays(), masking=mode)
        np.testing.assert_allclose(s.stems.audio, want.audio, atol=1e-6)


def test_reseparate_fits_the_kit_and_leaves_user_samples(qtbot, window, demo_loop):
    w = window
    open_and_wait(qtbot, w, demo_loop)
    s = w.model.session
    assert all(slot.fitted is None for slot in s.kit.values())  # the model's own hits: no fit
    from idm_host.session import ReplaceSample

    user = np.hanning(500).astype(np.float32)
    w.model.apply(ReplaceSample("KD", samples=user, sample_rate=s.sample_rate, name="kick.wav"))
    kd = s.kit["KD"]
    action = next(a for a in w.masking_group.actions() if a.data() == "adaptive")
    action.trigger()
    with qtbot.waitSignal(w.model.stems_changed, timeout=ANALYSIS_TIMEOUT_MS):
        assert w.reseparate()
    assert s.kit["KD"] == kd  # the user's sample is untouched
    others = [c for c in s.classes if c != "KD"]
    for c in others:
        slot = s.kit[c]
        assert slot.origin == "fitted" and slot.fitted is not None
        np.testing.assert_array_equal(slot.synthetic, s.extracted_one_shot(c)[0])
    first = {c: s.kit[c].fitted.copy() for c in others}
    assert any(not np.array_equal(first[c], s.extracted_one_shot(c)[0]) for c in others)
    assert w.kit_panel.tiles["SD"].origin_label.text() == "fitted to the record"
    with qtbot.waitSignal(w.model.stems_changed, timeout=ANALYSIS_TIMEOUT_MS):
        assert w.reseparate()  # the fit starts from the synthetic one-shots: the same kit again
    for c in others:
        np.testing.assert_allclose(s.kit[c].fitted, first[c], atol=1e-6)
    w.model.undo()
    w.model.undo()  # both re-separations undone: back to the model's one-shots
    assert all(s.kit[c].origin == "extracted" and s.kit[c].fitted is None for c in others)
    assert s.kit["KD"] == kd
