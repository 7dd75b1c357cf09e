"""Kit presets: a sample kit (``presets/kits/*.json`` or a folder of samples named after classes)
and the undoable session command that loads one.

Kept apart from :mod:`idm_host.presets` (which only finds and version-checks JSON files) because it
builds :mod:`idm_host.session` commands, and the session imports the effect chains that use presets.

Example:
    >>> kit = load_kit("synth-acoustic")                    # doctest: +SKIP
    >>> session.apply(kit_command(session, kit))            # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .audio import AUDIO_SUFFIXES
from .classes import DRUM_CLASSES
from .errors import PresetError
from .presets import load_preset
from .session import Compound, ReplaceSample, SetKitParams

__all__ = ["KitPreset", "kit_command", "load_kit"]

_KIT_KEYS = {"schema_version", "name", "description", "samples", "names", "gain_db", "tune_semitones", "choke",
             "velocity_curve", "curve_amount", "blend"}


@dataclass(frozen=True)
class KitPreset:
    """A sample kit: one file per class, plus optional per-class settings.

    Attributes:
        name: the kit's name.
        path: the JSON file (or the folder, for a plain folder of samples).
        samples: ``{class symbol: sample file}``.
        settings: ``{class symbol: {setting: value}}`` for :class:`~idm_host.session.SetKitParams`.
    """

    name: str
    path: Path
    samples: Mapping[str, Path]
    settings: Mapping[str, Mapping[str, Any]]


def _kebab(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def load_kit(name_or_path: "str | os.PathLike") -> KitPreset:
    """A kit by preset name, ``.json`` path, or a folder of samples named after classes.

    In a folder, a file matches a class when its stem is the class symbol (``KD.wav``, ``hh_chh.flac``)
    or its display name in kebab-case (``kick.wav``, ``closed-hi-hat.wav``).

    Raises:
        PresetError: no such kit, a malformed kit file, a missing sample file, or an unknown class.
    """
    p = Path(name_or_path)
    if p.is_dir() and not (p / "kit.json").is_file():
        lookup = {c.lower(): c for c in DRUM_CLASSES}
        lookup.update({_kebab(info.name): c for c, info in DRUM_CLASSES.items()})
        samples: dict[str, Path] = {}
        for f in sorted(p.iterdir()):
            key = f.stem.lower() if f.stem.lower() in lookup else _kebab(f.stem)
            if f.suffix.lower() in AUDIO_SUFFIXES and key in lookup:
                cls = lookup[key]
                if cls in samples:
                    raise PresetError(f"{p}: two files for {cls} ({samples[cls].name}, {f.name}); keep one")
                samples[cls] = f
        if not samples:
            raise PresetError(f"{p}: no samples named after drum classes (e.g. KD.wav, kick.wav, snare.wav)")
        return KitPreset(p.name, p, MappingProxyType(samples), MappingProxyType({}))
    data, path = load_preset("kits", name_or_path)
    unknown = set(data) - _KIT_KEYS
    if unknown:
        raise PresetError(f"{path}: unknown keys {sorted(unknown)}; a kit has {', '.join(sorted(_KIT_KEYS))}")
    raw = data.get("samples")
    if not isinstance(raw, dict) or not raw:
        raise PresetError(f"{path}: \"samples\" must map class symbols to sample files")
    samples = {}
    for cls, rel in raw.items():
        if cls not in DRUM_CLASSES:
            raise PresetError(f"{path}: unknown class {cls!r}; use one of {', '.join(DRUM_CLASSES)}")
        if not isinstance(rel, str):
            raise PresetError(f"{path}: the sample for {cls} must be a file path")
        f = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        if not f.is_file():
            raise PresetError(f"{path}: sample file {f} for {cls} not found; fix the path")
        samples[cls] = f
    settings: dict[str, dict[str, Any]] = {c: {} for c in samples}
    for key in ("gain_db", "tune_semitones"):
        per = data.get(key, {})
        if not isinstance(per, dict):
            raise PresetError(f"{path}: \"{key}\" must map class symbols to numbers")
        for cls, v in per.items():
            if cls not in samples:
                raise PresetError(f"{path}: \"{key}\" names {cls!r}, which has no sample in this kit")
            settings[cls][key] = v
    choke = data.get("choke", {})
    if not isinstance(choke, dict):
        raise PresetError(f"{path}: \"choke\" must map a class to the classes that cut it")
    for cls, by in choke.items():
        if cls not in samples or not isinstance(by, list) or any(b not in DRUM_CLASSES for b in by):
            raise PresetError(f"{path}: choke entry {cls!r}: {by!r} is invalid; e.g. {{\"HH_OHH\": [\"HH_CHH\"]}}")
        settings[cls]["choked_by"] = tuple(by)
    for key in ("velocity_curve", "curve_amount", "blend"):
        if key in data:
            for cls in samples:
                settings[cls][key] = data[key]
    return KitPreset(str(data.get("name") or path.stem), path, MappingProxyType(samples),
                     MappingProxyType({c: MappingProxyType(s) for c, s in settings.items()}))


def kit_command(session: Any, kit: "KitPreset | str | os.PathLike") -> Any:
    """One undoable :class:`~idm_host.session.Compound` that loads ``kit`` into ``session``.

    Classes the kit has but the session lacks are skipped (logged); choke entries naming classes
    the session lacks are dropped. Sample files are read here, so a bad file fails before any edit.
    """
    if not isinstance(kit, KitPreset):
        kit = load_kit(kit)
    cmds: list[Any] = []
    for cls, f in kit.samples.items():
        if cls not in session.classes:
            logging.getLogger(__name__).info("kit %s: class %s is not in this session; skipped", kit.name, cls)
            continue
        cmds.append(ReplaceSample(cls, f))
        params = dict(kit.settings.get(cls, {}))
        if "choked_by" in params:
            params["choked_by"] = tuple(c for c in params["choked_by"] if c in session.classes)
        if params:
            cmds.append(SetKitParams(cls, **params))
    if not cmds:
        raise PresetError(f"kit {kit.name}: none of its classes are in this session ({', '.join(session.classes)})")
    return Compound(cmds, f"load kit {kit.name}")
