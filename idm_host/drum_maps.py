"""Drum maps: which MIDI note each drum class is written as, for a target drum instrument.

Maps are data, in ``presets/drum_maps/<name>.json`` (or any path)::

    {
      "schema_version": 1,
      "name": "gm",
      "title": "General MIDI",
      "source": "where the notes come from",
      "verified": "how far the source was checked",
      "notes": {"KD": 36, "SD": 38, ...},          # the note written for each class
      "read_notes": {"KD": [35], ...},             # optional: further notes read back as a class
      "note_names": {"36": {"name": "Kick", "daw": "C1", "fl_studio": "C3"}, ...}
    }

Note names come in two conventions: most DAWs (Ableton, Cubase, Logic, REAPER's default) call
note 36 ``C1`` (middle C, note 60, is ``C3``); FL Studio calls it ``C3`` (note 60 is ``C5``). The
loader checks that the names stored in a file agree with the note numbers.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from .classes import DRUM_CLASSES, GROUPS, IDM_CLASSES, group_of
from .errors import PresetError, SchemaTooNewError

log = logging.getLogger(__name__)

DRUM_MAP_SCHEMA_VERSION = 1
_NOTE_LETTERS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Octave of note 0 in each naming convention.
_OCTAVE_OF_NOTE_0 = {"daw": -2, "fl_studio": 0}
#: Which model class stands for a whole group when a merged (5-group) transcription is written.
GROUP_REPRESENTATIVE = {"KD": "KD", "SD": "SD", "HH": "HH_CHH", "TT": "TT_LMT", "CY": "CY_CR"}

PathLike = Union[str, os.PathLike]


def note_name(note: int, convention: str = "daw") -> str:
    """The name of MIDI note ``note`` (0..127).

    Args:
        note: MIDI note number.
        convention: ``"daw"`` (36 = C1, the convention of Ableton, Cubase, Logic and most drum
            plug-in manuals) or ``"fl_studio"`` (36 = C3).

    Example:
        >>> note_name(36), note_name(36, "fl_studio"), note_name(42)
        ('C1', 'C3', 'F#1')
    """
    if convention not in _OCTAVE_OF_NOTE_0:
        raise PresetError(f"unknown note-name convention {convention!r}; use 'daw' or 'fl_studio'")
    if not 0 <= int(note) <= 127:
        raise PresetError(f"MIDI note {note} is out of range; notes are 0..127")
    n = int(note)
    return f"{_NOTE_LETTERS[n % 12]}{n // 12 + _OCTAVE_OF_NOTE_0[convention]}"


def drum_maps_dir() -> Path:
    """The folder of the drum maps shipped with idm-host."""
    from .presets import shipped_dir

    return shipped_dir() / "drum_maps"


@dataclass(frozen=True)
class DrumMap:
    """A note map for one drum instrument.

    Attributes:
        name: the file stem, e.g. ``"gm"``; what ``--drum-map`` takes.
        title: a display name, e.g. ``"General MIDI"``.
        source: where the notes come from (a manual, a web page) and what was checked.
        verified: how far the notes were verified against the source.
        notes: per class symbol, the note written.
        read_notes: per note, the class it is read back as (includes every written note).
        note_names: per note, the instrument's name for it.
        path: the JSON file it came from, if any.
    """

    name: str
    title: str
    source: str
    verified: str
    notes: Mapping[str, int]
    read_notes: Mapping[int, str]
    note_names: Mapping[int, str] = field(default_factory=dict)
    path: Path | None = None

    def note_for(self, symbol: str) -> int:
        """The note written for class ``symbol`` (a model class or a 5-group symbol).

        Raises:
            PresetError: the map has no note for ``symbol``.
        """
        if symbol in self.notes:
            return self.notes[symbol]
        rep = GROUP_REPRESENTATIVE.get(symbol)
        if rep is not None and rep in self.notes:
            return self.notes[rep]
        raise PresetError(
            f"drum map {self.name!r} has no note for class {symbol!r}; add it to \"notes\" in "
            f"{self.path or 'the map'} (known classes: {', '.join(self.notes)})"
        )

    def class_for(self, note: int, classes: tuple[str, ...] = IDM_CLASSES) -> str | None:
        """The class among ``classes`` that note ``note`` is read as, or ``None`` if unmapped.

        A note mapped to a model class is read as that class's 5-group when ``classes`` holds
        groups (a merged transcription).
        """
        symbol = self.read_notes.get(int(note))
        if symbol is None:
            return None
        if symbol in classes:
            return symbol
        group = group_of(symbol)
        return group if group in classes else None

    def describe(self, symbol: str) -> dict[str, Any]:
        """Note number, the instrument's name for it, and both note-name conventions."""
        note = self.note_for(symbol)
        return {
            "class": symbol,
            "note": note,
            "name": self.note_names.get(note, ""),
            "daw": note_name(note, "daw"),
            "fl_studio": note_name(note, "fl_studio"),
        }

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, list[int]] = {}
        for note, symbol in sorted(self.read_notes.items()):
            if self.notes.get(symbol) != note:
                extra.setdefault(symbol, []).append(note)
        used = sorted(set(self.notes.values()) | set(self.read_notes))
        return {
            "schema_version": DRUM_MAP_SCHEMA_VERSION,
            "name": self.name,
            "title": self.title,
            "source": self.source,
            "verified": self.verified,
            "notes": dict(self.notes),
            "read_notes": extra,
            "note_names": {
                str(n): {"name": self.note_names.get(n, ""), "daw": note_name(n, "daw"),
                         "fl_studio": note_name(n, "fl_studio")}
                for n in used
            },
        }


def _check_note(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise PresetError(f"{where}: {value!r} is not a MIDI note; notes are whole numbers 0..127")
    return value


def drum_map_from_dict(data: Any, *, where: str = "drum map", path: Path | None = None) -> DrumMap:
    """Validate a drum map's JSON data and build a :class:`DrumMap`.

    Raises:
        SchemaTooNewError: ``schema_version`` is newer than this idm-host reads.
        PresetError: anything else is wrong (missing classes, bad notes, contradictory names).
    """
    if not isinstance(data, Mapping):
        raise PresetError(f"{where}: expected a JSON object at the top level")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PresetError(f"{where}: \"schema_version\" must be a whole number >= 1 (got {version!r})")
    if version > DRUM_MAP_SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{where}: schema_version {version} is newer than this idm-host reads "
            f"({DRUM_MAP_SCHEMA_VERSION}); update idm-host"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise PresetError(f"{where}: \"name\" must be a non-empty string")
    for key in ("title", "source", "verified"):
        if not isinstance(data.get(key, ""), str):
            raise PresetError(f"{where}: \"{key}\" must be a string")
    notes_in = data.get("notes")
    if not isinstance(notes_in, Mapping):
        raise PresetError(f"{where}: \"notes\" must map class symbols to notes")
    notes: dict[str, int] = {}
    for symbol, value in notes_in.items():
        if symbol not in DRUM_CLASSES and symbol not in GROUPS:
            raise PresetError(
                f"{where}: unknown class {symbol!r} in \"notes\"; classes are {', '.join(IDM_CLASSES)}"
            )
        notes[symbol] = _check_note(value, f"{where}: notes.{symbol}")
    missing = [c for c in IDM_CLASSES if c not in notes]
    if missing:
        raise PresetError(f"{where}: \"notes\" has no note for {', '.join(missing)}; every class needs one")
    read: dict[int, str] = {}
    for symbol, note in notes.items():
        read.setdefault(note, symbol)  # a note shared by two classes reads as the first listed
    extra_in = data.get("read_notes", {})
    if not isinstance(extra_in, Mapping):
        raise PresetError(f"{where}: \"read_notes\" must map class symbols to lists of notes")
    for symbol, values in extra_in.items():
        if symbol not in notes:
            raise PresetError(f"{where}: \"read_notes\" names {symbol!r}, which has no entry in \"notes\"")
        if not isinstance(values, list):
            raise PresetError(f"{where}: read_notes.{symbol} must be a list of notes")
        for value in values:
            note = _check_note(value, f"{where}: read_notes.{symbol}")
            if note in read and read[note] != symbol:
                raise PresetError(
                    f"{where}: note {note} is read as both {read[note]!r} and {symbol!r}; keep one"
                )
            read[note] = symbol
    names_in = data.get("note_names", {})
    if not isinstance(names_in, Mapping):
        raise PresetError(f"{where}: \"note_names\" must map note numbers to names")
    names: dict[int, str] = {}
    for key, entry in names_in.items():
        try:
            note = int(key)
        except ValueError:
            raise PresetError(f"{where}: note_names key {key!r} is not a note number") from None
        _check_note(note, f"{where}: note_names")
        if isinstance(entry, str):
            names[note] = entry
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name", ""), str):
            raise PresetError(f"{where}: note_names.{key} must be a name or {{\"name\", \"daw\", \"fl_studio\"}}")
        for convention in ("daw", "fl_studio"):
            stated = entry.get(convention)
            if stated is not None and stated != note_name(note, convention):
                raise PresetError(
                    f"{where}: note_names.{key} says {convention} name {stated!r}, but note {note} is "
                    f"{note_name(note, convention)!r} in that convention; fix the name"
                )
        names[note] = entry.get("name", "")
    return DrumMap(
        name=name,
        title=data.get("title", name),
        source=data.get("source", ""),
        verified=data.get("verified", ""),
        notes=notes,
        read_notes=read,
        note_names=names,
        path=path,
    )


def _gm_fallback() -> DrumMap:
    """General MIDI from :mod:`idm_host.classes`, for when the presets folder is not installed."""
    notes = {c: DRUM_CLASSES[c].gm_note for c in IDM_CLASSES}
    return DrumMap("gm", "General MIDI", "General MIDI 1 percussion key map (built in)", "built in",
                   notes, {n: c for c, n in notes.items()}, {})


def load_drum_map(name_or_path: "str | PathLike | DrumMap" = "gm") -> DrumMap:
    """Load a drum map by name or from a JSON file.

    Names are looked up like every preset (:mod:`idm_host.presets`): ``$IDM_HOST_PRESETS/drum_maps/``,
    the user's config folder, then the maps shipped in ``presets/drum_maps/``.

    Args:
        name_or_path: a map name such as ``"gm"`` or ``"superior-drummer-3"``, a path to a JSON
            file, or a :class:`DrumMap` (returned as is).

    Raises:
        PresetError: no such map, or the file is not a valid drum map.

    Example:
        >>> load_drum_map("gm").note_for("KD")
        36
    """
    from .presets import find_preset, list_presets

    if isinstance(name_or_path, DrumMap):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise PresetError(f"a drum map is a name or a path, not {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    if text == "gm" and "gm" not in list_presets("drum_maps"):
        return _gm_fallback()
    try:
        candidate = find_preset("drum_maps", text)
    except PresetError:
        if text.endswith(".json") or os.sep in text:
            raise PresetError(f"{text}: drum map file not found; check the path") from None
        known = ", ".join(m.name for m in list_drum_maps()) or "none installed"
        raise PresetError(f"unknown drum map {text!r}; known maps: {known} (or give a .json path)") from None
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{candidate}: cannot read the drum map ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise PresetError(f"{candidate}: not valid JSON ({exc}); fix the file") from exc
    return drum_map_from_dict(data, where=str(candidate), path=candidate)


def list_drum_maps() -> list[DrumMap]:
    """Every valid map in the preset folders, sorted by name; broken files are logged and skipped."""
    from .presets import list_presets

    out: list[DrumMap] = []
    for path in list_presets("drum_maps").values():
        try:
            out.append(load_drum_map(path))
        except PresetError as exc:
            log.warning("skipping drum map %s: %s", path, exc)
    if not any(m.name == "gm" for m in out):
        out.append(_gm_fallback())
    return sorted(out, key=lambda m: m.name)
