"""Presets: JSON files under ``presets/<kind>/`` found by name (kebab-case file stem) or by path.

Kinds: ``"fx"`` (effect chains), ``"kits"`` (sample kits, read by :mod:`idm_host.kit_presets`), ``"drum_maps"``. Search order for a name:
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
from pathlib import Path
from typing import Any

from .errors import PresetError, PresetTooNewError

KINDS = ("fx", "kits", "drum_maps")
#: Highest schema_version of each kind this version reads.
SCHEMA_VERSIONS = {"fx": 1, "kits": 1, "drum_maps": 1}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

__all__ = ["KINDS", "SCHEMA_VERSIONS", "PresetTooNewError", "check_name", "find_preset", "list_presets",
           "load_preset", "preset_dirs", "read_preset_file", "shipped_dir"]


def shipped_dir() -> Path:
    """The presets shipped with idm-host: ``idm_host/_presets/`` in an installed wheel (setup.py
    carries the checkout's ``presets/`` there), else the checkout's top-level ``presets/`` folder."""
    here = Path(__file__).resolve().parent
    installed = here / "_presets"
    return installed if installed.is_dir() else here.parent / "presets"


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
