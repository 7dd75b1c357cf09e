"""A horizontally scrolling row of one widget per drum class (the kit tiles, the mixer strips)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLayout, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel


class StripRow(QWidget):
    """Holds ``widgets`` by key, in lane order, rebuilt whenever the session changes."""

    def __init__(self, model: "SessionModel", spacing: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.widgets: dict[str, QWidget] = {}
        self._area = QScrollArea()
        self._area.setWidgetResizable(True)
        self._area.setFrameShape(QFrame.Shape.NoFrame)
        self._inner = QWidget()
        self._row = QHBoxLayout(self._inner)
        self._row.setContentsMargins(4, 4, 4, 4)
        self._row.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self._row.setSpacing(spacing)
        self._area.setWidget(self._inner)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._area)

    def ordered_classes(self) -> list[str]:
        """The session's classes in the onset grid's lane order."""
        from .onset_grid import LANE_ORDER

        known = {c: i for i, c in enumerate(LANE_ORDER)}
        return sorted(self.model.classes, key=lambda c: (known.get(c, len(known)), c))

    def rebuild(self, keys: Iterable[str], make: Callable[[str], QWidget]) -> None:
        """Replace every widget with ``make(key)`` for each key, left to right."""
        for w in self.widgets.values():
            self._row.removeWidget(w)
            w.deleteLater()
        self.widgets = {}
        while self._row.count():
            self._row.takeAt(0)
        for key in keys:
            w = make(key)
            self.widgets[key] = w
            self._row.addWidget(w)
        self._row.addStretch(1)

    def refresh(self, key: str) -> None:
        w = self.widgets.get(key)
        if w is not None:
            w.refresh()  # type: ignore[attr-defined]
