"""The bar above the editor: transport, tempo, grid, snap, quantise, zoom, and dragging MIDI out."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PyQt6.QtCore import QMimeData, QPoint, QSignalBlocker, Qt, QUrl, pyqtSignal
from PyQt6.QtGui import QDrag, QMouseEvent
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QLabel, QPushButton, QSizePolicy, QToolBar, QToolButton, QWidget,
)

from idm_host.errors import IdmError

from . import grid_math
from .controls import spin_box

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel

PLAY_SOURCES = ("Mix", "Stems", "Render")
#: Marks drags that start in idm-studio, so that dropping one back on the window does nothing.
OWN_DRAG_MIME = "application/x-idm-studio-drag"


def file_drag_mime(paths: list[Path]) -> QMimeData:
    """Drag data carrying local files (what DAWs and file managers accept), marked as our own."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(Path(p).resolve())) for p in paths])
    mime.setData(OWN_DRAG_MIME, b"1")
    return mime


def is_own_drag(event) -> bool:
    """Whether a drag/drop event carries a drag that started in this application."""
    return event.source() is not None or event.mimeData().hasFormat(OWN_DRAG_MIME)


class DragOutButton(QToolButton):
    """A button that, when dragged, writes a file through ``provider()`` and drags it out of the window.

    ``provider`` returns the file to drag (and may raise :class:`~idm_host.errors.IdmError`, reported
    through ``failed(str)``).
    """

    failed = pyqtSignal(str)

    def __init__(self, text: str, provider: Callable[[], Path], parent: QWidget | None = None):
        super().__init__(parent)
        self.setText(text)
        self.provider = provider
        self._press: QPoint | None = None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._press is None or (event.position().toPoint() - self._press).manhattanLength() < 6:
            return
        self._press = None
        mime = self.drag_mime()
        if mime is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)
        self.setDown(False)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self._press = None
        super().mouseReleaseEvent(event)

    def drag_mime(self) -> QMimeData | None:
        """Write the file and return the drag data, or None (after ``failed``) if it cannot be written."""
        try:
            path = self.provider()
        except IdmError as exc:
            self.failed.emit(str(exc))
            return None
        return file_drag_mime([path])


class TransportBar(QToolBar):
    """A tool bar (it folds into an overflow menu when the window is narrow).

    Signals: ``play_toggled()``, ``stop_requested()``, ``fit_requested()``, ``quantise_requested(float)``.
    """

    play_toggled = pyqtSignal()
    stop_requested = pyqtSignal()
    fit_requested = pyqtSignal()
    quantise_requested = pyqtSignal(float)
    division_changed = pyqtSignal(str)
    snap_toggled = pyqtSignal(bool)

    def __init__(self, model: "SessionModel", midi_provider: Callable[[], Path], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("TransportBar")
        self.model = model
        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / stop (Space)")
        self.source = QComboBox()
        self.source.addItems(PLAY_SOURCES)
        self.source.setToolTip("What to play: the original mix, the separated stems through the mixer, "
                               "or the re-render (kit, mixer and effects)")
        self.bpm = spin_box(20.0, 400.0, decimals=2, suffix=" BPM", tracking=False,
                            tooltip="Tempo of the grid (estimated; edit to correct it)")
        self.downbeat = spin_box(0.0, 3600.0, decimals=3, step=0.005, suffix=" s", tracking=False,
                                 tooltip="Time of the first downbeat (bar 1)")
        self.division = QComboBox()
        self.division.addItems(list(grid_math.DIVISIONS))
        self.division.setCurrentText(grid_math.DEFAULT_DIVISION)
        self.division.setToolTip("Grid for snapping and quantising")
        self.snap = QCheckBox("Snap")
        self.snap.setChecked(True)
        self.snap.setToolTip("Snap added and moved hits to the grid (hold Alt to override)")
        self.strength = spin_box(0.0, 100.0, decimals=0, step=10.0, suffix=" %", value=100.0,
                                 tooltip="Quantise strength")
        self.quantise_button = QPushButton("Quantise")
        self.quantise_button.setToolTip("Quantise the selection (or every hit) to the grid (Q)")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Show the whole file (Ctrl+0)")
        self.midi_drag = DragOutButton("⇲ MIDI", midi_provider)
        self.midi_drag.setToolTip("Drag the hits as a MIDI clip into a DAW or a folder")
        self.position = QLabel("0:00.00")
        self.position.setMinimumWidth(70)
        self.setWindowTitle("Transport")
        self.setMovable(False)
        for w in (self.play_button, self.source, self.position):
            self.addWidget(w)
        self.addSeparator()
        for w in (self.bpm, self.downbeat, QLabel(" Grid "), self.division, self.snap, self.strength,
                  self.quantise_button):
            self.addWidget(w)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.addWidget(self.fit_button)
        self.addWidget(self.midi_drag)
        self.play_button.clicked.connect(lambda: self.play_toggled.emit())
        self.bpm.valueChanged.connect(self._on_tempo_edited)
        self.downbeat.valueChanged.connect(self._on_tempo_edited)
        self.division.currentTextChanged.connect(self.division_changed)
        self.snap.toggled.connect(self.snap_toggled)
        self.quantise_button.clicked.connect(lambda: self.quantise_requested.emit(self.strength.value() / 100.0))
        self.fit_button.clicked.connect(self.fit_requested)
        model.tempo_changed.connect(self.refresh)
        model.session_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        bpm, downbeat = self.model.tempo
        with QSignalBlocker(self.bpm), QSignalBlocker(self.downbeat):
            self.bpm.setValue(bpm)
            self.downbeat.setValue(downbeat)
        on = self.model.has_session
        for w in (self.play_button, self.bpm, self.downbeat, self.quantise_button, self.midi_drag, self.source):
            w.setEnabled(on)

    def _on_tempo_edited(self, _value: float) -> None:
        if not self.model.set_tempo(self.bpm.value(), self.downbeat.value()):
            self.refresh()

    def set_playing(self, playing: bool) -> None:
        with QSignalBlocker(self.play_button):
            self.play_button.setChecked(playing)
            self.play_button.setText("■ Stop" if playing else "▶ Play")

    def set_position(self, time_s: float) -> None:
        m, s = divmod(max(time_s, 0.0), 60.0)
        self.position.setText(f"{int(m)}:{s:05.2f}")
