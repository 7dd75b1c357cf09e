"""Keyboard shortcuts without clashes, and the editing keys the Help menu shows.

On X11 (the xcb platform) a standard key such as ``StandardKey.Redo`` already holds Ctrl+Shift+Z;
giving an action that sequence again, or giving it to two actions in one context, makes Qt refuse
the key with "Ambiguous shortcut overload". :func:`key_sequences` drops such repeats, and
:func:`shortcut_clashes` finds the sequences that two enabled actions share.
"""
from __future__ import annotations

from typing import Iterable

from PyQt6.QtGui import QAction, QKeySequence

StandardKey = QKeySequence.StandardKey

#: What the editor does with the mouse and keys: (section, input, action). The Help menu shows this.
EDITING_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Mouse", "click an empty spot", "add a hit there (snapped to the grid; Alt: no snap)"),
    ("Mouse", "click a hit", "select it (Ctrl toggles, Shift adds to the selection)"),
    ("Mouse", "drag a hit", "move the selection in time (snapped; Alt: free), or into another lane"),
    ("Mouse", "Shift+drag, or drag the top", "change the selection's velocity"),
    ("Mouse", "drag on an empty spot", "rubber-band select (Ctrl/Shift: add to the selection)"),
    ("Mouse", "right-click a hit", "delete it (or the selection it belongs to)"),
    ("Mouse", "wheel over a hit", "velocity up/down (the whole selection if the hit is selected)"),
    ("Mouse", "wheel / Ctrl+wheel", "scroll in time / zoom around the mouse"),
    ("Mouse", "hover over a hit", "its exact time and velocity"),
    ("Mouse", "click the ruler", "set the edit cursor (where Paste puts hits)"),
    ("Mouse", "click a lane's name", "select that lane's hits (Shift/Ctrl: add)"),
    ("Mouse", "drag a lane's name", "drag that drum's separated stem (WAV) out of the window"),
    ("Keys", "Delete, Backspace", "delete the selection"),
    ("Keys", "Ctrl+C  Ctrl+X  Ctrl+V", "copy, cut, paste at the edit cursor"),
    ("Keys", "Ctrl+A  Esc", "select all, clear the selection"),
    ("Keys", "Ctrl+Z  Ctrl+Shift+Z  Ctrl+Y", "undo, redo, redo"),
    ("Keys", "Q", "quantise the selection (or every hit) to the grid"),
    ("Keys", "Up, Down", "velocity of the selection up/down"),
    ("Keys", "Ctrl+Left, Ctrl+Right", "nudge the selection by a grid step (Alt: 1 ms)"),
    ("Keys", "Left, Right, PageUp, PageDown", "scroll"),
    ("Keys", "+  -  Ctrl+0", "zoom in, zoom out, fit the whole file"),
    ("Keys", "Home, End", "jump to the start, the end"),
    ("Keys", "Space", "play / stop"),
    ("Fields", "Time, Velocity (status bar)", "type an exact time (s) or MIDI velocity (1-127) "
                                              "for the selected hits"),
)


def key_sequences(*specs: "StandardKey | str | QKeySequence") -> list[QKeySequence]:
    """The sequences of ``specs`` (standard keys expanded for this platform), each sequence once."""
    out: list[QKeySequence] = []
    seen: set[str] = set()
    for spec in specs:
        if isinstance(spec, StandardKey):
            seqs = QKeySequence.keyBindings(spec)
        else:
            seqs = [QKeySequence(spec)]
        for seq in seqs:
            text = seq.toString(QKeySequence.SequenceFormat.PortableText)
            if text and text not in seen:
                seen.add(text)
                out.append(seq)
    return out


def shortcut_clashes(actions: Iterable[QAction]) -> dict[str, list[str]]:
    """Sequences held by more than one action with the same context, or twice by one action, enabled
    or not (a disabled one clashes once it is enabled): ``{sequence: [action texts]}``, empty when
    every shortcut can fire."""
    holders: dict[tuple[str, int], list[str]] = {}
    for a in actions:
        name = a.text().replace("&", "") or a.objectName() or "?"
        for seq in a.shortcuts():
            text = seq.toString(QKeySequence.SequenceFormat.PortableText)
            if text:
                holders.setdefault((text, int(a.shortcutContext().value)), []).append(name)
    return {text: names for (text, _), names in holders.items() if len(names) > 1}
