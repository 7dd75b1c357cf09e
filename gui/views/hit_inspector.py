"""Exact values for the selected hits, in the status bar: the time (s) and the MIDI velocity (1-127).

Typing a time moves the selection so that its earliest hit lands there (the others keep their
distance); typing a velocity gives every selected hit that velocity. Each edit is one undo step
(arrow-key steps on one field fold into one), sent through the session model's intents.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QSignalBlocker
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

from idm_host.midi import from_midi_velocity, to_midi_velocity

from .controls import spin_box

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel
    from .onset_grid import OnsetGridView


class HitInspector(QWidget):
    """Time and velocity fields bound to ``grid``'s selection."""

    def __init__(self, model: "SessionModel", grid: "OnsetGridView", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("HitInspector")
        self.model = model
        self.grid = grid
        self.caption = QLabel("")
        self.time = spin_box(decimals=4, step=0.001, suffix=" s", tracking=False, name="HitTime",
                             tooltip="Time of the selected hit (the earliest, if several: the others move with it)")
        self.velocity = QSpinBox()
        self.velocity.setObjectName("HitVelocity")
        self.velocity.setRange(1, 127)
        self.velocity.setSpecialValueText("–")  # shown (at 0) while nothing is selected
        self.velocity.setKeyboardTracking(False)
        self.velocity.setToolTip("MIDI velocity (1-127) of every selected hit")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(4)
        lay.addWidget(self.caption)
        lay.addWidget(QLabel("Time"))
        lay.addWidget(self.time)
        lay.addWidget(QLabel("Velocity"))
        lay.addWidget(self.velocity)
        self.time.valueChanged.connect(self._on_time_edited)
        self.velocity.valueChanged.connect(self._on_velocity_edited)
        grid.selection_changed.connect(self.refresh)
        model.hits_changed.connect(lambda _c: self.refresh())
        model.session_changed.connect(self.refresh)
        self.refresh()

    def _selection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The selected hits' ids, times and velocities."""
        sel = self.grid.selected
        ids, times, vels = [], [], []
        for c in self.model.classes:
            hits = self.model.hits(c)
            if len(sel) and len(hits):
                m = np.isin(hits.ids, sel, assume_unique=True)
                ids.append(hits.ids[m])
                times.append(hits.times[m])
                vels.append(hits.velocities[m])
        if not ids:
            return np.empty(0, np.int64), np.empty(0), np.empty(0, np.float32)
        return np.concatenate(ids), np.concatenate(times), np.concatenate(vels)

    def refresh(self) -> None:
        ids, times, vels = self._selection()
        n = len(ids)
        for w in (self.time, self.velocity):
            w.setEnabled(n > 0)
        self.caption.setText(f"{n} selected:" if n > 1 else "")
        with QSignalBlocker(self.time), QSignalBlocker(self.velocity):
            self.time.setRange(0.0, self.model.duration_s)
            self.velocity.setMinimum(1 if n else 0)
            if n:
                self.time.setValue(float(times.min()))
                self.velocity.setValue(to_midi_velocity(float(vels[np.argmax(vels)])))
            else:
                self.velocity.setValue(0)

    def _on_time_edited(self, value: float) -> None:
        ids, times, _ = self._selection()
        if len(ids):
            delta = float(value) - float(times.min())
            self.model.set_times({int(i): float(t) + delta for i, t in zip(ids.tolist(), times.tolist())})

    def _on_velocity_edited(self, value: int) -> None:
        ids, _, _ = self._selection()
        if len(ids):
            v = from_midi_velocity(int(value))
            self.model.set_velocities({int(i): v for i in ids.tolist()}, merge_key=("inspector", tuple(ids.tolist())))
