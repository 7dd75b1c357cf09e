"""The window's file handling (offscreen, real Session and files): drops of its own drags are ignored,
a dropped .mid imports hits after a question, a plain folder is not opened as a session, and the
export dialog remembers its folder and options (never defaulting to a folder the user cannot write)."""
from __future__ import annotations

import os
from pathlib import Path

import pretty_midi
import pytest
from PyQt6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication, QMessageBox

from gui import document
from gui.dialogs.export import ExportDialog
from gui.settings import make_settings, writable_folder
from gui.views.transport import file_drag_mime

L = Qt.MouseButton.LeftButton
NO = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def window(qtbot, loop_analysis, loop_wav):
    from gui.main_window import MainWindow

    w = MainWindow(use_audio_device=False)
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w._show_opened(document.analysis_to_opened(loop_analysis, loop_wav))
    yield w
    for box in QApplication.topLevelWidgets():
        if isinstance(box, QMessageBox) and box.isVisible():
            box.close()
    w.close()


def drag_events(w, mime: QMimeData) -> tuple[QDragEnterEvent, QDropEvent]:
    pos = QPointF(w.width() / 2, w.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, L, NO)
    QApplication.sendEvent(w, enter)
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, L, NO)
    QApplication.sendEvent(w, drop)
    return enter, drop


def answer_next_question(qtbot, button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Press ``button`` on the next message box that opens (its text goes to ``seen``)."""

    def press() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(20, press)

    QTimer.singleShot(20, press)


def write_drum_midi(path: Path, notes: list[tuple[int, float]]) -> Path:
    """A General MIDI drum file written by pretty_midi (not by idm_host)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for pitch, t in notes:
        drums.notes.append(pretty_midi.Note(velocity=100, pitch=pitch, start=t, end=t + 0.05))
    pm.instruments.append(drums)
    pm.write(str(path))
    return path


def test_own_drags_dropped_on_the_window_are_ignored(qtbot, window, tmp_path):
    w = window
    n = w.model.n_hits()
    midi = w._midi_for_drag()  # what the "⇲ MIDI" button drags
    enter, drop = drag_events(w, file_drag_mime([midi]))
    assert not enter.isAccepted() and not drop.isAccepted()
    stem = w.grid.stem_drag_mime("KD")  # a lane's stem
    enter, _ = drag_events(w, stem)
    assert not enter.isAccepted()
    qtbot.wait(50)
    assert not w.runner.busy and w.model.n_hits() == n and QApplication.activeModalWidget() is None


def test_a_dropped_midi_file_imports_its_hits_after_a_question(qtbot, window, tmp_path):
    w = window
    m = w.model
    n = m.n_hits()
    kicks = len(m.hits("KD"))
    midi = write_drum_midi(tmp_path / "groove.mid", [(36, 0.3), (36, 0.7), (38, 1.1), (36, 10.0)])
    seen: list[str] = []
    answer_next_question(qtbot, QMessageBox.StandardButton.Yes, seen)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(midi))])
    enter, drop = drag_events(w, mime)
    assert enter.isAccepted()
    qtbot.waitUntil(lambda: m.n_hits() == n + 3, timeout=5000)
    assert "Add the 3 hits of groove.mid" in seen[0] and "1 more fall after the end" in seen[0]
    assert not w.runner.busy  # nothing was decoded as audio
    assert len(m.hits("KD")) == kicks + 2 and m.session.undo_label == "import MIDI"
    assert sorted(set(m.hits("KD").times.tolist()) - {0.0, 1.0, 2.0, 3.0}) == [pytest.approx(0.3, abs=1e-3),
                                                                                 pytest.approx(0.7, abs=1e-3)]
    m.undo()
    assert m.n_hits() == n
    # answering No changes nothing
    answer_next_question(qtbot, QMessageBox.StandardButton.No, seen)
    assert w.import_midi(midi) == 0 and m.n_hits() == n


def test_open_session_on_a_plain_folder_says_it_is_not_a_session(qtbot, window, tmp_path):
    w = window
    plain = tmp_path / "just-a-folder"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    assert not w.open_path(plain)
    assert "not an .idmsession" in w.last_error and "session.json" in w.last_error
    assert "audio file" not in w.last_error.split(";")[0]
    assert not w.runner.busy


def test_export_dialog_remembers_folder_and_options(qtbot, tmp_path):
    settings = make_settings()
    settings.clear()
    d = ExportDialog(tmp_path, "take1", settings=settings)
    qtbot.addWidget(d)
    d.by_group.setChecked(True)
    d.format.setCurrentText("flac")
    d.mix.setChecked(True)
    d.midi.setChecked(False)
    d.overwrite.setChecked(True)
    d.drum_map.setCurrentIndex(d.drum_map.count() - 1)
    chosen_map = d.drum_map.currentData()
    d.remember()
    d2 = ExportDialog(tmp_path / "elsewhere", "take2", settings=settings)
    qtbot.addWidget(d2)
    o = d2.options()
    assert (o.grouping, o.audio_format, o.mix, o.midi, o.drum_map) == ("groups", "flac", True, False, chosen_map)
    assert not o.overwrite  # replacing files is chosen each time
    assert settings.value("export/folder") == str(tmp_path)


def test_writable_folder_skips_missing_and_unwritable_folders(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert writable_folder(None, tmp_path / "missing", a_file, tmp_path) == tmp_path
    assert writable_folder(tmp_path / "missing") == Path.home()
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert writable_folder(locked, tmp_path) == tmp_path


def test_export_dialog_opens_on_the_remembered_folder(qtbot, window, tmp_path):
    w = window
    target = tmp_path / "exports"
    target.mkdir()
    w.settings.setValue("export/folder", str(target))
    seen: list[str] = []

    def look() -> None:
        d = QApplication.activeModalWidget()
        if isinstance(d, ExportDialog):
            seen.append(d.folder.text())
            d.reject()
        else:
            QTimer.singleShot(20, look)

    QTimer.singleShot(20, look)
    w.export_dialog()
    assert seen == [str(target)]


def _suggested_by_save_as(qtbot, w) -> str:
    from PyQt6.QtWidgets import QFileDialog

    seen: list[str] = []

    def look() -> None:
        d = QApplication.activeModalWidget()
        if isinstance(d, QFileDialog):
            seen.append(d.selectedFiles()[0])
            d.reject()
        else:
            QTimer.singleShot(20, look)

    QTimer.singleShot(20, look)
    assert not w.save_as()
    return seen[0]


def test_save_as_suggests_the_remembered_folder_then_the_source_folder(qtbot, window, loop_wav, tmp_path):
    w = window
    w.settings.remove("session/folder")
    assert _suggested_by_save_as(qtbot, w) == str(loop_wav.parent / "loop.idmsession")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    w.settings.setValue("session/folder", str(sessions))
    assert _suggested_by_save_as(qtbot, w) == str(sessions / "loop.idmsession")
    sessions.rmdir()  # a remembered folder that is gone is skipped
    assert _suggested_by_save_as(qtbot, w) == str(loop_wav.parent / "loop.idmsession")
