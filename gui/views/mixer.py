"""The mixer: a strip per class plus the residual and the master, each with gain, pan, mute, solo and
an effect chain (a preset from ``presets/fx`` or a chain edited in :class:`EffectChainDialog`)."""
from __future__ import annotations

import copy
import functools
import json
import math
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import QSignalBlocker, Qt
from PyQt6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
    QListWidget, QMessageBox, QPushButton, QScrollArea, QSlider, QVBoxLayout, QWidget,
)

from idm_host.classes import class_info
from idm_host.errors import IdmError
from idm_host.fx import BUILTIN_EFFECTS, resolve_chain
from idm_host.presets import list_presets

from .. import theme
from .strip_row import StripRow

if TYPE_CHECKING:  # pragma: no cover
    from ..session_model import SessionModel

NO_FX = "no effects"
CUSTOM_FX = "custom chain"
GAIN_STEPS_PER_DB = 10
#: The narrowest a mixer strip gets.
STRIP_W = 96
#: What a combo box adds to its text's width in the dark theme: padding, frame and the arrow.
COMBO_CHROME_PX = 44


def strip_title(strip: str) -> str:
    return {"master": "Master", "residual": "Residual"}.get(strip, class_info(strip).name)


def effects_label(effects: Any) -> str:
    """The combo entry for a strip's effects: the preset name, ``NO_FX`` or ``CUSTOM_FX``."""
    if effects is None:
        return NO_FX
    if isinstance(effects, str):
        return effects
    return CUSTOM_FX


@functools.lru_cache(maxsize=None)
def builtin_defaults(effect_type: str) -> dict[str, Any]:
    """pedalboard's default parameter values of a built-in effect (read from a fresh instance)."""
    import pedalboard

    try:
        plugin = getattr(pedalboard, effect_type)()
    except Exception:  # effects that need arguments (Convolution) have no defaults to show
        return {}
    out = {}
    for name in BUILTIN_EFFECTS.get(effect_type, {}):
        try:
            value = getattr(plugin, name)
        except Exception:
            continue
        if isinstance(value, (int, float)):
            out[name] = float(value)
    return out


class EffectChainDialog(QDialog):
    """Edit a chain of built-in effects: add, remove, reorder, and set each parameter in its range.

    Effects the editor cannot show (parallel ``Mix``, nested ``Chain``, ``VST3``) are kept as they are.
    ``chain()`` returns the edited chain document.
    """

    def __init__(self, title: str, chain: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Effects: {title}")
        self.resize(560, 380)
        self._effects: list[dict] = copy.deepcopy(list(chain.get("effects", [])))
        self._name = chain.get("name")
        self.list = QListWidget()
        self.add_combo = QComboBox()
        self.add_combo.addItems(sorted(BUILTIN_EFFECTS))
        add = QPushButton("Add")
        remove = QPushButton("Remove")
        up = QPushButton("Up")
        down = QPushButton("Down")
        self._form_host = QWidget()
        self._form = QFormLayout(self._form_host)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.add_combo, 1)
        row.addWidget(add)
        left.addLayout(row)
        row2 = QHBoxLayout()
        for b in (remove, up, down):
            row2.addWidget(b)
        left.addLayout(row2)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._form_host)
        body.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        lay = QVBoxLayout(self)
        lay.addLayout(body, 1)
        lay.addWidget(buttons)
        add.clicked.connect(lambda: self.add_effect(self.add_combo.currentText()))
        remove.clicked.connect(self._on_remove_clicked)
        up.clicked.connect(lambda: self._move(-1))
        down.clicked.connect(lambda: self._move(1))
        self.list.currentRowChanged.connect(self._show_params)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._refresh_list()

    def chain(self) -> dict:
        return {"schema_version": 1, "name": None, "effects": copy.deepcopy(self._effects)}

    def add_effect(self, effect_type: str) -> None:
        """Append a built-in effect with pedalboard's default settings."""
        if effect_type not in BUILTIN_EFFECTS:
            raise IdmError(f"effect {effect_type!r} is not a built-in effect; use one of {', '.join(BUILTIN_EFFECTS)}")
        self._effects.append({"type": effect_type, "params": {}})
        self._refresh_list(len(self._effects) - 1)

    def set_param(self, index: int, name: str, value: Any) -> None:
        self._effects[index].setdefault("params", {})[name] = value

    def _describe(self, e: dict) -> str:
        t = e.get("type", "?")
        if t in ("Mix", "Chain"):
            return f"{t} ({len(e.get('chains', e.get('effects', [])))} parts, not editable here)"
        if t == "VST3":
            return f"VST3 {e.get('path', '')} (not editable here)"
        return t

    def _refresh_list(self, select: int | None = None) -> None:
        with QSignalBlocker(self.list):
            self.list.clear()
            for e in self._effects:
                self.list.addItem(self._describe(e))
        row = select if select is not None else (0 if self._effects else -1)
        self.list.setCurrentRow(row)
        self._show_params(row)

    def _on_remove_clicked(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._effects):
            del self._effects[row]
            self._refresh_list(min(row, len(self._effects) - 1))

    def _move(self, step: int) -> None:
        row = self.list.currentRow()
        new = row + step
        if 0 <= row < len(self._effects) and 0 <= new < len(self._effects):
            self._effects[row], self._effects[new] = self._effects[new], self._effects[row]
            self._refresh_list(new)

    def _show_params(self, row: int) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        if not 0 <= row < len(self._effects):
            return
        e = self._effects[row]
        spec = BUILTIN_EFFECTS.get(e.get("type", ""))
        if spec is None:
            self._form.addRow(QLabel(self._describe(e)))
            return
        for name, p in spec.items():
            if p.kind != "float":
                self._form.addRow(name, QLabel(str(e.get("params", {}).get(name, "default"))))
                continue
            box = QDoubleSpinBox()
            box.setDecimals(3 if (p.hi - p.lo) <= 2 else 2)
            box.setRange(p.lo if math.isfinite(p.lo) else -1e6, p.hi if math.isfinite(p.hi) else 1e6)
            box.setSingleStep(max((box.maximum() - box.minimum()) / 100.0, 0.01))
            if p.unit:
                box.setSuffix(f" {p.unit}")
            value = e.get("params", {}).get(name, builtin_defaults(e["type"]).get(name))
            if isinstance(value, (int, float)):
                box.setValue(float(value))
            box.valueChanged.connect(lambda v, r=row, n=name: self.set_param(r, n, float(v)))
            self._form.addRow(name.replace("_", " "), box)


class MixerStrip(QFrame):
    """One strip: name, effects, pan, mute, solo, gain fader and its dB readout."""

    def __init__(self, model: "SessionModel", strip: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MixerStrip")
        self.model = model
        self.strip = strip
        color = theme.class_color(strip) if strip not in ("master", "residual") else theme.ACCENT
        name = QLabel(strip_title(strip))
        name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        name.setStyleSheet(f"border-bottom: 2px solid {color.name()}; padding-bottom: 2px;")
        self.fx_combo = QComboBox()
        self.fx_combo.setToolTip("Effect chain (presets from presets/fx)")
        self.fx_edit = QPushButton("FX…")
        self.fx_edit.setToolTip("Edit this strip's effect chain")
        self.pan = QSlider(Qt.Orientation.Horizontal)
        self.pan.setRange(-100, 100)
        self.pan.setToolTip("Pan (double-click the label to centre)")
        self.mute = QPushButton("M")
        self.mute.setCheckable(True)
        self.mute.setToolTip("Mute")
        self.solo = QPushButton("S")
        self.solo.setCheckable(True)
        self.solo.setToolTip("Solo")
        self.fader = QSlider(Qt.Orientation.Vertical)
        self.fader.setRange(-60 * GAIN_STEPS_PER_DB, 12 * GAIN_STEPS_PER_DB)
        self.fader.setToolTip("Gain (dB)")
        self.fader.setMinimumHeight(70)
        self.db_label = QLabel("0.0 dB")
        self.db_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        ms = QHBoxLayout()
        ms.addWidget(self.mute)
        ms.addWidget(self.solo)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(3)
        lay.addWidget(name)
        lay.addWidget(self.fx_combo)
        lay.addWidget(self.fx_edit)
        lay.addWidget(self.pan)
        lay.addLayout(ms)
        lay.addWidget(self.fader, 1, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.db_label)
        self._fill_presets()
        # wide enough for the longest preset name (plus the arrow and the theme's padding): whole text
        fm = self.fx_combo.fontMetrics()
        longest = max(fm.horizontalAdvance(self.fx_combo.itemText(i)) for i in range(self.fx_combo.count()))
        self.fx_combo.setMinimumWidth(max(self.fx_combo.sizeHint().width(), longest + COMBO_CHROME_PX))
        self.setFixedWidth(max(STRIP_W, self.fx_combo.minimumWidth() + 2 * 4 + 2))
        self.fader.valueChanged.connect(self._on_fader_changed)
        self.pan.valueChanged.connect(
            lambda v: self.model.set_mixer(self.strip, pan=v / 100.0, merge_key=("pan", self.strip)))
        self.mute.toggled.connect(lambda on: self.model.set_mixer(self.strip, mute=bool(on)))
        self.solo.toggled.connect(lambda on: self.model.set_mixer(self.strip, solo=bool(on)))
        self.fx_combo.activated.connect(self._on_fx_combo_activated)
        self.fx_edit.clicked.connect(self.edit_effects)
        self.refresh()

    def _fill_presets(self) -> None:
        with QSignalBlocker(self.fx_combo):
            self.fx_combo.clear()
            self.fx_combo.addItem(NO_FX)
            try:
                names = sorted(list_presets("fx"))
            except IdmError:
                names = []
            self.fx_combo.addItems(names)

    def refresh(self) -> None:
        s = self.model.session
        if s is None or self.strip not in s.mixer:
            return
        m = s.mixer[self.strip]
        blockers = [QSignalBlocker(w) for w in (self.fader, self.pan, self.mute, self.solo, self.fx_combo)]
        self.fader.setValue(int(round(m.gain_db * GAIN_STEPS_PER_DB)))
        self.pan.setValue(int(round(m.pan * 100)))
        self.mute.setChecked(m.mute)
        self.solo.setChecked(m.solo)
        label = effects_label(m.effects)
        if self.fx_combo.findText(label) < 0:
            self.fx_combo.addItem(label)
        self.fx_combo.setCurrentText(label)
        self.fx_combo.setToolTip(f"Effect chain: {label} (presets from presets/fx)")
        del blockers
        self.db_label.setText(f"{m.gain_db:+.1f} dB")

    def _on_fader_changed(self, value: int) -> None:
        gain = value / GAIN_STEPS_PER_DB
        self.db_label.setText(f"{gain:+.1f} dB")
        self.model.set_mixer(self.strip, gain_db=gain, merge_key=("gain", self.strip))

    def _on_fx_combo_activated(self, index: int) -> None:
        text = self.fx_combo.itemText(index)
        if text == CUSTOM_FX:
            return
        if not self.model.set_effects(self.strip, None if text == NO_FX else text):
            self.refresh()

    def current_chain(self) -> dict:
        s = self.model.session
        effects = s.mixer[self.strip].effects if s is not None else None
        if effects is None:
            return {"schema_version": 1, "effects": []}
        try:
            return resolve_chain(effects)
        except IdmError as exc:
            QMessageBox.warning(self, "Effects", str(exc))
            return {"schema_version": 1, "effects": []}

    def edit_effects(self) -> None:
        dialog = EffectChainDialog(strip_title(self.strip), self.current_chain(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            chain = dialog.chain()
            self.model.set_effects(self.strip, chain if chain["effects"] else None)
        dialog.deleteLater()


class MixerPanel(StripRow):
    """The strips side by side, following the session model."""

    def __init__(self, model: "SessionModel", parent: QWidget | None = None):
        super().__init__(model, spacing=4, parent=parent)
        self.setObjectName("MixerPanel")
        model.session_changed.connect(self._on_model_session_changed)
        model.mixer_changed.connect(self.refresh)
        self._on_model_session_changed()

    @property
    def strips(self) -> dict[str, "MixerStrip"]:
        return self.widgets  # type: ignore[return-value]

    def _on_model_session_changed(self) -> None:
        order = self.ordered_classes()
        if self.model.has_session:
            order += ["residual", "master"]
        self.rebuild(order, lambda strip: MixerStrip(self.model, strip))


def chain_json(effects: Any) -> str:
    """Canonical JSON of an effects value (for comparisons in tests and tools)."""
    return json.dumps(effects, sort_keys=True)
