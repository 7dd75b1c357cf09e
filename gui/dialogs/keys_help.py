"""Help > Editing Keys: the mouse gestures and keys of the editor as a table (keys in monospace)."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontDatabase
from PyQt6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout,
    QWidget,
)

from ..keys import EDITING_KEYS


class EditingKeysDialog(QDialog):
    """A read-only table of :data:`gui.keys.EDITING_KEYS`: section, input (monospace), what it does."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("EditingKeysDialog")
        self.setWindowTitle("Editing keys")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.table = QTableWidget(len(EDITING_KEYS), 3)
        self.table.setHorizontalHeaderLabels(["", "Input", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no current-cell highlight in a read-only table
        last = None
        for row, (section, key, what) in enumerate(EDITING_KEYS):
            self.table.setItem(row, 0, QTableWidgetItem(section if section != last else ""))
            item = QTableWidgetItem(key)
            item.setFont(mono)
            self.table.setItem(row, 1, item)
            self.table.setItem(row, 2, QTableWidgetItem(what))
            last = section
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(760, 560)
