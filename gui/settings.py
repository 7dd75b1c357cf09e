"""Where idm-studio keeps window state and recent files (QSettings).

``$IDM_HOST_CONFIG`` (a folder) redirects the settings to ``$IDM_HOST_CONFIG/idm-studio.ini``, which
tests use so that they never touch the user's settings.
"""
from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QSettings

ORGANIZATION = "idm-host"
APPLICATION = "idm-studio"
MAX_RECENT = 10


def make_settings() -> QSettings:
    """The settings store: an INI file under ``$IDM_HOST_CONFIG`` if set, else the platform's."""
    folder = os.environ.get("IDM_HOST_CONFIG")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / f"{APPLICATION}.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent_files", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def push_recent_file(settings: QSettings, path: str | os.PathLike) -> list[str]:
    """Put ``path`` first in the recent list (no duplicates, at most :data:`MAX_RECENT`)."""
    p = str(Path(path).resolve())
    items = [p] + [r for r in recent_files(settings) if r != p]
    items = items[:MAX_RECENT]
    settings.setValue("recent_files", items)
    return items


def remembered_folder(settings: QSettings, key: str) -> Path | None:
    value = settings.value(key)
    return Path(str(value)) if value else None


def writable_folder(*candidates: "str | os.PathLike | None") -> Path:
    """The first candidate that is an existing folder this user may write into, else the home folder."""
    for c in candidates:
        if c is None or str(c) == "":
            continue
        p = Path(c).expanduser()
        if p.is_dir() and os.access(p, os.W_OK | os.X_OK):
            return p
    return Path.home()
