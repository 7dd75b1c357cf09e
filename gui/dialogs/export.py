"""The Export dialog: stems (9 classes or 5 groups, WAV/FLAC, 24-bit/float), the rendered mix, MIDI
with a drum map, and the kit's one-shots, into a folder. It only gathers options; the window runs
:func:`gui.document.export` on a worker."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
    QLabel, QLineEdit, QPushButton, QRadioButton, QVBoxLayout, QWidget,
)

from idm_host.drum_maps import list_drum_maps
from idm_host.errors import IdmError

from ..document import ExportOptions


class ExportDialog(QDialog):
    """Choose what to export and where. ``options()`` gives the :class:`ExportOptions`.

    With ``settings`` (a QSettings), the choices of the last export (not "Replace existing files")
    are shown again, and :meth:`remember` stores the current ones and the folder for next time.
    """

    def __init__(self, folder: str | Path, name: str, parent: QWidget | None = None, *, has_stems: bool = True,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.setObjectName("ExportDialog")
        self.setWindowTitle("Export")
        self.folder = QLineEdit(str(folder))
        browse = QPushButton("Browse…")
        self.name = QLineEdit(name)
        self.stems = QCheckBox("Stems")
        self.stems.setChecked(has_stems)
        self.stems.setEnabled(has_stems)
        self.by_class = QRadioButton("one per drum class (9)")
        self.by_group = QRadioButton("5 groups: kick, snare, hi-hat, toms, cymbals")
        self.by_class.setChecked(True)
        self.format = QComboBox()
        self.format.addItems(["wav", "flac"])
        self.depth = QComboBox()
        self.depth.addItem("24-bit", 24)
        self.depth.addItem("32-bit float (WAV)", 32)
        self.mix = QCheckBox("Rendered mix (kit, mixer and effects)")
        self.midi = QCheckBox("MIDI file")
        self.midi.setChecked(True)
        self.drum_map = QComboBox()
        try:
            for m in list_drum_maps():
                self.drum_map.addItem(f"{m.title} ({m.name})", m.name)
        except IdmError:
            self.drum_map.addItem("General MIDI (gm)", "gm")
        i = self.drum_map.findData("gm")
        self.drum_map.setCurrentIndex(max(i, 0))
        self.kit = QCheckBox("Kit one-shots (kit/<class>.<format>)")
        self.overwrite = QCheckBox("Replace existing files")

        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Folder", where)
        form.addRow("Name", self.name)
        audio = QGroupBox("Audio")
        al = QVBoxLayout(audio)
        al.addWidget(self.stems)
        al.addWidget(self.by_class)
        al.addWidget(self.by_group)
        fmt = QHBoxLayout()
        fmt.addWidget(QLabel("Format"))
        fmt.addWidget(self.format)
        fmt.addWidget(self.depth)
        fmt.addStretch(1)
        al.addLayout(fmt)
        al.addWidget(self.mix)
        al.addWidget(self.kit)
        midi = QGroupBox("MIDI")
        ml = QHBoxLayout(midi)
        ml.addWidget(self.midi)
        ml.addWidget(self.drum_map, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(audio)
        lay.addWidget(midi)
        lay.addWidget(self.overwrite)
        lay.addWidget(buttons)
        browse.clicked.connect(self._on_browse_clicked)
        self.stems.toggled.connect(self.by_class.setEnabled)
        self.stems.toggled.connect(self.by_group.setEnabled)
        self.midi.toggled.connect(self.drum_map.setEnabled)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.settings = settings
        if settings is not None:
            self._restore(settings)

    def _restore(self, st: QSettings) -> None:
        def flag(key: str, box: QCheckBox) -> None:
            if st.contains(f"export/{key}"):
                box.setChecked(bool(st.value(f"export/{key}", box.isChecked(), type=bool)))

        if self.stems.isEnabled():
            flag("stems", self.stems)
        for key, box in (("mix", self.mix), ("midi", self.midi), ("kit", self.kit)):
            flag(key, box)
        if st.value("export/grouping") == "groups":
            self.by_group.setChecked(True)
        fmt = self.format.findText(str(st.value("export/format", "")))
        if fmt >= 0:
            self.format.setCurrentIndex(fmt)
        for combo, key in ((self.depth, "depth"), (self.drum_map, "drum_map")):
            value = st.value(f"export/{key}")
            i = combo.findData(int(value) if key == "depth" and str(value).isdigit() else value)
            if value is not None and i >= 0:
                combo.setCurrentIndex(i)

    def remember(self) -> None:
        """Store the folder and the choices (not "Replace existing files") in the settings."""
        st = self.settings
        if st is None:
            return
        o = self.options()
        st.setValue("export/folder", str(o.folder))
        if self.stems.isEnabled():
            st.setValue("export/stems", o.stems)
        for key in ("mix", "midi", "kit"):
            st.setValue(f"export/{key}", getattr(o, key))
        st.setValue("export/grouping", o.grouping)
        st.setValue("export/format", o.audio_format)
        st.setValue("export/depth", o.bit_depth)
        st.setValue("export/drum_map", o.drum_map)
        st.sync()

    def _on_browse_clicked(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder.text())
        if d:
            self.folder.setText(d)

    def options(self) -> ExportOptions:
        return ExportOptions(
            folder=Path(self.folder.text()).expanduser(),
            name=self.name.text().strip() or "drums",
            stems=self.stems.isChecked(),
            grouping="groups" if self.by_group.isChecked() else "classes",
            audio_format=self.format.currentText(),
            bit_depth=int(self.depth.currentData()),
            mix=self.mix.isChecked(),
            midi=self.midi.isChecked(),
            drum_map=str(self.drum_map.currentData()),
            kit=self.kit.isChecked(),
            overwrite=self.overwrite.isChecked(),
        )
