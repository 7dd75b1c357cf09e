"""Presets: JSON files under ``presets/<kind>/`` found by name (kebab-case file stem) or by path.

Kinds: ``"fx"`` (effect chains), ``"kits"`` (sample kits), ``"drum_maps"``. Search order for a name:
``$IDM_HOST_PRESETS/<kind>/``, the user's config folder (``$IDM_HOST_CONFIG/presets/<kind>/``), then the
presets shipped with idm-host. Every preset carries ``schema_version``; a newer one is refused.

Example:
    >>> data, path = load_preset("fx", "tight-kick")      # doctest: +SKIP
    >>> sorted(list_presets("fx"))[:2]                      # doctest: +SKIP
    ['fat-snare', 'lo-fi']
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import PresetError, SchemaTooNewError

KINDS = ("fx", "kits", "drum_maps")
#: Highest schema_version of each kind this version reads.
SCHEMA_VERSIONS = {"fx": 1, "kits": 1, "drum_maps": 1}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class PresetTooNewError(PresetError, SchemaTooNewError):
    """A preset written by a newer idm-host (both a PresetError and a SchemaTooNewError)."""


def shipped_dir() -> Path:
    """The ``presets/`` folder shipped with idm-host."""
    return Path(__file__).resolve().parents[1] / "presets"


def preset_dirs(kind: str) -> list[Path]:
    """Folders searched for presets of ``kind``, in order."""
    if kind not in KINDS:
        raise PresetError(f"preset kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    dirs = []
    env = os.environ.get("IDM_HOST_PRESETS")
    if env:
        dirs.append(Path(env) / kind)
    cfg = os.environ.get("IDM_HOST_CONFIG")
    if cfg:
        dirs.append(Path(cfg) / "presets" / kind)
    dirs.append(shipped_dir() / kind)
    return dirs


def list_presets(kind: str) -> dict[str, Path]:
    """``{name: path}`` of every preset of ``kind`` (earlier folders win)."""
    out: dict[str, Path] = {}
    for d in preset_dirs(kind):
        if d.is_dir():
            for f in sorted(d.glob("*.json")):
                out.setdefault(f.stem, f)
    return out


def find_preset(kind: str, name_or_path: "str | os.PathLike") -> Path:
    """The file for a preset name or path.

    Raises:
        PresetError: no such preset (the message lists the available names).
    """
    s = str(name_or_path)
    p = Path(s)
    if p.suffix == ".json" or os.sep in s or (os.altsep and os.altsep in s):
        if p.is_file():
            return p
        raise PresetError(f"{p}: {kind} preset file not found; check the path")
    if p.is_dir() and (p / "kit.json").is_file() and kind == "kits":
        return p / "kit.json"
    found = list_presets(kind)
    if s in found:
        return found[s]
    raise PresetError(f"{kind} preset {s!r} not found; available: {', '.join(sorted(found)) or 'none'}")


def read_preset_file(kind: str, path: Path) -> dict[str, Any]:
    """Read and version-check one preset file.

    Raises:
        SchemaTooNewError: the preset is from a newer idm-host.
        PresetError: not valid JSON, not an object, or no valid ``schema_version``.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PresetError(f"{path}: {kind} preset file not found; check the path") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path}: not valid JSON ({exc}); fix the file or pick another preset") from exc
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a {kind} preset must be a JSON object with schema_version")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PresetError(f"{path}: missing or invalid schema_version {version!r}; add \"schema_version\": 1")
    if version > SCHEMA_VERSIONS[kind]:
        raise PresetTooNewError(f"{path}: {kind} preset schema {version} is newer than this idm-host reads "
                                f"({SCHEMA_VERSIONS[kind]}); update idm-host")
    return data


def load_preset(kind: str, name_or_path: "str | os.PathLike") -> tuple[dict[str, Any], Path]:
    """``(data, path)`` of a preset given by name or path. See :func:`find_preset`, :func:`read_preset_file`."""
    path = find_preset(kind, name_or_path)
    return read_preset_file(kind, path), path


def check_name(name: str) -> str:
    """Preset names are kebab-case (``tight-room``)."""
    if not _NAME_RE.match(name):
        raise PresetError(f"preset name {name!r} is invalid; use lowercase letters, digits and dashes")
    return name


# ------------------------------------------------------------------------------------------- kits
_KIT_KEYS = {"schema_version", "name", "description", "samples", "names", "gain_db", "tune_semitones", "choke",
             "velocity_curve", "curve_amount", "blend"}
_AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg")


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
    from .classes import DRUM_CLASSES

    p = Path(name_or_path)
    if p.is_dir() and not (p / "kit.json").is_file():
        lookup = {c.lower(): c for c in DRUM_CLASSES}
        lookup.update({_kebab(info.name): c for c, info in DRUM_CLASSES.items()})
        samples: dict[str, Path] = {}
        for f in sorted(p.iterdir()):
            key = f.stem.lower() if f.stem.lower() in lookup else _kebab(f.stem)
            if f.suffix.lower() in _AUDIO_SUFFIXES and key in lookup:
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
    import logging

    from .session import Compound, ReplaceSample, SetKitParams

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
