"""The window's status bar: temporary messages that fit the room the permanent fields leave them.

A message longer than that room ends in "…" at a word boundary instead of being cut mid-word under
the permanent fields; the whole text is the tooltip and :attr:`StatusBar.last_message`.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QStatusBar, QWidget

#: Pixels kept free between a message and the first permanent field.
GAP_PX = 16


def elide_words(text: str, fits) -> str:
    """``text`` if ``fits(text)``, else the longest run of its first words that fits with "…"."""
    if fits(text):
        return text
    words = text.split(" ")
    for n in range(len(words) - 1, 0, -1):
        candidate = " ".join(words[:n]).rstrip(",;:") + " …"
        if fits(candidate):
            return candidate
    return "…"


class StatusBar(QStatusBar):
    """A :class:`QStatusBar` whose ``showMessage`` never runs under the permanent widgets."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self.last_message = ""

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:  # noqa: N802 - Qt API
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def message_room(self) -> int:
        """Pixels free for a message: up to the leftmost visible permanent widget."""
        lefts = [w.geometry().left() for w in self._permanent if w.isVisible()]
        right = min(lefts) if lefts else self.width()
        return max(right - GAP_PX - 8, 40)

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - Qt API
        self.last_message = text
        room = self.message_room()
        fm = self.fontMetrics()
        shown = elide_words(text, lambda t: fm.horizontalAdvance(t) <= room)
        self.setToolTip(text if shown != text else "")
        super().showMessage(shown, timeout)

    def clearMessage(self) -> None:  # noqa: N802 - Qt API
        self.setToolTip("")
        super().clearMessage()

