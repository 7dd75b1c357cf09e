"""Builders for the views' standard controls, so that a control's settings read as one call."""
from __future__ import annotations

from PyQt6.QtWidgets import QDoubleSpinBox


def spin_box(minimum: float | None = None, maximum: float | None = None, *, decimals: int | None = None,
             step: float | None = None, suffix: str = "", value: float | None = None, tracking: bool = True,
             tooltip: str = "", name: str = "") -> QDoubleSpinBox:
    """A :class:`QDoubleSpinBox` with the given settings; Qt's own for the rest (range 0 to 99.99,
    2 decimals, step 1). ``tracking=False`` reports a typed number once, when the edit is done,
    rather than at every key.

    Example::

        self.bpm = spin_box(20.0, 400.0, decimals=2, suffix=" BPM", tracking=False, tooltip="Tempo")
    """
    box = QDoubleSpinBox()
    if name:
        box.setObjectName(name)
    if decimals is not None:  # before the range and value, which it rounds
        box.setDecimals(decimals)
    if minimum is not None and maximum is not None:
        box.setRange(minimum, maximum)
    if step is not None:
        box.setSingleStep(step)
    if suffix:
        box.setSuffix(suffix)
    if value is not None:
        box.setValue(value)
    box.setKeyboardTracking(tracking)
    if tooltip:
        box.setToolTip(tooltip)
    return box
