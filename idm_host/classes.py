"""Drum classes: symbols, display names, General MIDI notes and the 5-group merge.

The model defines its class list (the official checkpoint's is :data:`IDM_CLASSES`); this module
holds what the rest of the program knows about each symbol.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DrumClass:
    """One drum class.

    Attributes:
        symbol: the model's class symbol, e.g. ``"KD"``.
        name: a display name, e.g. ``"Kick"``.
        gm_note: the General MIDI note written for this class (1-based channel 10 kit).
        group: the 5-group class it merges into (``KD``, ``SD``, ``HH``, ``TT``, ``CY``).
    """

    symbol: str
    name: str
    gm_note: int
    group: str


#: The official checkpoint's classes, in its channel order (alphabetical).
IDM_CLASSES: tuple[str, ...] = (
    "CY_CR", "CY_RD", "HH_CHH", "HH_OHH", "KD", "SD", "TT_HFT", "TT_HMT", "TT_LMT",
)

DRUM_CLASSES: dict[str, DrumClass] = {
    c.symbol: c
    for c in (
        DrumClass("CY_CR", "Crash", 49, "CY"),
        DrumClass("CY_RD", "Ride", 51, "CY"),
        DrumClass("HH_CHH", "Closed hi-hat", 42, "HH"),
        DrumClass("HH_OHH", "Open hi-hat", 46, "HH"),
        DrumClass("KD", "Kick", 36, "KD"),
        DrumClass("SD", "Snare", 38, "SD"),
        DrumClass("TT_HFT", "Floor tom", 43, "TT"),
        DrumClass("TT_HMT", "High tom", 50, "TT"),
        DrumClass("TT_LMT", "Mid tom", 47, "TT"),
    )
}

#: The 5 groups of the LarsNet-style merge, in output order.
GROUPS: tuple[str, ...] = ("KD", "SD", "HH", "TT", "CY")
GROUP_NAMES: dict[str, str] = {
    "KD": "Kick", "SD": "Snare", "HH": "Hi-hat", "TT": "Toms", "CY": "Cymbals",
}


def class_info(symbol: str) -> DrumClass:
    """Return what is known of ``symbol``; unknown symbols get a neutral entry (note 38)."""
    info = DRUM_CLASSES.get(symbol)
    if info is not None:
        return info
    group = symbol.split("_", 1)[0] if symbol.split("_", 1)[0] in GROUPS else symbol
    return DrumClass(symbol, symbol, 38, group)


def group_of(symbol: str) -> str:
    """The 5-group symbol that ``symbol`` merges into."""
    return class_info(symbol).group
