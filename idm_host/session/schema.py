"""Versions of ``session.json``: the one this idm-host writes, and the steps that bring an older file up to it.

A file names its ``schema_version``. Loading refuses a newer one (:class:`~idm_host.errors.SchemaTooNewError`)
and runs an older one through :data:`MIGRATIONS` one version at a time, before anything is read from it;
saving always writes :data:`SESSION_SCHEMA_VERSION`.

To change the format: raise :data:`SESSION_SCHEMA_VERSION` to ``n + 1``, add ``MIGRATIONS[n]``, a function
that takes a version-``n`` document (a plain dict, already parsed) and returns the version-``n + 1`` one,
and keep the version-``n`` fixture that tests/unit/test_session_migration.py loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import SchemaTooNewError, SessionError

#: The session.json format this version writes and reads.
SESSION_SCHEMA_VERSION = 2


def _v1_to_v2(doc: dict) -> dict:
    """Version 2 keeps one-shots fitted to the record beside the synthetic ones (``kit.<CLS>.fitted_file``
    and ``synthetic_file``); a version-1 session has none."""
    for slot in doc["kit"].values():
        slot.setdefault("fitted_file", None)
        slot.setdefault("synthetic_file", None)
    return doc


#: ``{n: step}``: ``step(doc)`` turns a version-``n`` document into a version-``n + 1`` one.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


def schema_version(doc: dict, doc_path: Path) -> int:
    """The file's ``schema_version``, checked: an integer >= 1 and not newer than this idm-host reads.

    Raises:
        SchemaTooNewError: written by a newer idm-host.
        SessionError: missing or not a version number.
    """
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise SessionError(f"{doc_path}: missing or invalid schema_version {version!r}; this is not a valid session")
    if version > SESSION_SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{doc_path}: written by a newer idm-host (session schema {version}; this version reads up to "
            f"{SESSION_SCHEMA_VERSION}); update idm-host to open it")
    return version


def migrate(doc: dict, doc_path: Path) -> dict:
    """``doc`` brought up to :data:`SESSION_SCHEMA_VERSION` through :data:`MIGRATIONS` (a current one unchanged).

    Raises:
        SchemaTooNewError, SessionError: as :func:`schema_version`; also when a step is missing or fails.
    """
    version = schema_version(doc, doc_path)
    while version < SESSION_SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SessionError(f"{doc_path}: this idm-host cannot convert session schema {version} to "
                               f"{version + 1}; open it with the idm-host that wrote it and save it again")
        try:
            doc = step(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SessionError(f"{doc_path}: corrupt session file: converting it from schema {version} failed "
                               f"({type(exc).__name__}: {exc}); restore it from a backup") from exc
        if not isinstance(doc, dict):
            raise SessionError(f"{doc_path}: the schema {version} conversion gave no document; this is a bug")
        version += 1
        doc["schema_version"] = version
    return doc
