"""The kit: one tile per class with the one-shot's waveform, audition, replace (drop or dialog),
revert, fitted-to-the-record or synthetic one-shot, velocity curve, tune and gain. Tiles send intents to the session model and follow it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSignalBlocker, Qt, pyqtSignal
from PyQt6.QtGui import QDragEnterEvent, QDropEvent, QPaintEvent, QPen
from PyQt6.QtWidgets import (
    QComboBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton,
    QSizePolicy, QVBoxLayout, QWidget,
)

from idm_host.classes import class_info

from .. import theme
from ..files import AUDIO_FILTER, AUDIO_SUFFIXES
from .controls import spin_box
from .painting import painting
from .strip_row import StripRow

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel

CURVES = ("linear", "exponential", "fixed")
#: The narrowest a kit tile gets.
TILE_W = 200


def dropped_audio_path(mime) -> str | None:
    """The first local audio file in a drag's data, or None."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in AUDIO_SUFFIXES:
            return url.toLocalFile()
    return None


class OneShotView(QWidget):
    """A small drawing of a one-shot (peak envelope) with its length."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.samples: np.ndarray | None = None
        self.sample_rate = 44100
        self.color = theme.WAVEFORM
        self.setMinimumSize(150, 46)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_samples(self, samples: np.ndarray | None, sample_rate: int) -> None:
        self.samples = None if samples is None else np.asarray(samples, dtype=np.float32)
        self.sample_rate = sample_rate
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        with painting(self, theme.BACKGROUND) as (p, w, h):
            x = self.samples
            if x is None or x.size == 0:
                return
            cols = max(w, 1)
            edges = np.linspace(0, x.size, cols + 1).astype(np.int64)
            edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
            edges = np.minimum(edges, x.size)
            ok = edges[:-1] < x.size
            lo = edges[:-1][ok]
            mx = np.maximum.reduceat(np.abs(x), lo)
            peak = float(mx.max()) or 1.0
            mid = h / 2
            p.setPen(QPen(self.color, 1))
            scale = (h / 2 - 2) / peak
            for i, m in enumerate(mx.tolist()):
                p.drawLine(QPointF(i + 0.5, mid - m * scale), QPointF(i + 0.5, mid + m * scale + 0.5))
            p.setPen(theme.TEXT_DIM)
            p.drawText(QRectF(0, 0, w - 3, h - 1), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
                       f"{x.size / self.sample_rate * 1000:.0f} ms")


class KitTile(QFrame):
    """One class's kit slot. Drop an audio file on it to use that sample.

    Signals:
        audition_requested(str): play this class's one-shot.
    """

    audition_requested = pyqtSignal(str)

    def __init__(self, model: "SessionModel", symbol: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("KitTile")
        self.model = model
        self.symbol = symbol
        self.setAcceptDrops(True)
        info = class_info(symbol)
        color = theme.class_color(symbol)
        title = QLabel(f"<b>{info.name}</b> <span style='color:#8a909c'>{symbol}</span>")
        swatch = QLabel()
        swatch.setFixedSize(10, 10)
        swatch.setStyleSheet(f"background:{color.name()}; border-radius:5px;")
        self.origin_label = QLabel("")
        self.origin_label.setStyleSheet("color:#8a909c; font-size:8pt;")
        self.wave = OneShotView()
        self.wave.color = color
        self.play_button = QPushButton("▶")
        self.play_button.setToolTip(f"Audition the {info.name.lower()} one-shot")
        self.play_button.setFixedWidth(32)
        self.replace_button = QPushButton("Replace…")
        self.replace_button.setToolTip("Use a sample file for this drum (or drop a file on the tile)")
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Go back to the one-shot the model extracted")
        self.fit_button = QPushButton("Synthetic")
        self.fit_button.setCheckable(True)
        self.fit_button.setToolTip("Play the model's synthetic one-shot instead of the one fitted to the record")
        self.tune = spin_box(-24.0, 24.0, step=0.5, suffix=" st", tooltip="Tune (semitones)")
        self.gain = spin_box(-60.0, 24.0, step=0.5, suffix=" dB", tooltip="Kit gain (dB)")
        self.curve = QComboBox()
        self.curve.addItems(CURVES)
        self.curve.setToolTip("Velocity curve: how hit velocity maps to level")
        self.amount = spin_box(0.1, 8.0, step=0.1, tooltip="Exponent of the exponential velocity curve")

        head = QHBoxLayout()
        head.addWidget(swatch)
        head.addWidget(title, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.replace_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.fit_button)
        params = QGridLayout()
        params.addWidget(QLabel("Tune"), 0, 0)
        params.addWidget(self.tune, 0, 1)
        params.addWidget(QLabel("Gain"), 1, 0)
        params.addWidget(self.gain, 1, 1)
        params.addWidget(QLabel("Velocity"), 2, 0)
        curve_row = QHBoxLayout()
        curve_row.addWidget(self.curve, 1)
        curve_row.addWidget(self.amount)
        params.addLayout(curve_row, 2, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        lay.addLayout(head)
        lay.addWidget(self.wave)
        lay.addWidget(self.origin_label)
        lay.addLayout(buttons)
        lay.addLayout(params)
        # as wide as the buttons need ("Replace…" whole in any font), and never narrower than TILE_W
        self.setFixedWidth(max(TILE_W, lay.sizeHint().width()))

        self.play_button.clicked.connect(lambda: self.audition_requested.emit(self.symbol))
        self.replace_button.clicked.connect(self._on_replace_clicked)
        self.revert_button.clicked.connect(lambda: self.model.revert_sample(self.symbol))
        self.fit_button.clicked.connect(lambda checked: self.model.use_fitted(self.symbol, not checked))
        self.tune.valueChanged.connect(
            lambda v: self.model.set_kit_params(self.symbol, tune_semitones=float(v), merge_key=("tune", self.symbol)))
        self.gain.valueChanged.connect(
            lambda v: self.model.set_kit_params(self.symbol, gain_db=float(v), merge_key=("kit-gain", self.symbol)))
        self.curve.currentTextChanged.connect(lambda t: self.model.set_kit_params(self.symbol, velocity_curve=t))
        self.amount.valueChanged.connect(
            lambda v: self.model.set_kit_params(self.symbol, curve_amount=float(v), merge_key=("curve", self.symbol)))
        self.refresh()

    def refresh(self) -> None:
        """Show the slot as the session has it (without echoing edits back)."""
        s = self.model.session
        if s is None:
            return
        slot = s.kit[self.symbol]
        self.wave.set_samples(slot.one_shot, s.sample_rate)
        if slot.origin == "file":
            name = Path(slot.sample_path).name if slot.sample_path else "user sample"
            self.origin_label.setText(f"sample: {name}")
        elif slot.origin == "fitted":
            self.origin_label.setText("fitted to the record")
        elif slot.fitted is not None:
            self.origin_label.setText("synthetic (model's one-shot)")
        else:
            self.origin_label.setText("extracted by the model")
        self.revert_button.setEnabled(slot.origin == "file")
        blockers = [QSignalBlocker(w) for w in (self.tune, self.gain, self.curve, self.amount, self.fit_button)]
        self.fit_button.setVisible(slot.fitted is not None)
        self.fit_button.setEnabled(slot.origin != "file")
        self.fit_button.setChecked(slot.origin == "extracted" and slot.fitted is not None)
        self.tune.setValue(slot.tune_semitones)
        self.gain.setValue(slot.gain_db)
        self.curve.setCurrentText(slot.velocity_curve)
        self.amount.setValue(slot.curve_amount)
        self.amount.setEnabled(slot.velocity_curve == "exponential")
        del blockers

    def replace_from(self, path: str) -> bool:
        """Use the audio file ``path`` for this class (a bad file shows an error and changes nothing)."""
        return self.model.replace_sample(self.symbol, path)

    def _on_replace_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Sample for {class_info(self.symbol).name}", "", AUDIO_FILTER)
        if path:
            self.replace_from(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if dropped_audio_path(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if dropped_audio_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        path = dropped_audio_path(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.replace_from(path)
        else:
            event.ignore()


class KitPanel(StripRow):
    """The kit tiles in a scrollable row. ``audition_requested(str)`` forwards the tiles' requests."""

    audition_requested = pyqtSignal(str)

    def __init__(self, model: "SessionModel", parent: QWidget | None = None):
        super().__init__(model, spacing=6, parent=parent)
        self.setObjectName("KitPanel")
        model.session_changed.connect(self._on_model_session_changed)
        model.kit_changed.connect(self.refresh)
        self._on_model_session_changed()

    @property
    def tiles(self) -> dict[str, "KitTile"]:
        return self.widgets  # type: ignore[return-value]

    def _make_tile(self, symbol: str) -> "KitTile":
        tile = KitTile(self.model, symbol)
        tile.audition_requested.connect(self.audition_requested)
        return tile

    def _on_model_session_changed(self) -> None:
        self.rebuild(self.ordered_classes(), self._make_tile)
