"""The window's document commands: open (audio or session), save, export, re-separate, the files
dragged out of the window, and files dropped on it. A mixin of :class:`gui.main_window.MainWindow`,
which provides ``model``, ``runner``, ``settings``, ``_run`` and the feedback methods."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QDialog, QFileDialog, QMessageBox

from idm_host.errors import IdmError

from . import document
from .dialogs.export import ExportDialog
from .files import AUDIO_FILTER
from .settings import push_recent_file, recent_files, remembered_folder, writable_folder
from .views.transport import is_own_drag

log = logging.getLogger(__name__)



class FileActions:
    """Open, save, export, re-separate, drag out and drop (mixed into the main window)."""

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", self._last_dir(), AUDIO_FILTER)
        if path:
            self.open_path(path)

    def open_session_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open session (.idmsession folder)", self._last_dir())
        if path:
            self.open_path(path)

    def _last_dir(self) -> str:
        items = recent_files(self.settings)
        return str(Path(items[0]).parent) if items else str(Path.home())

    def open_path(self, path: str | Path) -> bool:
        """Analyse an audio file, or open a ``.idmsession`` folder, on the worker."""
        if not self._maybe_save():
            return False
        p = Path(path)
        if p.is_dir() and not document.is_session_path(p):
            self._on_runner_failed(f"{p}: not an .idmsession (there is no session.json in this folder); "
                                   "choose a folder saved by Save Session, or open an audio file")
            return False
        if document.is_session_path(p):
            return self._run(f"Opening {p.name}", document.open_session, self._show_opened, p)
        return self._run(f"Analysing {p.name}", document.analyse_file, self._show_opened, p,
                         separators=self.separators, model=self.model_name)

    def _show_opened(self, opened: document.Opened) -> None:
        self.player.stop()
        self.model.set_session(opened.session, opened.mixture)
        self.axis.set_duration(opened.session.duration_s)
        push_recent_file(self.settings, opened.path)
        self._fill_recent_menu()
        problem = opened.session.source_problem
        self.statusBar().showMessage(problem or f"Opened {opened.path.name}: {self.model.n_hits()} hits", 8000)

    def save(self) -> bool:
        s = self.model.session
        if s is None:
            return False
        if s.path is None:
            return self.save_as()
        return self.save_to(s.path)

    def save_as(self) -> bool:
        s = self.model.session
        if s is None:
            return False
        source = Path(s.source.path) if s.source.path else None
        folder = writable_folder(remembered_folder(self.settings, "session/folder"), source and source.parent)
        suggested = folder / f"{source.stem if source else 'drums'}.idmsession"
        path, _ = QFileDialog.getSaveFileName(self, "Save session as", str(suggested),
                                              "idm-host session (*.idmsession)")
        if not path:
            return False
        self.settings.setValue("session/folder", str(Path(path).parent))
        return self.save_to(path, overwrite=True)

    def save_to(self, path: str | Path, *, overwrite: bool = False) -> bool:
        """Save the session (synchronously: saving is quick and must finish before closing)."""
        s = self.model.session
        if s is None:
            return False
        try:
            out = document.save_session(s, path, overwrite=overwrite)
        except IdmError as exc:
            self._on_model_error(str(exc))
            return False
        self.model.mark_saved()
        push_recent_file(self.settings, out)
        self._fill_recent_menu()
        self._update_title()
        self.statusBar().showMessage(f"Saved {out}", 5000)
        return True

    def _maybe_save(self) -> bool:
        if not self.model.modified or not self.confirm_close:
            return True
        answer = QMessageBox.question(
            self, "idm-studio", "The session has unsaved edits. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # ------------------------------------------------------------------ export / re-separate
    def export_dialog(self) -> None:
        s = self.model.session
        if s is None:
            return
        source = Path(s.source.path) if s.source.path else None
        # the folder used last time, else the source's folder, else home: never one this user cannot write
        folder = writable_folder(remembered_folder(self.settings, "export/folder"), source and source.parent)
        name = source.stem if source else "drums"
        dialog = ExportDialog(folder, name, self, has_stems=s.stems is not None, settings=self.settings)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            dialog.remember()
            self.export(dialog.options())
        dialog.deleteLater()

    def export(self, options: document.ExportOptions) -> bool:
        s = self.model.session
        if s is None:
            return False
        return self._run("Exporting", document.export, self._on_exported, s, options)

    def _on_exported(self, paths: list[Path]) -> None:
        self.last_export = paths
        self.statusBar().showMessage(f"Exported {len(paths)} file(s) to {paths[0].parent if paths else ''}", 8000)

    def reseparate(self) -> bool:
        s = self.model.session
        if s is None:
            return False
        return self._run("Re-separating with your edits", document.reseparate, self._on_reseparated, s,
                         self.model.mixture, separators=self.separators,
                         masking=getattr(self, "reseparate_masking", "auto"))

    def _on_reseparated(self, result: Any) -> None:
        if self.model.set_stems_and_kit(result.stems, result.fitted, label="re-separate"):
            what = "Stems and the fitted kit" if result.fitted else "Stems"
            self.statusBar().showMessage(f"{what} updated from your edited hits (Undo restores the old ones)", 6000)

    # ------------------------------------------------------------------ drag out
    # ------------------------------------------------------------------ drag out, drop in
    def _midi_for_drag(self) -> Path:
        s = self.model.session
        if s is None:
            raise IdmError("open a file first; there are no hits to drag")
        return document.write_temp_midi(s, Path(self._tmp.name))

    def _stem_for_drag(self, symbol: str) -> Path:
        s = self.model.session
        if s is None:
            raise IdmError("open a file first; there are no stems to drag")
        return document.write_temp_stem(s, symbol, Path(self._tmp.name))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        # our own drags (the MIDI button, a lane's stem) dropped back on the window mean nothing
        if is_own_drag(event):
            event.ignore()
        elif event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        if is_own_drag(event):
            event.ignore()
            return
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            path = urls[0].toLocalFile()
            if Path(path).suffix.lower() in document.MIDI_SUFFIXES:
                QTimer.singleShot(0, lambda: self.import_midi(path))
            else:
                QTimer.singleShot(0, lambda: self.open_path(path))

    def import_midi(self, path: str | Path, *, ask: bool = True) -> int:
        """Add the hits of a drum MIDI file to the session (after a question), as one undo step."""
        s = self.model.session
        p = Path(path)
        if s is None:
            self._on_model_error(f"{p.name}: open an audio file first; a MIDI file adds hits to its session")
            return 0
        try:
            hits, outside = document.read_midi_hits(p, s)
        except IdmError as exc:
            self._on_runner_failed(str(exc))
            return 0
        n = sum(len(v) for v in hits.values())
        if not n:
            self._on_model_error(f"{p.name}: no drum hits this session's drums can take")
            return 0
        late = f" ({outside} more fall after the end of the audio and are left out)" if outside else ""
        if ask and QMessageBox.question(
                self, "Import MIDI", f"Add the {n} hits of {p.name} to this session's hits?{late}\n"
                "Undo removes them again.") != QMessageBox.StandardButton.Yes:
            return 0
        ids = self.model.add_hits(hits, label="import MIDI")
        if ids:
            self.grid.set_selection(ids)
            self.statusBar().showMessage(f"Imported {len(ids)} hits from {p.name}{late}", 8000)
        return len(ids)

