"""Sessions on disk: ``session.json`` (its content, :mod:`.schema`'s versions) and the audio files beside it,
saved atomically and read back with every reference checked.

Saving writes a new session into a temporary folder beside it (:func:`~idm_host.fsutil.make_temp_dir`) and
renames it into place; an existing session gets its new files first (content-hashed names) and then one
atomic swap of ``session.json`` (:func:`~idm_host.fsutil.atomic_write_text`), after which the files it no
longer names are removed. Every temporary is made by :mod:`idm_host.fsutil`, so the next save (under the
session's :class:`~idm_host.fsutil.FolderLock`) finds and removes what a killed one left.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .. import __version__
from ..classes import class_info
from ..errors import AudioError, BusyError, IdmError, SessionError
from ..fsutil import (FolderLock, atomic_write_text, fsync_dir, make_dirs, make_temp_dir, os_error_text,
                      remove_empty, remove_leftovers, remove_path)
from ..tempo import Tempo
from ..types import Stems
from . import schema
from .parts import (KIT_SCALARS, MASTER, RESIDUAL, SESSION_SUFFIX, ChannelStrip, KitSlot, PathLike, SessionHit,
                    SessionState, SourceInfo)

if TYPE_CHECKING:
    from .document import Session

log = logging.getLogger("idm_host.session")

#: The folders of a session that hold its audio files.
PARTS = ("extracted", "kit", "stems")
#: Full scale of the 24-bit stems: sample = int / FULL_SCALE_24 (pedalboard's FLAC decoder).
FULL_SCALE_24 = 2.0 ** 23 - 1

#: ``(stems, {strip: (file, scale)})``: the files a stems object lies in inside a session folder.
StemFiles = tuple[Stems, dict[str, tuple[str, float]]]


@dataclass(frozen=True)
class LoadedSession:
    """What :func:`read_session` read: the arguments of a :class:`~idm_host.session.Session`, its folder,
    and where its stems lie."""

    classes: tuple[str, ...]
    sample_rate: int
    source: SourceInfo
    state: SessionState
    extracted: Mapping[str, tuple[np.ndarray, float]]
    model: str
    next_hit_id: int
    path: Path
    stem_files: StemFiles | None


def session_dict(session: "Session") -> dict:
    """session.json's content, without the audio files' names (:func:`save_session` fills them in)."""
    st = session.state
    return {
        "schema_version": schema.SESSION_SCHEMA_VERSION,
        "app": f"idm-host {__version__}",
        "model": session.model,
        "sample_rate": session.sample_rate,
        "source": session.source.to_dict(),
        "classes": [{"symbol": c, "name": class_info(c).name, "gm_note": class_info(c).gm_note}
                    for c in session.classes],
        "next_hit_id": session.next_hit_id,
        "tempo": st.tempo.to_dict(),
        "hits": {c: [{"id": h.id, "time_s": h.time_s, "velocity": h.velocity} for h in st.hits[c]]
                 for c in session.classes},
        "kit": {c: {f: (list(getattr(s, f)) if f == "choked_by" else getattr(s, f)) for f in KIT_SCALARS}
                for c, s in st.kit.items()},
        "extracted": {c: {"track_gain": session.extracted_one_shot(c)[1]} for c in session.classes},
        "mixer": {c: {"gain_db": m.gain_db, "mute": m.mute, "solo": m.solo, "pan": m.pan,
                      "effects": m.effects} for c, m in st.mixer.items()},
    }


def _json_text(doc: dict) -> str:
    return json.dumps(doc, indent=1, allow_nan=False)


# -------------------------------------------------------------------------------------------- save
def save_session(session: "Session", path: PathLike, *, overwrite: bool = False,
                 stem_files: StemFiles | None = None) -> tuple[Path, StemFiles | None]:
    """Save as a ``NAME.idmsession/`` folder, atomically.

    Saving to the folder this session came from (or was last saved to) needs no flag; any other
    existing folder needs ``overwrite=True``, and a folder that is not a session is never replaced.

    Args:
        stem_files: where ``session.stems`` lies in the session's own folder, if it was loaded from or
            saved to one (those files are reused, not encoded again).

    Returns:
        the folder path, and where the saved stems lie (for the next save).

    Raises:
        SessionError: the folder exists (without ``overwrite``), is not a session, or cannot be written.
    """
    p = Path(path)
    if p.suffix != SESSION_SUFFIX:
        p = p.with_name(p.name + SESSION_SUFFIX)
    p = p.absolute()
    same = session.path is not None and p == session.path
    if p.is_symlink():
        raise SessionError(f"{p}: is a link; idm-host saves sessions only into real folders; "
                           "save under a new name, or open the folder the link points to")
    if p.exists():
        if not p.is_dir() or not (p / "session.json").is_file():
            raise SessionError(f"{p}: exists and is not an idm-host session; choose another name")
        if not (same or overwrite):
            raise SessionError(f"{p}: already exists; choose another name or pass overwrite=True")
        for sub in PARTS:
            if (p / sub).is_symlink() or ((p / sub).exists() and not (p / sub).is_dir()):
                raise SessionError(f"{p / sub}: is a link or a file, not a folder; idm-host never saves "
                                   "through links; save the session under a new name (a copy with real folders)")
    created: list[Path] = []
    try:
        created = make_dirs(p.parent)
        with FolderLock(p, what="saving"):
            _remove_leftovers(p)
            if p.exists():
                saved = _save_into_existing(session, p, stem_files)
            else:
                saved = _save_new(session, p, stem_files)
    except BaseException as exc:
        remove_empty(created)
        if isinstance(exc, (SessionError, BusyError)):
            raise
        if isinstance(exc, IdmError):
            raise SessionError(str(exc)) from exc
        if isinstance(exc, OSError):
            raise SessionError(f"{p}: cannot save the session ({os_error_text(exc)}); "
                               "check space and permissions") from exc
        if isinstance(exc, RecursionError):
            raise SessionError(f"{p}: cannot save the session: an effect chain is nested too deeply") from exc
        raise
    return p, saved


def _write_payload(session: "Session", folder: Path, reuse: Path | None,
                   stem_files: StemFiles | None) -> tuple[dict, list[str], StemFiles | None]:
    """Write audio files into ``folder`` (hard-linking identical ones from ``reuse``); return the doc, the
    files it names, and where its stems lie."""
    from ..audio import save_audio

    doc = session_dict(session)
    written: set[str] = set()

    def have(rel: str) -> bool:
        """``rel`` is in ``folder`` already, or is linked in from ``reuse``."""
        dest = folder / rel
        if rel in written or (dest.is_file() and not dest.is_symlink()):
            written.add(rel)
            return True
        old = reuse / rel if reuse is not None else None
        if old is not None and old.is_file() and not old.is_symlink() and old.resolve() != dest.resolve():
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink():
                dest.unlink()
            try:
                os.link(old, dest)
            except OSError:
                shutil.copy2(old, dest)
            written.add(rel)
            return True
        return False

    def put(rel_dir: str, stem: str, samples: np.ndarray, fmt: str, bit_depth: int) -> str:
        arr = np.ascontiguousarray(samples, dtype=np.float32)
        ints = None
        if fmt == "flac":  # hash what the file will hold, so decoded-and-unedited hashes the same
            ints = to_int24(arr)
            digest = hashlib.sha256(ints.tobytes() + str(arr.shape).encode() + b"int24").hexdigest()[:16]
        else:
            digest = hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]
        rel = f"{rel_dir}/{stem}-{digest}.{fmt}"
        if have(rel):
            return rel
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if ints is not None:
            arr = from_int24(ints)
        save_audio(dest, arr, session.sample_rate, format=fmt, bit_depth=bit_depth, overwrite=dest.is_symlink())
        written.add(rel)
        return rel

    for c in session.classes:
        one_shot, _ = session.extracted_one_shot(c)
        doc["extracted"][c]["file"] = put("extracted", c, one_shot, "wav", 32)
        slot = session.kit[c]
        fitted_rel: str | None = None
        synthetic_rel: str | None = None
        if slot.fitted is not None and slot.synthetic is not None:
            fitted_rel = put("kit", f"{c}-fitted", slot.fitted, "wav", 32)
            synthetic_rel = put("extracted", c, slot.synthetic, "wav", 32)
        doc["kit"][c]["fitted_file"] = fitted_rel
        doc["kit"][c]["synthetic_file"] = synthetic_rel
        if slot.origin == "extracted" and _same(slot.one_shot, one_shot):
            doc["kit"][c]["file"] = doc["extracted"][c]["file"]
        elif slot.origin == "fitted" and slot.fitted is not None and _same(slot.one_shot, slot.fitted):
            doc["kit"][c]["file"] = fitted_rel
        else:
            doc["kit"][c]["file"] = put("kit", c, slot.one_shot, "wav", 32)
    saved_stems: StemFiles | None = None
    if session.stems is not None:
        st = session.stems
        known = stem_files[1] if stem_files is not None and stem_files[0] is st else {}
        doc["stems"] = {"classes": list(st.classes), "files": {}, "scales": {}, "sample_rate": st.sample_rate}
        for c, x in list(zip(st.classes, st.audio)) + [(RESIDUAL, st.residual)]:
            if c in known and have(known[c][0]):  # the same stems object: its file is already right
                rel, scale = known[c]
            else:
                # FLAC clips at full scale: store louder stems divided by a power of two (exact)
                peak = float(np.max(np.abs(x))) if x.size else 0.0
                scale = 2.0 ** math.ceil(math.log2(peak / 0.99)) if peak > 0.99 else 1.0
                rel = put("stems", c, x / np.float32(scale), "flac", 24)
            doc["stems"]["files"][c] = rel
            doc["stems"]["scales"][c] = scale
        saved_stems = (st, {c: (doc["stems"]["files"][c], doc["stems"]["scales"][c])
                                         for c in doc["stems"]["files"]})
    return doc, sorted(written), saved_stems


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))


def _remove_leftovers(p: Path) -> None:
    """Remove what killed saves of ``p`` left (the caller holds ``p``'s lock)."""
    remove_leftovers(p, locked=True)
    for old in p.parent.glob(f".{p.name}.*.saving"):  # idm-host 0.1's temporary folders
        remove_path(old)
    if p.is_dir() and not p.is_symlink():
        for d in [p] + [p / sub for sub in PARTS]:
            if d.is_dir() and not d.is_symlink():
                for f in d.glob(".*.part"):
                    remove_path(f)


def _save_new(session: "Session", p: Path, stem_files: StemFiles | None) -> StemFiles | None:
    """Build the session in a temporary folder beside ``p`` and rename it into place."""
    tmp = make_temp_dir(p)
    try:
        reuse = session.path if session.path is not None and session.path.is_dir() else None
        doc, files, saved = _write_payload(session, tmp, reuse, stem_files)
        atomic_write_text(tmp / "session.json", _json_text(doc), clean=False)
        for d in {Path(f).parent for f in files} | {Path(".")}:
            fsync_dir(tmp / d)
        os.rename(tmp, p)  # atomic: the session appears complete or not at all
        fsync_dir(p.parent)
    except BaseException:
        remove_path(tmp)
        raise
    return saved


def _save_into_existing(session: "Session", p: Path, stem_files: StemFiles | None) -> StemFiles | None:
    """Write the new files into ``p``, swap ``session.json`` atomically, then remove what it no longer names."""
    reuse = session.path if session.path is not None and session.path.is_dir() and session.path != p else None
    doc, files, saved = _write_payload(session, p, reuse, stem_files)
    for d in {Path(f).parent for f in files}:
        fsync_dir(p / d)
    atomic_write_text(p / "session.json", _json_text(doc), overwrite=True)  # the commit point
    fsync_dir(p)
    keep = set(files)
    for sub in PARTS:
        d = p / sub
        if d.is_symlink() or not d.is_dir():  # checked before the save; never walk a link
            continue
        for f in d.iterdir():
            if f"{sub}/{f.name}" not in keep and (f.is_symlink() or f.is_file()):
                try:
                    f.unlink()  # a link is removed as a link: its target is not the session's
                except OSError:
                    log.warning("could not remove stale file %s", f)

    return saved


# -------------------------------------------------------------------------------------------- load
def read_session(path: PathLike) -> LoadedSession:
    """Read a ``NAME.idmsession/`` folder (``path`` may also name it without its suffix, or its
    ``session.json``), migrating an older schema first.

    Raises:
        SchemaTooNewError: written by a newer idm-host.
        SessionError: the folder is missing, not a session, or its files are corrupt.
    """
    from ..audio import load_audio

    p = Path(path).absolute()
    if not p.exists() and p.suffix != SESSION_SUFFIX and p.with_name(p.name + SESSION_SUFFIX).exists():
        p = p.with_name(p.name + SESSION_SUFFIX)
    if p.is_file() and p.name == "session.json":
        p = p.parent
    if not p.is_dir():
        raise SessionError(f"{p}: no such session folder; check the path")
    jp = p / "session.json"
    if not jp.is_file():
        raise SessionError(f"{p}: not an idm-host session (no session.json); open a .idmsession folder")
    try:
        doc = json.loads(jp.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{jp}: corrupt session file ({exc}); restore it from a backup") from exc
    except RecursionError as exc:
        raise SessionError(f"{jp}: corrupt session file (nested too deeply); restore it from a backup") from exc
    except OSError as exc:
        raise SessionError(f"{jp}: cannot read ({os_error_text(exc)})") from exc
    if not isinstance(doc, dict):
        raise SessionError(f"{jp}: corrupt session file (not a JSON object); restore it from a backup")
    doc = schema.migrate(doc, jp)

    def read_one_shot(rel: str) -> np.ndarray:
        fp = inside(p, jp, rel)
        try:
            a = load_audio(fp, sample_rate=None, mono=True)
        except AudioError as exc:
            raise SessionError(f"{p}: a kit file is missing or corrupt ({exc}); restore the session from a backup") from exc
        if a.sample_rate != sr:
            raise SessionError(f"{fp}: sample rate {a.sample_rate} Hz differs from the session's {sr} Hz")
        return a.samples[0]

    try:
        sr = int(doc["sample_rate"])
        classes = tuple(c["symbol"] for c in doc["classes"])
        src = doc["source"]
        source = SourceInfo(src.get("path"), src.get("sha256"), int(src["sample_rate"]),
                            float(src["duration_s"]), int(src.get("channels", 1)))
        extracted_files = {c: doc["extracted"][c]["file"] for c in classes}
        extracted = {c: (read_one_shot(extracted_files[c]), float(doc["extracted"][c]["track_gain"]))
                     for c in classes}
        hits = {c: tuple(sorted(SessionHit(float(h["time_s"]), int(h["id"]), float(h["velocity"]))
                                for h in doc["hits"].get(c, ()))) for c in classes}
        kit: dict[str, KitSlot] = {}
        for c in classes:
            k = dict(doc["kit"][c])
            rel = k.pop("file")
            fitted_rel, synthetic_rel = k.pop("fitted_file"), k.pop("synthetic_file")
            if (fitted_rel is None) != (synthetic_rel is None):
                raise SessionError(f"{jp}: the kit slot of {c} names only one of fitted_file and synthetic_file")
            by_file: dict[str, np.ndarray] = {}
            for r in (extracted_files[c], fitted_rel, synthetic_rel):
                if r is not None and r not in by_file:
                    by_file[r] = extracted[c][0] if r == extracted_files[c] else read_one_shot(r)
            if rel not in by_file:
                by_file[rel] = read_one_shot(rel)
            k["choked_by"] = tuple(k.get("choked_by", ()))
            unknown = set(k) - set(KIT_SCALARS)
            if unknown:
                raise SessionError(f"{jp}: unknown kit settings {sorted(unknown)} for {c}")
            kit[c] = KitSlot(by_file[rel], **k, fitted=None if fitted_rel is None else by_file[fitted_rel],
                             synthetic=None if synthetic_rel is None else by_file[synthetic_rel])
        mixer: dict[str, ChannelStrip] = {}
        for c in classes + (MASTER, RESIDUAL):
            m = dict(doc["mixer"][c])
            eff = m.pop("effects", None)
            mixer[c] = ChannelStrip(float(m["gain_db"]), bool(m["mute"]), bool(m["solo"]), float(m["pan"]),
                                    None if eff is None else json.dumps(eff, sort_keys=True))
        tempo = Tempo.from_dict(doc["tempo"])
        stems = None
        if doc.get("stems"):
            sd = doc["stems"]
            arrays = []
            scales = sd.get("scales", {})
            for c in list(sd["classes"]) + [RESIDUAL]:
                fp = inside(p, jp, sd["files"][c])
                try:
                    arrays.append(load_audio(fp, sample_rate=None).samples
                                  * np.float32(scales.get(c, 1.0)))
                except AudioError as exc:
                    raise SessionError(f"{p}: a stem file is missing or corrupt ({exc}); "
                                       "restore the session from a backup") from exc
            n = min(a.shape[1] for a in arrays)
            stems = Stems(tuple(sd["classes"]), np.stack([a[:, :n] for a in arrays[:-1]]),
                          arrays[-1][:, :n], int(sd["sample_rate"]))
        all_ids = [h.id for hs in hits.values() for h in hs]
        if len(all_ids) != len(set(all_ids)):
            raise SessionError(f"{jp}: two hits share an id; the file is corrupt")
        next_id = max(int(doc.get("next_hit_id", 1)), max(all_ids, default=0) + 1)
    except SessionError as exc:
        if str(p) in str(exc):
            raise
        raise SessionError(f"{jp}: invalid session file ({exc}); restore it from a backup") from exc
    except (KeyError, TypeError, ValueError, AttributeError, IdmError) as exc:
        raise SessionError(f"{jp}: corrupt or incomplete session file ({type(exc).__name__}: {exc}); "
                           "restore it from a backup") from exc
    except RecursionError as exc:
        raise SessionError(f"{jp}: corrupt session file (nested too deeply); restore it from a backup") from exc
    state = SessionState(MappingProxyType(hits), MappingProxyType(kit), MappingProxyType(mixer), tempo, stems)
    stem_files = None
    if stems is not None:
        sd = doc["stems"]
        stem_files = (stems, {c: (sd["files"][c], float(sd.get("scales", {}).get(c, 1.0)))
                              for c in list(sd["classes"]) + [RESIDUAL]})
    return LoadedSession(classes, sr, source, state, extracted, str(doc.get("model", "")), next_id, p, stem_files)


def inside(folder: Path, doc_path: Path, rel: Any) -> Path:
    """``folder / rel`` when ``rel`` names a file inside ``folder`` (relative, no ``..``, no link out)."""
    if not isinstance(rel, str) or not rel:
        raise SessionError(f"{doc_path}: file reference {rel!r} is not a relative path")
    r = Path(rel)
    if r.is_absolute() or ".." in r.parts or "\0" in rel:
        raise SessionError(f"{doc_path}: file reference {rel!r} leaves the session folder; "
                           "a session names only files inside its folder")
    fp = folder / r
    try:
        inside = fp.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise SessionError(f"{doc_path}: file reference {rel!r} is a link out of the session folder; "
                           "a session names only files inside its folder")
    return fp



def to_int24(x: np.ndarray) -> np.ndarray:
    """The 24-bit integers a stem is stored as: ``round(x * (2**23 - 1))``, clipped."""
    y = x.astype(np.float64)
    y *= FULL_SCALE_24
    np.rint(y, out=y)
    np.clip(y, -2.0 ** 23, FULL_SCALE_24, out=y)
    return y.astype(np.int32)



def from_int24(q: np.ndarray) -> np.ndarray:
    """The float32 samples pedalboard's 24-bit encoder turns into exactly ``q`` (it scales positive
    samples by 2**23 - 1 and negative ones by 2**23; its decoder divides both by 2**23 - 1).
    Checked over all 2**24 values: encode(from_int24(q)) decodes to q / (2**23 - 1), which
    :func:`to_int24` maps back to q."""
    out = q.astype(np.float32)  # exact: |q| <= 2**23
    neg = q < 0
    out /= np.float32(FULL_SCALE_24)  # float32 division: the same floats as float64's, checked for every q >= 0
    out[neg] = q[neg].astype(np.float32) * np.float32(2.0 ** -23)  # exact: a power of two
    return out
