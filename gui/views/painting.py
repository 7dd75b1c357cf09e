"""The start and end of a widget's paint event, shared by the views that draw themselves."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QWidget


@contextmanager
def painting(widget: QWidget, background: QColor) -> Iterator[tuple[QPainter, int, int]]:
    """A painter on ``widget`` with the whole widget filled with ``background``; yields it with the
    widget's width and height (px) and ends it however the drawing leaves (an early return, an error).

    Example::

        def paintEvent(self, event):
            with painting(self, theme.BACKGROUND) as (p, w, h):
                p.drawLine(0, h // 2, w, h // 2)
    """
    p = QPainter(widget)
    try:
        w, h = widget.width(), widget.height()
        p.fillRect(0, 0, w, h, background)
        yield p, w, h
    finally:
        p.end()
