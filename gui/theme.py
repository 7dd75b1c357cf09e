"""The dark theme: palette, style sheet and one colour per drum class."""
from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

from idm_host.classes import class_info

BACKGROUND = QColor("#1b1d22")
PANEL = QColor("#23262d")
LANE_A = QColor("#202329")
LANE_B = QColor("#25282f")
GRID_BAR = QColor("#5a606d")
GRID_BEAT = QColor("#3a3f49")
GRID_SUB = QColor("#2d3139")
TEXT = QColor("#d7dae0")
TEXT_DIM = QColor("#8a909c")
ACCENT = QColor("#f0a23b")
SELECTION = QColor("#ffffff")
PLAYHEAD = QColor("#ff5a4f")
WAVEFORM = QColor("#6fa8dc")

#: Layout shared by the views that line up with the onset grid: the width of the lane headers (px)
#: and the height of the grid's bar ruler (px).
HEADER_W = 128
RULER_H = 24

#: Hue (degrees) per 5-group, so that related classes share a colour family.
_GROUP_HUES = {"KD": 12, "SD": 42, "HH": 190, "TT": 130, "CY": 280}


def class_color(symbol: str, index: int = 0) -> QColor:
    """The lane colour of a drum class: its group's hue, shaded per class."""
    hue = _GROUP_HUES.get(class_info(symbol).group, (index * 47) % 360)
    shade = {"HH_OHH": 25, "CY_RD": 25, "TT_HMT": 15, "TT_LMT": 30}.get(symbol, 0)
    return QColor.fromHsv((hue + shade) % 360, 170, 235)


def velocity_color(base: QColor, velocity: float) -> QColor:
    """``base`` darkened for soft hits: full colour at velocity 1, half of it at 0."""
    v = 0.5 + 0.5 * min(max(velocity, 0.0), 1.0)
    return QColor.fromHsvF(base.hsvHueF(), base.hsvSaturationF() * (0.6 + 0.4 * v), base.valueF() * v)


def selected_color(base: QColor) -> QColor:
    """A selected hit's fill: ``base`` mixed two thirds of the way to white."""
    return QColor(int(base.red() + (255 - base.red()) * 0.67), int(base.green() + (255 - base.green()) * 0.67),
                  int(base.blue() + (255 - base.blue()) * 0.67))


STYLE_SHEET = """
QWidget { font-size: 10pt; }
QMainWindow::separator { background: #2c3038; width: 3px; height: 3px; }
QDockWidget::title { background: #2a2e36; padding: 4px 6px; color: #c0c4cc; }
QToolBar { background: #23262d; border: 0; spacing: 4px; padding: 2px; }
QToolButton { padding: 3px 6px; border-radius: 3px; }
QToolButton:hover { background: #333843; }
QToolButton:checked { background: #4a3a20; color: #f0a23b; }
QPushButton { background: #2f333c; border: 1px solid #3b404a; border-radius: 3px; padding: 3px 10px; }
QPushButton:hover { background: #383d48; }
QPushButton:checked { background: #4a3a20; border-color: #f0a23b; color: #f0a23b; }
QPushButton:disabled { color: #5f6470; }
QSlider::groove:horizontal { height: 4px; background: #3a3f49; border-radius: 2px; }
QSlider::handle:horizontal { width: 12px; margin: -5px 0; background: #f0a23b; border-radius: 6px; }
QSlider::groove:vertical { width: 4px; background: #3a3f49; border-radius: 2px; }
QSlider::handle:vertical { height: 12px; margin: 0 -5px; background: #f0a23b; border-radius: 6px; }
QProgressBar { background: #2a2e36; border: 1px solid #3b404a; border-radius: 3px; text-align: center; }
QProgressBar::chunk { background: #c9822a; border-radius: 2px; }
QStatusBar { background: #17191d; color: #a0a6b2; }
QGroupBox { border: 1px solid #343842; border-radius: 4px; margin-top: 14px; padding-top: 4px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; color: #c0c4cc; }
QFrame#KitTile, QFrame#MixerStrip { background: #262a31; border: 1px solid #343842; border-radius: 4px; }
QFrame#KitTile:hover { border-color: #f0a23b; }
"""


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and the style sheet above."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BACKGROUND,
        QPalette.ColorRole.AlternateBase: LANE_B,
        QPalette.ColorRole.ToolTipBase: QColor("#30343c"),
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: QColor("#2f333c"),
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: QColor("#ff6b6b"),
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: QColor("#15171a"),
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, color in roles.items():
        pal.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5f6470"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)
