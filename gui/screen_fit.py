"""Keeping the window on its screen: open within the screen's available area (what the panels and
docks of the desktop leave), frame included, so that the status bar (progress, Cancel) stays reachable."""
from __future__ import annotations

from PyQt6.QtCore import QRect, QSize
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QWidget

#: The size the window opens at on a large screen.
PREFERRED = QSize(1280, 820)
#: Room for a window manager's frame (title bar and borders) before the real frame is known.
FRAME_ALLOWANCE = QSize(12, 40)


def available_geometry(window: QWidget) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, PREFERRED.width(), PREFERRED.height())


def fitted_size(preferred: QSize, available: QRect, frame: QSize = FRAME_ALLOWANCE) -> QSize:
    """``preferred`` shrunk so that it and a frame of ``frame`` extra pixels fit in ``available``."""
    return QSize(min(preferred.width(), available.width() - frame.width()),
                 min(preferred.height(), available.height() - frame.height()))


def open_size(window: QWidget) -> None:
    """Resize ``window`` (not yet shown) to :data:`PREFERRED`, or less on a small screen."""
    window.resize(fitted_size(PREFERRED, available_geometry(window)))


def keep_on_screen(window: QWidget) -> None:
    """Shrink and move a shown ``window`` so that its whole frame is inside the available area."""
    avail = available_geometry(window)
    frame = window.frameGeometry()
    if avail.contains(frame):
        return
    extra = QSize(max(frame.width() - window.width(), 0), max(frame.height() - window.height(), 0))
    size = fitted_size(window.size(), avail, extra)
    window.resize(size)
    x = min(max(frame.x(), avail.x()), avail.right() + 1 - size.width() - extra.width())
    y = min(max(frame.y(), avail.y()), avail.bottom() + 1 - size.height() - extra.height())
    window.move(max(x, avail.x()), max(y, avail.y()))
