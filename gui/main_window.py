"""The main window: menus, actions, docks and wiring. The work happens in the views, the session
model and :mod:`gui.document` (run on the job runner)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QByteArray, Qt, QTimer
from PyQt6.QtGui import QAction, QActionGroup, QCloseEvent, QShowEvent
from PyQt6.QtWidgets import (
    QDockWidget, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QVBoxLayout, QWidget,
)

from idm_host.errors import IdmError
from idm_host.levels import db_to_gain

from . import document, screen_fit
from .dialogs.keys_help import EditingKeysDialog
from .jobs import JobRunner
from .keys import StandardKey, key_sequences
from .playback import AudioPlayer
from .session_model import SessionModel
from .settings import make_settings, recent_files
from .views.hit_inspector import HitInspector
from .views.kit_panel import KitPanel
from .views.mixer import MixerPanel
from .views.onset_grid import OnsetGridView
from .views.progress_bar import ProgressPanel
from .views.status_bar import StatusBar
from .views.time_axis import TimeAxis
from .views.transport import TransportBar
from .views.waveform import OverviewBar, WaveformView
from .window_files import FileActions

log = logging.getLogger(__name__)

#: The height the Kit and Mixer docks open at (less on a small screen).
DOCK_H = 290


class MainWindow(FileActions, QMainWindow):
    """idm-studio's window. ``model`` names the analysis model; ``separators`` may be shared (tests)."""

    def __init__(self, *, model: str = "default", separators: document.SeparatorCache | None = None,
                 use_audio_device: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("idm-studio")
        self.setAcceptDrops(True)
        self.model_name = model
        self.separators = separators or document.SeparatorCache()
        self.settings = make_settings()
        self.confirm_close = True
        self.last_error: str | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="idm-studio-")
        self._on_job_done: Callable[[Any], None] | None = None
        self.model = SessionModel(self)
        self.runner = JobRunner(self)
        self.player = AudioPlayer(self, use_device=use_audio_device)
        self.axis = TimeAxis(self)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_status()
        self._wire()
        screen_fit.open_size(self)
        self._restore_settings()
        self._update_title()
        self._placed = False

    # ------------------------------------------------------------------ construction
    def _build_central(self) -> None:
        self.transport = TransportBar(self.model, self._midi_for_drag)
        self.transport.setObjectName("TransportBar")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.transport)
        self.overview = OverviewBar(self.model, self.axis)
        self.waveform = WaveformView(self.model, self.axis)
        self.grid = OnsetGridView(self.model, self.axis)
        self.grid.stem_provider = self._stem_for_drag
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        for w in (self.overview, self.waveform):
            lay.addWidget(w)
        lay.addWidget(self.grid, 1)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.kit_panel = KitPanel(self.model)
        self.mixer = MixerPanel(self.model)
        self.kit_dock = self._dock("Kit", "KitDock", self.kit_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.mixer_dock = self._dock("Mixer", "MixerDock", self.mixer, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.kit_dock, self.mixer_dock)
        self.kit_dock.raise_()
        self.osc_panel = None
        try:
            from .views.osc_panel import OscPanel
        except ImportError as exc:  # the OSC backend is optional
            log.info("OSC panel unavailable: %s", exc)
        else:
            self.osc_panel = OscPanel(self._osc_analyze)
            scroll = QScrollArea()  # on a short screen the panel scrolls instead of holding the window tall
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(self.osc_panel)
            self.osc_dock = self._dock("OSC bridge", "OscDock", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
            self.osc_dock.hide()
            self.osc_panel.analysis_received.connect(self._on_osc_analysis)

    def _action(self, text: str, slot: Callable, shortcut: Any = None, *, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcuts(key_sequences(*(shortcut if isinstance(shortcut, list) else [shortcut])))
        a.setStatusTip(tip)
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        SK = StandardKey
        A = self._action
        self.open_action = A("&Open Audio…", self.open_dialog, SK.Open, tip="Analyse an audio file")
        self.open_session_action = A("Open &Session…", self.open_session_dialog, "Ctrl+Shift+O")
        self.save_action = A("&Save Session", self.save, SK.Save)
        self.save_as_action = A("Save Session &As…", self.save_as, SK.SaveAs)
        self.export_action = A("&Export…", self.export_dialog, "Ctrl+E", tip="Stems, mix, MIDI, kit")
        self.reseparate_action = A("&Re-separate with My Edits", self.reseparate, "Ctrl+R",
                                   tip="Run the separation again with the edited hits as the onsets")
        self.play_action = A("&Play / Stop", self.toggle_play, "Space")
        self.quit_action = A("&Quit", self.close, SK.Quit)
        self.quantise_action = A("&Quantise", lambda: self.grid.quantise_selected(
            self.transport.strength.value() / 100.0), "Q")
        self.select_all_action = A("Select &All", self.grid.select_all, SK.SelectAll)
        self.delete_action = A("&Delete", self.grid.delete_selected, SK.Delete)
        self.cut_action = A("Cu&t", self.grid.cut_selected, SK.Cut)
        self.copy_action = A("&Copy", self.grid.copy_selected, SK.Copy)
        self.paste_action = A("&Paste", self.grid.paste, SK.Paste, tip="Paste at the edit cursor (click the ruler)")
        self.zoom_in_action = A("Zoom &In", lambda: self.axis.zoom(1.5), SK.ZoomIn)
        self.zoom_out_action = A("Zoom &Out", lambda: self.axis.zoom(1 / 1.5), SK.ZoomOut)
        self.fit_action = A("&Fit Whole File", self.axis.fit, "Ctrl+0")
        for a in (self.select_all_action, self.delete_action, self.cut_action, self.copy_action, self.paste_action):
            a.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # the grid handles these keys itself
        self.cancel_action = A("Cancel Job", self.runner.cancel, "Esc")
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addActions([self.open_action, self.open_session_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action, self.export_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit = mb.addMenu("&Edit")
        edit.addActions([self.model.undo_action, self.model.redo_action])
        edit.addSeparator()
        edit.addActions([self.cut_action, self.copy_action, self.paste_action, self.delete_action,
                         self.select_all_action, self.quantise_action])
        view = mb.addMenu("&View")
        view.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action])
        view.addSeparator()
        view.addAction(self.kit_dock.toggleViewAction())
        view.addAction(self.mixer_dock.toggleViewAction())
        if self.osc_panel is not None:
            view.addAction(self.osc_dock.toggleViewAction())
        tools = mb.addMenu("&Audio")
        tools.addActions([self.play_action, self.reseparate_action])
        self.reseparate_masking = "auto"
        masking_menu = tools.addMenu("Re-separate &Masking")
        self.masking_group = QActionGroup(self)
        for mode, label in document.RESEPARATE_MASKING:
            act = masking_menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(mode == self.reseparate_masking)
            act.setData(mode)
            self.masking_group.addAction(act)
        self.masking_group.triggered.connect(lambda a: setattr(self, "reseparate_masking", a.data()))
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(A("&Editing Keys", self._show_keys))
        self.addActions([self.model.undo_action, self.model.redo_action])
        self._fill_recent_menu()

    def _build_status(self) -> None:
        self.progress_panel = ProgressPanel(self.runner)
        # the short form ("no audio output") in the bar; why, in the tooltip
        self.audio_status = QLabel(self.player.status_text.split(" (")[0])
        self.audio_status.setToolTip(self.player.status_text)
        self.audio_status.setObjectName("AudioStatus")
        self.info_label = QLabel("")
        self.inspector = HitInspector(self.model, self.grid)
        sb = StatusBar(self)
        self.setStatusBar(sb)
        sb.addWidget(self.info_label, 1)
        sb.addPermanentWidget(self.inspector)
        sb.addPermanentWidget(self.progress_panel)
        sb.addPermanentWidget(self.audio_status)

    def _wire(self) -> None:
        m = self.model
        m.error_occurred.connect(self._on_model_error)
        m.status_message.connect(self._show_status)
        m.modified_changed.connect(self._on_modified_changed)
        m.session_changed.connect(self._on_model_session_changed)
        m.edited.connect(self._update_info)
        self.grid.selection_changed.connect(self._update_info)
        self.grid.cursor_moved.connect(self.waveform.set_cursor)
        self.grid.hit_auditioned.connect(self.audition)
        self.waveform.cursor_requested.connect(self.grid.set_cursor)
        self.kit_panel.audition_requested.connect(lambda c: self.audition(c, 1.0))
        self.player.position_changed.connect(self._on_player_position)
        self.player.state_changed.connect(self.transport.set_playing)
        self.transport.play_toggled.connect(self.toggle_play)
        self.transport.fit_requested.connect(self.axis.fit)
        self.transport.quantise_requested.connect(lambda s: self.grid.quantise_selected(s))
        self.transport.division_changed.connect(self.grid.set_division)
        self.transport.snap_toggled.connect(lambda on: setattr(self.grid, "snap_enabled", on))
        self.transport.midi_drag.failed.connect(self._on_model_error)
        self.runner.finished.connect(self._on_runner_finished)
        self.runner.failed.connect(self._on_runner_failed)
        self.runner.cancelled.connect(lambda: self.statusBar().showMessage("Cancelled; nothing was changed", 5000))
        self.runner.done.connect(self._update_actions)
        self.runner.started.connect(lambda _t: self._update_actions())
        self._update_actions()

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        self._state_restored = isinstance(state, QByteArray) and self.restoreState(state)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_files(self.settings)
        for path in items:
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(items))

    # ------------------------------------------------------------------ jobs
    def _run(self, title: str, fn: Callable, on_done: Callable[[Any], None], *args: Any, **kwargs: Any) -> bool:
        if self.runner.busy:
            self.statusBar().showMessage(f"Busy: {self.runner.title}. Wait or press Esc to cancel.", 5000)
            return False
        self._on_job_done = on_done
        self.runner.start(fn, *args, title=title, **kwargs)
        self._update_actions()
        return True

    def _on_runner_finished(self, result: Any) -> None:
        cb, self._on_job_done = self._on_job_done, None
        if cb is not None:
            cb(result)

    def _on_runner_failed(self, message: str) -> None:
        self._on_job_done = None
        self.last_error = message
        self.statusBar().showMessage(message, 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "idm-studio", message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("ErrorBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not modal to the event loop: the window stays responsive

    # ------------------------------------------------------------------ playback
    def toggle_play(self) -> None:
        if self.player.playing:
            self.player.stop()
            return
        s = self.model.session
        if s is None:
            return
        source = self.transport.source.currentText()
        start = self.grid.cursor_s
        try:
            if source == "Mix" and self.model.mixture is not None:
                self.player.play(self.model.mixture.samples, self.model.mixture.sample_rate, start_s=start, label="mix")
            elif source == "Stems":
                self.player.play(document.mix_of_stems(s), s.sample_rate, start_s=start, label="stems")
            else:
                self._run("Rendering", document.render_mix, lambda mix: self.player.play(
                    mix, s.sample_rate, start_s=start, label="render"), s)
        except IdmError as exc:
            self._on_model_error(str(exc))

    def audition(self, symbol: str, velocity: float = 1.0) -> None:
        """Play ``symbol``'s one-shot at ``velocity`` (what adding or clicking a hit sounds like)."""
        s = self.model.session
        if s is None or self.player.playing and self.player.label != "audition":
            return
        from idm_host.render import tuned

        slot = s.kit[symbol]
        gain = float(slot.velocity_gain(velocity)) * slot.level * db_to_gain(slot.gain_db)
        shot = tuned(np.asarray(slot.one_shot), slot.tune_semitones, s.sample_rate)
        self.player.play(shot * gain, s.sample_rate, label="audition")

    def _on_player_position(self, time_s: float) -> None:
        playing = self.player.playing and self.player.label != "audition"
        t = time_s if playing else None
        self.grid.set_playhead(t)
        self.waveform.set_playhead(t)
        self.overview.set_playhead(t)
        if t is not None:
            self.transport.set_position(t)
            self.axis.ensure_visible(t)

    # ------------------------------------------------------------------ OSC
    def _osc_analyze(self, audio: Any, progress: Callable[[float, str], None]) -> Any:
        """The OSC server's analysis (on its worker thread), with this window's model."""
        return document.analyse_audio(audio, separators=self.separators, model=self.model_name, progress=progress)

    def _on_osc_analysis(self, analysis: Any, source: str) -> None:
        if self.runner.busy or not self._maybe_save():
            self.statusBar().showMessage(f"OSC analysis of {source} arrived; not shown (busy or unsaved edits)", 8000)
            return
        self._show_opened(document.analysis_to_opened(analysis, source or None))

    # ------------------------------------------------------------------ feedback
    def _on_model_error(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message, 10000)

    def _on_model_session_changed(self) -> None:
        self._update_title()
        self._update_actions()
        self._update_info()

    def _update_actions(self) -> None:
        has = self.model.has_session
        busy = self.runner.busy
        for a in (self.save_action, self.save_as_action, self.export_action, self.play_action):
            a.setEnabled(has)
        self.reseparate_action.setEnabled(has and not busy and self.model.mixture is not None)
        self.cancel_action.setEnabled(busy)  # else Esc belongs to the grid (clear the selection)
        self.open_action.setEnabled(not busy)
        self.open_session_action.setEnabled(not busy)

    # model signals go to methods, not lambdas, so that none reaches a window being destroyed
    def _show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_modified_changed(self, _modified: bool) -> None:
        self._update_title()

    def _update_title(self) -> None:
        s = self.model.session
        if s is None:
            self.setWindowTitle("idm-studio")
            return
        name = s.path.name if s.path else (Path(s.source.path).name if s.source.path else "untitled")
        self.setWindowTitle(f"{name}{' *' if self.model.modified else ''} — idm-studio")

    def _update_info(self) -> None:
        if not self.model.has_session:
            self.info_label.setText("")
            return
        n_sel = self.grid.selected_count()
        sel = f", {n_sel} selected" if n_sel else ""
        self.info_label.setText(f"{self.model.n_hits()} hits{sel}")

    def _show_keys(self) -> None:
        dialog = EditingKeysDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.keys_dialog = dialog

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._placed:  # once the window manager has framed the window, keep the frame on screen
            self._placed = True
            QTimer.singleShot(0, self._place)
            # a window manager may add its frame a moment after the window maps: check once more
            # (a child timer, so that it dies with the window)
            again = QTimer(self)
            again.setSingleShot(True)
            again.timeout.connect(self._keep_on_screen)  # a method: no call once the window is gone
            again.start(400)

    def _keep_on_screen(self) -> None:
        screen_fit.keep_on_screen(self)

    def _place(self) -> None:
        screen_fit.keep_on_screen(self)
        if not self._state_restored:  # first run: the kit gets about 40% of the height (it scrolls if less)
            h = int(min(DOCK_H, 0.4 * self.height()))
            self.resizeDocks([self.kit_dock, self.mixer_dock], [h, h], Qt.Orientation.Vertical)

    # ------------------------------------------------------------------ close
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self._maybe_save():
            event.ignore()
            return
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(30.0)
        if self.osc_panel is not None:
            self.osc_panel.shutdown()
        self.player.close()
        self.model.close()
        self._save_settings()
        self._tmp.cleanup()
        super().closeEvent(event)
