"""The session: the document a user edits (hits, kit, mixer, effects, tempo) with undo and redo.

A :class:`Session` is made from an :class:`~idm_host.types.Analysis` (or loaded from a
``NAME.idmsession/`` folder). Every edit is a small command object passed to :meth:`Session.apply`;
:meth:`Session.undo` and :meth:`Session.redo` restore the exact state before and after it. Observers
registered with :meth:`Session.subscribe` receive a :class:`Change` naming what changed (the part:
``"hits"``, ``"kit"``, ``"mixer"``, ``"tempo"``, ``"stems"`` or ``"source"``, and the classes).

:attr:`Session.modified` follows one rule: a session straight from :meth:`Session.from_analysis`,
just loaded or just saved is not modified; any applied, undone or redone command makes it modified,
except that undoing or redoing back to the exact snapshot last saved (or loaded, or analysed) makes
it unmodified again. :meth:`Session.relink` also marks it modified (until the next save).

State is immutable: :attr:`Session.hits` maps class symbols to tuples of frozen :class:`SessionHit`,
:attr:`Session.kit` to :class:`KitSlot`, :attr:`Session.mixer` to :class:`ChannelStrip`. Each hit has
an id that stays the same across moves, velocity changes, undo, redo, save and load, so a GUI can
keep a selection.

On disk (``schema_version`` 1)::

    NAME.idmsession/
        session.json              the document (hits, kit settings, mixer, tempo, source path+sha256)
        extracted/<CLS>-<hash>.wav   the model's one-shots (float32)
        kit/<CLS>-<hash>.wav         user samples in use (float32, at the session rate, mono)
        stems/<CLS>-<hash>.flac      the separated stems and residual (24-bit), if kept

Saving is atomic: a new folder is written under a temporary name and renamed into place; an existing
session gets its new files (content-addressed names, so unchanged stems are not rewritten) before
``session.json`` is replaced with one ``os.replace``, and files no longer referenced are removed
after that. A kill at any moment leaves the old session or the new one.

What a save never does: follow a link (a session whose ``stems/``, ``kit/`` or ``extracted/`` is a
link, or that is itself a link, is refused: Save As makes a copy with real folders), delete or
change anything outside the session folder, or run beside another save of the same folder (a lock,
``.NAME.idmsession.idm-lock`` beside it, makes the second fail at once). Temporaries a killed save
left are removed by the next save. Stems are stored as 24-bit FLAC through one exact mapping of
samples to 24-bit integers, so a stem that was loaded and not edited keeps its name and is not
rewritten, and encoding what was decoded gives the same bytes. Every file ``session.json`` names
must lie inside the folder (no absolute paths, no ``..``, no link out of it).

Example:
    >>> s = Session.from_analysis(analysis, source="loop.wav")      # doctest: +SKIP
    >>> change = s.apply(AddHits("SD", [(1.5, 0.8)]))                # doctest: +SKIP
    >>> s.apply(MoveHits(change.hit_ids, delta_s=0.01)); s.undo()     # doctest: +SKIP
    >>> s.save("loop.idmsession")                                   # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np

from . import __version__
from .classes import class_info
from .errors import AudioError, BusyError, IdmError, SchemaTooNewError, SessionError
from .fsutil import (FolderLock, atomic_write_text, fsync_dir, make_dirs, make_temp_dir, os_error_text,
                     remove_empty, remove_leftovers, remove_path)
from .tempo import Tempo, estimate_tempo, parse_grid, quantize
from .types import Analysis, Hit, Kit, Stems, Transcription

log = logging.getLogger(__name__)

#: The session.json format this version writes and reads.
SESSION_SCHEMA_VERSION = 1
SESSION_SUFFIX = ".idmsession"
#: Mixer strips that are not drum classes.
MASTER = "master"
RESIDUAL = "residual"
VELOCITY_CURVES = ("linear", "exponential", "fixed")
BLEND_MODES = ("sample", "replace", "layer")
#: Longest one-shot accepted for a kit slot (s).
MAX_ONE_SHOT_S = 10.0
#: Largest undo history kept.
MAX_UNDO = 500
#: The folders of a session that hold its audio files.
PARTS = ("extracted", "kit", "stems")
#: Full scale of the 24-bit stems: sample = int / FULL_SCALE_24 (pedalboard's FLAC decoder).
FULL_SCALE_24 = 2.0 ** 23 - 1

PathLike = Union[str, os.PathLike]


# ------------------------------------------------------------------------------------------ parts
@dataclass(frozen=True, order=True)
class SessionHit:
    """A hit in a session: a stable ``id``, ``time_s`` (>= 0) and ``velocity`` (0..1)."""

    time_s: float
    id: int = field(compare=True)
    velocity: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.time_s, (int, float)) or not math.isfinite(self.time_s) or self.time_s < 0:
            raise SessionError(f"hit time {self.time_s!r} s is invalid; times must be finite and >= 0")
        if not isinstance(self.velocity, (int, float)) or not math.isfinite(self.velocity) \
                or not 0.0 <= self.velocity <= 1.0:
            raise SessionError(f"hit velocity {self.velocity!r} is invalid; velocities are 0..1")
        object.__setattr__(self, "time_s", float(self.time_s))
        object.__setattr__(self, "velocity", float(self.velocity))

    def as_hit(self) -> Hit:
        return Hit(self.time_s, self.velocity)


def _frozen_array(x: np.ndarray) -> np.ndarray:
    a = np.array(x, dtype=np.float32, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class KitSlot:
    """The one-shot a class plays, and how.

    Attributes:
        one_shot: float32 ``(samples,)`` mono at the session rate (read-only).
        origin: ``"extracted"`` (the model's) or ``"file"`` (a user sample).
        level: linear scale that belongs to the one-shot: for extracted one-shots the model's track
            gain times its velocity scale (so hits render like the engine's synthetic stems), 1.0
            for user samples.
        sample_path: the user file a sample came from (informational), else ``None``.
        gain_db: per-class kit gain (dB).
        tune_semitones: pitch shift (semitones, -24..24).
        velocity_curve: ``"linear"`` (gain = velocity), ``"exponential"`` (velocity ** curve_amount)
            or ``"fixed"`` (every hit at full level).
        curve_amount: the exponent of the exponential curve (0.1..8).
        blend: ``"sample"`` (only the sample), ``"replace"`` (the sample at the hits, the separated
            stem kept between hits) or ``"layer"`` (sample plus the separated stem).
        stem_gain_db: level of the separated stem in ``replace`` and ``layer`` (dB).
        choked_by: classes whose hits cut this one's ring (e.g. the open hat by the closed hat).
    """

    one_shot: np.ndarray
    origin: str = "extracted"
    level: float = 1.0
    sample_path: str | None = None
    gain_db: float = 0.0
    tune_semitones: float = 0.0
    velocity_curve: str = "linear"
    curve_amount: float = 2.0
    blend: str = "sample"
    stem_gain_db: float = 0.0
    choked_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        arr = self.one_shot
        if not (isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.size > 0 and not arr.flags.writeable
                and arr.dtype == np.float32):
            arr = np.asarray(arr, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise SessionError(f"a one-shot must be a non-empty mono array; got shape {arr.shape}")
            object.__setattr__(self, "one_shot", _frozen_array(arr))
        if not np.isfinite(self.one_shot).all():
            raise SessionError("a one-shot contains NaN or infinite samples")
        if self.origin not in ("extracted", "file"):
            raise SessionError(f"kit origin {self.origin!r} is unknown; use 'extracted' or 'file'")
        _check_range("kit gain", self.gain_db, -60.0, 24.0, "dB")
        _check_range("tune", self.tune_semitones, -24.0, 24.0, "semitones")
        _check_range("stem gain", self.stem_gain_db, -60.0, 24.0, "dB")
        _check_range("curve amount", self.curve_amount, 0.1, 8.0, "")
        _check_range("level", self.level, 0.0, 100.0, "")
        if self.velocity_curve not in VELOCITY_CURVES:
            raise SessionError(f"velocity curve {self.velocity_curve!r} is unknown; use one of {', '.join(VELOCITY_CURVES)}")
        if self.blend not in BLEND_MODES:
            raise SessionError(f"blend mode {self.blend!r} is unknown; use one of {', '.join(BLEND_MODES)}")
        object.__setattr__(self, "choked_by", tuple(self.choked_by))
        for name in ("gain_db", "tune_semitones", "stem_gain_db", "curve_amount", "level"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KitSlot):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _KIT_SCALARS) and (
            self.one_shot is other.one_shot or np.array_equal(self.one_shot, other.one_shot)
        )

    __hash__ = None  # type: ignore[assignment]

    def velocity_gain(self, velocity: "float | np.ndarray") -> "float | np.ndarray":
        """Linear gain for a hit of ``velocity`` through this slot's curve (before level and gain_db)."""
        v = np.asarray(velocity, dtype=np.float64)
        if self.velocity_curve == "fixed":
            out = np.ones_like(v)
        elif self.velocity_curve == "exponential":
            out = v ** self.curve_amount
        else:
            out = v
        return float(out) if out.ndim == 0 else out


_KIT_SCALARS = ("origin", "level", "sample_path", "gain_db", "tune_semitones", "velocity_curve",
                "curve_amount", "blend", "stem_gain_db", "choked_by")


@dataclass(frozen=True)
class ChannelStrip:
    """A mixer channel.

    Attributes:
        gain_db: fader (dB, -inf is not used: mute instead), -60..24.
        mute: silenced.
        solo: when any strip is soloed, only soloed strips play.
        pan: -1 (left) .. 1 (right), constant-power.
        effects_json: the effect chain as canonical JSON text: a preset name (a JSON string) or an
            inline chain (a JSON list/object, see :mod:`idm_host.fx`); ``None`` for no effects.
    """

    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False
    pan: float = 0.0
    effects_json: str | None = None

    def __post_init__(self) -> None:
        _check_range("mixer gain", self.gain_db, -60.0, 24.0, "dB")
        _check_range("pan", self.pan, -1.0, 1.0, "")
        if not isinstance(self.mute, bool) or not isinstance(self.solo, bool):
            raise SessionError("mute and solo must be true or false")
        object.__setattr__(self, "gain_db", float(self.gain_db))
        object.__setattr__(self, "pan", float(self.pan))

    @property
    def effects(self) -> Any:
        """The effect chain: ``None``, a preset name (str), or an inline chain (a fresh copy)."""
        return None if self.effects_json is None else json.loads(self.effects_json)


@dataclass(frozen=True)
class SourceInfo:
    """The analysed audio file: path, sha256, sample rate (Hz), duration (s), channels."""

    path: str | None
    sha256: str | None
    sample_rate: int
    duration_s: float
    channels: int = 1

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "sample_rate": self.sample_rate,
                "duration_s": self.duration_s, "channels": self.channels}


@dataclass(frozen=True)
class SessionState:
    """One immutable snapshot of everything undo covers (``stems``: the separated stems, or ``None``).

    Snapshots compare equal when their content is equal; stems are compared within the 24-bit
    precision a save keeps.
    """

    hits: Mapping[str, tuple[SessionHit, ...]]
    kit: Mapping[str, KitSlot]
    mixer: Mapping[str, ChannelStrip]
    tempo: Tempo
    stems: Stems | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionState):
            return NotImplemented
        return (dict(self.hits) == dict(other.hits) and dict(self.kit) == dict(other.kit)
                and dict(self.mixer) == dict(other.mixer) and self.tempo == other.tempo
                and _same_stems(self.stems, other.stems))

    __hash__ = None  # type: ignore[assignment]


def _same_stems(a: Stems | None, b: Stems | None) -> bool:
    """Equal stems, within the 24-bit precision they are saved at (so a save/load round trip is equal)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    if (tuple(a.classes) != tuple(b.classes) or a.sample_rate != b.sample_rate
            or a.audio.shape != b.audio.shape or a.residual.shape != b.residual.shape):
        return False
    for x, y in ((a.audio, b.audio), (a.residual, b.residual)):
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if not np.allclose(x, y, rtol=0.0, atol=2.0 ** -22 * max(1.0, 2 * peak)):
            return False
    return True


@dataclass(frozen=True)
class Change:
    """What an edit, undo or redo changed; passed to observers.

    Attributes:
        parts: subset of ``{"hits", "kit", "mixer", "tempo", "stems", "source"}``.
        classes: the class symbols (or ``"master"``/``"residual"``) affected.
        label: the command's label (for undo menus).
        kind: ``"apply"``, ``"undo"``, ``"redo"`` or ``"relink"``.
        hit_ids: ids of hits the edit created (AddHits), otherwise the ids it touched.
    """

    parts: frozenset[str]
    classes: frozenset[str]
    label: str
    kind: str = "apply"
    hit_ids: tuple[int, ...] = ()


def _check_range(name: str, value: Any, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        u = f" {unit}" if unit else ""
        raise SessionError(f"{name} {value!r}{u} is out of range; use {lo:g}..{hi:g}{u}")


# --------------------------------------------------------------------------------------- commands
class Command:
    """Base class of session edits. Subclasses implement :meth:`run`.

    ``merge_key``: consecutive commands of the same type with equal non-``None`` keys fold into one
    undo step (e.g. the many moves of one mouse drag).
    """

    label = "edit"
    merge_key: Any = None

    def run(self, session: "Session", state: SessionState) -> tuple[SessionState, Change]:
        raise NotImplementedError


def _hit_index(state: SessionState) -> dict[int, str]:
    return {h.id: c for c, hs in state.hits.items() for h in hs}


def _resolve_ids(state: SessionState, ids: Iterable[int]) -> dict[int, str]:
    index = _hit_index(state)
    out: dict[int, str] = {}
    for i in ids:
        if i not in index:
            raise SessionError(f"hit id {i!r} is not in the session; it may have been deleted")
        out[int(i)] = index[i]
    return out


def _with_hits(state: SessionState, changed: Mapping[str, Iterable[SessionHit]]) -> SessionState:
    hits = dict(state.hits)
    for c, hs in changed.items():
        hits[c] = tuple(sorted(hs))
    return replace(state, hits=MappingProxyType(hits))


def _check_class(session: "Session", cls: str, *, strips: bool = False) -> str:
    allowed = session.classes + ((MASTER, RESIDUAL) if strips else ())
    if cls not in allowed:
        raise SessionError(f"class {cls!r} is not in this session; use one of {', '.join(allowed)}")
    return cls


class AddHits(Command):
    """Add hits to one class: ``AddHits("SD", [(time_s, velocity), ...])`` (or Hit objects)."""

    label = "add hits"

    def __init__(self, cls: str, hits: Iterable[Any]):
        self.cls = cls
        self.hits: list[tuple[float, float]] = []
        for h in hits:
            if isinstance(h, (Hit, SessionHit)):
                self.hits.append((h.time_s, h.velocity))
            elif isinstance(h, (tuple, list)) and len(h) == 2:
                self.hits.append((h[0], h[1]))
            else:
                self.hits.append((h, 1.0))

    def run(self, session, state):
        _check_class(session, self.cls)
        new = [SessionHit(t, session._take_id(), v) for t, v in self.hits]
        changed = {self.cls: state.hits[self.cls] + tuple(new)}
        return _with_hits(state, changed), Change(frozenset({"hits"}), frozenset({self.cls}), self.label,
                                                  hit_ids=tuple(h.id for h in new))


class DeleteHits(Command):
    """Delete hits by id (any classes)."""

    label = "delete hits"

    def __init__(self, ids: Iterable[int]):
        self.ids = [int(i) for i in ids]

    def run(self, session, state):
        where = _resolve_ids(state, self.ids)
        classes = set(where.values())
        gone = set(where)
        changed = {c: [h for h in state.hits[c] if h.id not in gone] for c in classes}
        return _with_hits(state, changed), Change(frozenset({"hits"}), frozenset(classes), self.label,
                                                  hit_ids=tuple(self.ids))


class MoveHits(Command):
    """Move hits by ``delta_s``, or to absolute times (``times={id: time_s}``), optionally to another class.

    Args:
        ids: the hits to move (ignored when ``times`` is given).
        delta_s: shift in seconds; results are clipped at 0 s.
        times: ``{id: new time_s}``.
        to_class: move the hits to this class's lane.
        merge_key: pass the same value for every step of one drag so it undoes as one step.
    """

    label = "move hits"

    def __init__(self, ids: Iterable[int] = (), delta_s: float = 0.0, *, times: Mapping[int, float] | None = None,
                 to_class: str | None = None, merge_key: Any = None):
        self.times = {int(k): float(v) for k, v in times.items()} if times is not None else None
        self.ids = list(self.times) if self.times is not None else [int(i) for i in ids]
        self.delta_s = float(delta_s)
        self.to_class = to_class
        self.merge_key = merge_key
        if not math.isfinite(self.delta_s):
            raise SessionError(f"move of {delta_s!r} s is invalid; use a finite number of seconds")

    def run(self, session, state):
        where = _resolve_ids(state, self.ids)
        if self.to_class is not None:
            _check_class(session, self.to_class)
        classes = set(where.values()) | ({self.to_class} if self.to_class else set())
        lanes = {c: {h.id: h for h in state.hits[c]} for c in classes}
        for i, c in where.items():
            h = lanes[c].pop(i)
            t = self.times[i] if self.times is not None else h.time_s + self.delta_s
            dest = self.to_class or c
            lanes[dest][i] = SessionHit(max(0.0, t), i, h.velocity)
        changed = {c: list(v.values()) for c, v in lanes.items()}
        return _with_hits(state, changed), Change(frozenset({"hits"}), frozenset(classes), self.label,
                                                  hit_ids=tuple(self.ids))


class SetVelocity(Command):
    """Set velocities: one ``velocity`` for all ``ids``, a ``scale`` factor, or ``values={id: v}``."""

    label = "change velocity"

    def __init__(self, ids: Iterable[int] = (), velocity: float | None = None, *, scale: float | None = None,
                 values: Mapping[int, float] | None = None, merge_key: Any = None):
        if sum(x is not None for x in (velocity, scale, values)) != 1:
            raise SessionError("SetVelocity needs exactly one of velocity, scale or values")
        self.values = {int(k): float(v) for k, v in values.items()} if values is not None else None
        self.ids = list(self.values) if self.values is not None else [int(i) for i in ids]
        self.velocity, self.scale, self.merge_key = velocity, scale, merge_key

    def run(self, session, state):
        where = _resolve_ids(state, self.ids)
        lanes = {c: {h.id: h for h in state.hits[c]} for c in set(where.values())}
        for i, c in where.items():
            h = lanes[c][i]
            if self.values is not None:
                v = self.values[i]
            elif self.scale is not None:
                v = min(1.0, max(0.0, h.velocity * float(self.scale)))
            else:
                v = float(self.velocity)  # type: ignore[arg-type]
            lanes[c][i] = SessionHit(h.time_s, i, v)
        changed = {c: list(v.values()) for c, v in lanes.items()}
        return _with_hits(state, changed), Change(frozenset({"hits"}), frozenset(lanes), self.label,
                                                  hit_ids=tuple(self.ids))


class Quantize(Command):
    """Quantise hits to the session's tempo grid.

    Args:
        ids: hits to quantise; ``None`` with ``classes`` (or neither: every hit).
        grid: ``"1/4"`` .. ``"1/32"``, ``T`` suffix for triplets.
        strength: 0..1 (1 = exactly on the grid).
        swing: 0..0.99 (see :func:`idm_host.tempo.snap`).
    """

    label = "quantise"

    def __init__(self, ids: Iterable[int] | None = None, grid: str = "1/16", *, strength: float = 1.0,
                 swing: float = 0.0, triplet: bool = False, classes: Iterable[str] | None = None):
        self.ids = None if ids is None else [int(i) for i in ids]
        self.classes = None if classes is None else list(classes)
        self.grid = parse_grid(grid, triplet)
        self.strength, self.swing = strength, swing

    def run(self, session, state):
        if self.ids is not None:
            where = _resolve_ids(state, self.ids)
        else:
            classes = self.classes if self.classes is not None else list(session.classes)
            for c in classes:
                _check_class(session, c)
            where = {h.id: c for c in classes for h in state.hits[c]}
        lanes = {c: {h.id: h for h in state.hits[c]} for c in set(where.values())}
        ids = list(where)
        old = np.array([lanes[where[i]][i].time_s for i in ids])
        new = quantize(old, state.tempo, self.grid, strength=self.strength, swing=self.swing)
        for i, t in zip(ids, new):
            c = where[i]
            h = lanes[c][i]
            lanes[c][i] = SessionHit(float(t), i, h.velocity)
        changed = {c: list(v.values()) for c, v in lanes.items()}
        return _with_hits(state, changed), Change(frozenset({"hits"}), frozenset(lanes), self.label,
                                                  hit_ids=tuple(ids))


class ReplaceSample(Command):
    """Use a sample file (any format, rate or channel count pedalboard reads) for a class.

    The file is read when the command is made (so a bad file fails before anything changes),
    mixed down to mono and resampled to the session rate. Pass ``samples`` (float32 ``(frames,)``
    or ``(channels, frames)``) with ``sample_rate`` instead of a path to use audio already in memory.
    """

    label = "replace sample"

    def __init__(self, cls: str, path: PathLike | None = None, *, samples: np.ndarray | None = None,
                 sample_rate: int | None = None, name: str | None = None):
        from .audio import load_audio

        self.cls = cls
        self._rate = sample_rate
        if path is not None:
            audio = load_audio(path, sample_rate=None)
            self._data = audio.samples
            self._rate = audio.sample_rate
            self.sample_path = str(Path(path).resolve())
        elif samples is not None:
            if sample_rate is None:
                raise SessionError("ReplaceSample with samples= needs sample_rate= (Hz)")
            arr = np.asarray(samples, dtype=np.float32)
            self._data = arr[None, :] if arr.ndim == 1 else arr
            self.sample_path = name
        else:
            raise SessionError("ReplaceSample needs a file path or samples=")
        if self._data.ndim != 2 or self._data.shape[1] == 0 or not np.isfinite(self._data).all():
            raise SessionError(f"sample for {cls} is empty or not finite; choose another file")

    def run(self, session, state):
        from .audio import resample

        _check_class(session, self.cls)
        data = self._data.mean(axis=0, dtype=np.float32) if self._data.shape[0] > 1 else self._data[0]
        if self._rate != session.sample_rate:
            data = resample(data[None, :], int(self._rate), session.sample_rate)[0]
        if data.size > MAX_ONE_SHOT_S * session.sample_rate:
            raise SessionError(
                f"sample {self.sample_path or ''} is {data.size / session.sample_rate:.1f} s long; "
                f"one-shots may be at most {MAX_ONE_SHOT_S:g} s: trim it first")
        old = state.kit[self.cls]
        slot = replace(old, one_shot=_frozen_array(data), origin="file", level=1.0, sample_path=self.sample_path)
        kit = dict(state.kit)
        kit[self.cls] = slot
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class RevertSample(Command):
    """Go back to the model's extracted one-shot (and its track gain) for a class; settings stay."""

    label = "revert sample"

    def __init__(self, cls: str):
        self.cls = cls

    def run(self, session, state):
        _check_class(session, self.cls)
        one_shot, gain = session._extracted[self.cls]
        kit = dict(state.kit)
        kit[self.cls] = replace(state.kit[self.cls], one_shot=one_shot, origin="extracted", level=gain,
                                sample_path=None)
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class SetKitParams(Command):
    """Change a kit slot's settings (``gain_db``, ``tune_semitones``, ``velocity_curve``,
    ``curve_amount``, ``blend``, ``stem_gain_db``, ``choked_by``); only the given ones change."""

    label = "change kit settings"
    FIELDS = ("gain_db", "tune_semitones", "velocity_curve", "curve_amount", "blend", "stem_gain_db", "choked_by")

    def __init__(self, cls: str, *, merge_key: Any = None, **params: Any):
        unknown = set(params) - set(self.FIELDS)
        if unknown:
            raise SessionError(f"unknown kit settings {sorted(unknown)}; use {', '.join(self.FIELDS)}")
        self.cls, self.params, self.merge_key = cls, params, merge_key

    def run(self, session, state):
        _check_class(session, self.cls)
        params = dict(self.params)
        if "choked_by" in params:
            params["choked_by"] = tuple(params["choked_by"])
            for c in params["choked_by"]:
                _check_class(session, c)
                if c == self.cls:
                    raise SessionError(f"{self.cls} cannot choke itself; choose other classes")
        kit = dict(state.kit)
        kit[self.cls] = replace(state.kit[self.cls], **params)
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class SetMixer(Command):
    """Change a mixer strip (a class, ``"master"`` or ``"residual"``): ``gain_db``, ``mute``, ``solo``, ``pan``."""

    label = "change mixer"
    FIELDS = ("gain_db", "mute", "solo", "pan")

    def __init__(self, cls: str, *, merge_key: Any = None, **params: Any):
        unknown = set(params) - set(self.FIELDS)
        if unknown:
            raise SessionError(f"unknown mixer settings {sorted(unknown)}; use {', '.join(self.FIELDS)}")
        self.cls, self.params, self.merge_key = cls, params, merge_key

    def run(self, session, state):
        _check_class(session, self.cls, strips=True)
        mixer = dict(state.mixer)
        mixer[self.cls] = replace(state.mixer[self.cls], **self.params)
        return replace(state, mixer=MappingProxyType(mixer)), Change(frozenset({"mixer"}), frozenset({self.cls}), self.label)


class SetEffects(Command):
    """Set a strip's effect chain: ``None``, a preset name, or an inline chain (JSON-able list/dict).

    The chain is validated (known effects, parameter ranges) when the command runs.
    """

    label = "change effects"

    def __init__(self, cls: str, effects: Any):
        self.cls = cls
        try:
            self.effects_json = None if effects is None else json.dumps(effects, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise SessionError(f"effects for {cls} are not JSON data ({exc}); pass a preset name or a chain") from exc

    def run(self, session, state):
        _check_class(session, self.cls, strips=True)
        if self.effects_json is not None:
            from .fx import validate_effects

            validate_effects(json.loads(self.effects_json))
        mixer = dict(state.mixer)
        mixer[self.cls] = replace(state.mixer[self.cls], effects_json=self.effects_json)
        return replace(state, mixer=MappingProxyType(mixer)), Change(frozenset({"mixer"}), frozenset({self.cls}), self.label)


class SetTempo(Command):
    """Set the tempo (``bpm``), the downbeat (``downbeat_s``) and/or ``beats_per_bar``; marks it user-set."""

    label = "change tempo"

    def __init__(self, bpm: float | None = None, downbeat_s: float | None = None,
                 beats_per_bar: int | None = None, *, merge_key: Any = None):
        self.bpm, self.downbeat_s, self.beats_per_bar, self.merge_key = bpm, downbeat_s, beats_per_bar, merge_key

    def run(self, session, state):
        t = state.tempo
        try:
            new = Tempo(t.bpm if self.bpm is None else self.bpm,
                        t.downbeat_s if self.downbeat_s is None else self.downbeat_s,
                        t.beats_per_bar if self.beats_per_bar is None else self.beats_per_bar, False)
        except IdmError as exc:
            raise SessionError(str(exc)) from exc
        return replace(state, tempo=new), Change(frozenset({"tempo"}), frozenset(), self.label)


class SetStems(Command):
    """Replace the separated stems (e.g. after re-separating with edited hits); ``None`` drops them.

    The stems must have the session's classes (in order) and sample rate, ``audio`` float32
    ``(classes, channels, frames)`` and ``residual`` ``(channels, frames)``, all finite. Their arrays
    become read-only (they are part of the undo history); the old stems stay in the history, so
    :meth:`Session.undo` restores them exactly. A later save writes the new stems.

    Example:
        >>> session.apply(SetStems(separator.separate(mix, session.transcription())))  # doctest: +SKIP
    """

    label = "replace stems"

    def __init__(self, stems: Stems | None, *, label: str | None = None):
        if stems is not None and not isinstance(stems, Stems):
            raise SessionError(f"SetStems needs a Stems object or None, got {type(stems).__name__}")
        self.stems = stems
        if label is not None:
            self.label = label

    def run(self, session, state):
        st = self.stems
        if st is not None:
            if tuple(st.classes) != tuple(session.classes):
                raise SessionError(f"the stems are for classes {list(st.classes)}, the session has "
                                   f"{list(session.classes)}; separate with the session's model")
            if int(st.sample_rate) != session.sample_rate:
                raise SessionError(f"the stems are at {st.sample_rate} Hz, the session at {session.sample_rate} Hz; "
                                   "separate at the session rate")
            audio, residual = st.audio, st.residual
            if not (isinstance(audio, np.ndarray) and isinstance(residual, np.ndarray) and audio.ndim == 3
                    and residual.ndim == 2 and audio.shape[0] == len(st.classes)
                    and audio.shape[1:] == residual.shape):
                raise SessionError(f"stems of shape {getattr(audio, 'shape', None)} with a residual of shape "
                                   f"{getattr(residual, 'shape', None)} do not fit; expected (classes, channels, "
                                   "frames) and (channels, frames)")
            if audio.dtype != np.float32 or residual.dtype != np.float32:
                raise SessionError(f"stems must be float32, got {audio.dtype} and {residual.dtype}")
            if not (np.isfinite(audio).all() and np.isfinite(residual).all()):
                raise SessionError("the stems contain NaN or infinite samples; separate the audio again")
            audio.setflags(write=False)
            residual.setflags(write=False)
        classes = frozenset(session.classes) | {RESIDUAL}
        return replace(state, stems=st), Change(frozenset({"stems"}), classes, self.label)


class Compound(Command):
    """Several commands applied in order as one undo step (e.g. paste = delete + add)."""

    def __init__(self, commands: Sequence[Command], label: str = "edit"):
        self.commands = list(commands)
        self.label = label

    def run(self, session, state):
        parts: set[str] = set()
        classes: set[str] = set()
        ids: list[int] = []
        for cmd in self.commands:
            state, ch = cmd.run(session, state)
            parts |= ch.parts
            classes |= ch.classes
            ids.extend(ch.hit_ids)
        return state, Change(frozenset(parts), frozenset(classes), self.label, hit_ids=tuple(ids))


# ---------------------------------------------------------------------------------------- session
@dataclass
class _Step:
    command: Command
    before: SessionState
    after: SessionState
    change: Change


Observer = Callable[[Change], None]


class Session:
    """The editable document. Build with :meth:`from_analysis` or :meth:`load`.

    Attributes:
        classes: class symbols in model order.
        sample_rate: the session rate (Hz).
        source: :class:`SourceInfo` of the analysed audio.
        stems: the separated stems (with residual), or ``None`` when not kept (read-only: change
            them with :class:`SetStems`, which is undoable).
        model: the model name that made the analysis.
        path: the folder this session was loaded from or last saved to.
        source_problem: ``None``, or a sentence saying the source file is missing or changed.
    """

    def __init__(self, *, classes: Sequence[str], sample_rate: int, source: SourceInfo, state: SessionState,
                 extracted: Mapping[str, tuple[np.ndarray, float]], stems: Stems | None = None,
                 model: str = "", next_hit_id: int = 1):
        self.classes = tuple(classes)
        self.sample_rate = int(sample_rate)
        self.source = source
        self.model = model
        self.path: Path | None = None
        self.source_problem: str | None = None
        self._extracted = {c: (_frozen_array(a), float(g)) for c, (a, g) in extracted.items()}
        self._state = state if stems is None else replace(state, stems=stems)
        #: The snapshot last analysed, loaded or saved: :attr:`modified` compares with it.
        self._saved_state: SessionState | None = self._state
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._observers: list[Observer] = []
        self._next_id = int(next_hit_id)
        #: ``(stems, {strip: (file, scale)})``: where the stems object last loaded or saved lies
        #: (so re-saving stems nobody replaced costs no encoding and no hashing).
        self._stem_files: tuple[Stems, dict[str, tuple[str, float]]] | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_analysis(cls, analysis: Analysis, source: PathLike | None = None, *, keep_stems: bool = True,
                      tempo: Tempo | None = None) -> "Session":
        """A new session from an analysis.

        Args:
            analysis: the engine's result.
            source: the analysed file (defaults to ``analysis.audio.source``); its sha256 is recorded.
            keep_stems: keep the separated stems (for the ``replace``/``layer`` blends); they are saved
                with the session.
            tempo: a tempo to use instead of the estimate.
        """
        from .audio import file_sha256

        tr = analysis.transcription
        kit = analysis.kit
        classes = tuple(tr.classes)
        missing = [c for c in classes if c not in kit.classes]
        if missing:
            raise SessionError(f"the analysis's kit lacks one-shots for {missing}; analyse the audio again")
        # the engine's synthetic stem k = kit.velocity_scale * kit.gain(k) * sum velocity * one-shot
        # (kit.track_gains fold in the input level); older kits carry no gains: use the analysis's
        gains = np.asarray(kit.track_gains if getattr(kit, "track_gains", None) is not None
                           else analysis.track_gains, dtype=np.float64).reshape(-1)
        if gains.size != len(kit.classes):
            raise SessionError(f"the analysis has {gains.size} track gains for {len(kit.classes)} kit classes")
        gains = gains * float(getattr(kit, "velocity_scale", 1.0))
        src = Path(source) if source is not None else analysis.audio.source
        sha = analysis.audio.sha256 if analysis.audio.source is not None and src == analysis.audio.source else None
        if src is not None and sha is None and Path(src).is_file():
            sha = file_sha256(src)
        info = SourceInfo(str(Path(src).resolve()) if src is not None else None, sha,
                          int(analysis.audio.sample_rate), float(analysis.audio.duration_s),
                          int(analysis.audio.channels))
        extracted = {c: (kit.one_shot(c), float(gains[kit.classes.index(c)])) for c in classes}
        next_id = 1
        hits: dict[str, tuple[SessionHit, ...]] = {}
        for c in classes:
            lane = []
            for h in tr.hits[c]:
                lane.append(SessionHit(h.time_s, next_id, h.velocity))
                next_id += 1
            hits[c] = tuple(sorted(lane))
        # no choke by default: the model's own kit renders exactly like its synthetic stems
        slots = {c: KitSlot(extracted[c][0], "extracted", extracted[c][1]) for c in classes}
        mixer = {c: ChannelStrip() for c in classes}
        mixer[MASTER] = ChannelStrip()
        mixer[RESIDUAL] = ChannelStrip(mute=True)
        if tempo is None:
            tempo = estimate_tempo(tr.hits, duration_s=tr.duration_s or analysis.audio.duration_s)
        stems = analysis.stems if keep_stems else None
        state = SessionState(MappingProxyType(hits), MappingProxyType(slots), MappingProxyType(mixer), tempo, stems)
        return cls(classes=classes, sample_rate=kit.sample_rate, source=info, state=state, extracted=extracted,
                   model=analysis.model, next_hit_id=next_id)

    # ---------------------------------------------------------------- state access
    @property
    def state(self) -> SessionState:
        """The current immutable snapshot."""
        return self._state

    @property
    def hits(self) -> Mapping[str, tuple[SessionHit, ...]]:
        return self._state.hits

    @property
    def kit(self) -> Mapping[str, KitSlot]:
        return self._state.kit

    @property
    def mixer(self) -> Mapping[str, ChannelStrip]:
        return self._state.mixer

    @property
    def tempo(self) -> Tempo:
        return self._state.tempo

    @property
    def duration_s(self) -> float:
        return self.source.duration_s

    def hit(self, hit_id: int) -> tuple[str, SessionHit]:
        """``(class, hit)`` for an id. Raises SessionError if there is no such hit."""
        for c, hs in self._state.hits.items():
            for h in hs:
                if h.id == hit_id:
                    return c, h
        raise SessionError(f"hit id {hit_id!r} is not in the session; it may have been deleted")

    def hits_in(self, cls: str, start_s: float, end_s: float) -> tuple[SessionHit, ...]:
        """Hits of ``cls`` with ``start_s <= time_s < end_s``."""
        return tuple(h for h in self._state.hits[_check_class(self, cls)] if start_s <= h.time_s < end_s)

    def extracted_one_shot(self, cls: str) -> tuple[np.ndarray, float]:
        """The model's one-shot for ``cls`` (read-only float32) and its track gain."""
        return self._extracted[_check_class(self, cls)]

    def transcription(self) -> Transcription:
        """The current hits as a :class:`Transcription` (for MIDI export and the engine)."""
        return Transcription(self.classes, {c: tuple(h.as_hit() for h in hs) for c, hs in self._state.hits.items()},
                             self.duration_s)

    def kit_arrays(self) -> Kit:
        """The extracted one-shots as a :class:`Kit` (the model's kit, whatever is in use)."""
        n = max(a.size for a, _ in self._extracted.values())
        arr = np.zeros((len(self.classes), n), dtype=np.float32)
        for i, c in enumerate(self.classes):
            a = self._extracted[c][0]
            arr[i, : a.size] = a
        gains = np.array([self._extracted[c][1] for c in self.classes], dtype=np.float32)
        return Kit(self.classes, arr, self.sample_rate, gains, 1.0)

    @property
    def stems(self) -> Stems | None:
        """The separated stems and residual, or ``None`` (change them with :class:`SetStems`)."""
        return self._state.stems

    @stems.setter
    def stems(self, value: Any) -> None:
        raise SessionError("session.stems cannot be assigned; apply SetStems(stems) so the change can be undone")

    @property
    def modified(self) -> bool:
        """Whether there are unsaved changes.

        False straight after :meth:`from_analysis`, :meth:`load` or :meth:`save`. Any applied,
        undone or redone command makes it True, except that undo/redo back to the snapshot last
        saved (or loaded, or analysed) makes it False again; :meth:`relink` makes it True.
        """
        return self._state is not self._saved_state

    # ---------------------------------------------------------------- editing
    def _take_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def apply(self, command: Command) -> Change:
        """Run an edit; it becomes one undo step (or folds into the last one, see ``merge_key``).

        Raises:
            SessionError: the edit is invalid; the session is unchanged.
        """
        if not isinstance(command, Command):
            raise SessionError(f"{command!r} is not a session command")
        before = self._state
        try:
            after, change = command.run(self, before)
        except IdmError as exc:
            if isinstance(exc, (SessionError, BusyError)):
                raise
            raise SessionError(str(exc)) from exc
        last = self._undo[-1] if self._undo else None
        if (last is not None and command.merge_key is not None and type(last.command) is type(command)
                and last.command.merge_key == command.merge_key and not self._redo):
            last.after, last.command = after, command
            last.change = Change(last.change.parts | change.parts, last.change.classes | change.classes,
                                 change.label, "apply", change.hit_ids)
        else:
            self._undo.append(_Step(command, before, after, change))
            del self._undo[:-MAX_UNDO]
        self._redo.clear()
        self._state = after
        self._notify(change)
        return change

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].change.label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].change.label if self._redo else None

    def undo(self) -> Change | None:
        """Undo the last step; returns its :class:`Change` (kind ``"undo"``) or ``None`` if nothing to undo."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        self._state = step.before
        change = replace(step.change, kind="undo")
        self._notify(change)
        return change

    def redo(self) -> Change | None:
        """Redo the last undone step; returns its :class:`Change` (kind ``"redo"``) or ``None``."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        self._state = step.after
        change = replace(step.change, kind="redo")
        self._notify(change)
        return change

    def subscribe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback(change)`` after every apply/undo/redo/relink; returns an unsubscribe function."""
        self._observers.append(callback)

        def unsubscribe() -> None:
            try:
                self._observers.remove(callback)
            except ValueError:
                pass

        return unsubscribe

    def _notify(self, change: Change) -> None:
        for cb in list(self._observers):
            try:
                cb(change)
            except Exception:  # an observer's bug must not corrupt the document
                log.exception("session observer %r failed on %s", cb, change.label)

    # ---------------------------------------------------------------- source
    def check_source(self) -> str | None:
        """Check the source file; sets and returns :attr:`source_problem` (``None`` when all is well)."""
        from .audio import file_sha256

        p = self.source.path
        if p is None:
            self.source_problem = None
        elif not Path(p).is_file():
            self.source_problem = f"{p}: the source audio is missing (moved or deleted); relink it with relink(path)"
        elif self.source.sha256 and file_sha256(p) != self.source.sha256:
            self.source_problem = (f"{p}: the source audio changed since the analysis (sha256 differs); "
                                   "relink it with relink(path, allow_changed=True) or analyse it again")
        else:
            self.source_problem = None
        return self.source_problem

    def relink(self, path: PathLike, *, allow_changed: bool = False) -> None:
        """Point the session at the source's new location.

        Raises:
            SessionError: the file is not readable audio, or its content differs (sha256) and
                ``allow_changed`` is false.
        """
        from .audio import file_sha256, load_audio

        p = Path(path)
        try:
            audio = load_audio(p, sample_rate=None)
        except AudioError as exc:
            raise SessionError(f"cannot relink to {p}: {exc}") from exc
        sha = file_sha256(p)
        if self.source.sha256 and sha != self.source.sha256 and not allow_changed:
            raise SessionError(f"{p}: its content differs from the analysed audio (sha256); "
                               "pass allow_changed=True to use it anyway")
        self.source = SourceInfo(str(p.resolve()), sha, self.source.sample_rate,
                                 audio.duration_s if allow_changed else self.source.duration_s, self.source.channels)
        self.source_problem = None
        self._saved_state = None  # the document changed (not undoable)
        self._notify(Change(frozenset({"source"}), frozenset(), "relink source", "relink"))

    # ---------------------------------------------------------------- save / load
    def to_dict(self) -> dict:
        """session.json's content, without writing the audio files (their names are filled by save)."""
        st = self._state
        return {
            "schema_version": SESSION_SCHEMA_VERSION,
            "app": f"idm-host {__version__}",
            "model": self.model,
            "sample_rate": self.sample_rate,
            "source": self.source.to_dict(),
            "classes": [{"symbol": c, "name": class_info(c).name, "gm_note": class_info(c).gm_note}
                        for c in self.classes],
            "next_hit_id": self._next_id,
            "tempo": st.tempo.to_dict(),
            "hits": {c: [{"id": h.id, "time_s": h.time_s, "velocity": h.velocity} for h in st.hits[c]]
                     for c in self.classes},
            "kit": {c: {f: (list(getattr(s, f)) if f == "choked_by" else getattr(s, f)) for f in _KIT_SCALARS}
                    for c, s in st.kit.items()},
            "extracted": {c: {"track_gain": g} for c, (_, g) in self._extracted.items()},
            "mixer": {c: {"gain_db": m.gain_db, "mute": m.mute, "solo": m.solo, "pan": m.pan,
                          "effects": m.effects} for c, m in st.mixer.items()},
        }

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Save as a ``NAME.idmsession/`` folder, atomically.

        Saving to the folder this session came from (or was last saved to) needs no flag; any other
        existing folder needs ``overwrite=True``, and a folder that is not a session is never replaced.

        Returns:
            the folder path.

        Raises:
            SessionError: the folder exists (without ``overwrite``), is not a session, or cannot be written.
        """
        p = Path(path)
        if p.suffix != SESSION_SUFFIX:
            p = p.with_name(p.name + SESSION_SUFFIX)
        p = p.absolute()
        same = self.path is not None and p == self.path
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
                self._remove_leftovers(p)
                if p.exists():
                    self._save_into_existing(p)
                else:
                    self._save_new(p)
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
        self.path = p
        self._saved_state = self._state
        self._stem_files = self._pending_stem_files
        return p

    def _write_payload(self, folder: Path, reuse: Path | None) -> dict:
        """Write audio files into ``folder`` (hard-linking identical ones from ``reuse``) and return the doc."""
        from .audio import save_audio

        doc = self.to_dict()
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
                ints = _to_int24(arr)
                digest = hashlib.sha256(ints.tobytes() + str(arr.shape).encode() + b"int24").hexdigest()[:16]
            else:
                digest = hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]
            rel = f"{rel_dir}/{stem}-{digest}.{fmt}"
            if have(rel):
                return rel
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if ints is not None:
                arr = _from_int24(ints)
            save_audio(dest, arr, self.sample_rate, format=fmt, bit_depth=bit_depth, overwrite=dest.is_symlink())
            written.add(rel)
            return rel

        for c in self.classes:
            one_shot, _ = self._extracted[c]
            doc["extracted"][c]["file"] = put("extracted", c, one_shot, "wav", 32)
            slot = self._state.kit[c]
            doc["kit"][c]["file"] = (doc["extracted"][c]["file"] if slot.origin == "extracted"
                                     else put("kit", c, slot.one_shot, "wav", 32))
        self._pending_stem_files = None
        if self.stems is not None:
            st = self.stems
            known = self._stem_files[1] if self._stem_files is not None and self._stem_files[0] is st else {}
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
            self._pending_stem_files = (st, {c: (doc["stems"]["files"][c], doc["stems"]["scales"][c])
                                             for c in doc["stems"]["files"]})
        doc["_files"] = sorted(written)
        return doc

    _fsync_dir = staticmethod(fsync_dir)

    @staticmethod
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

    def _save_new(self, p: Path) -> None:
        tmp = make_temp_dir(p)
        try:
            doc = self._write_payload(tmp, self.path if self.path is not None and self.path.is_dir() else None)
            files = doc.pop("_files")
            _write_json(tmp / "session.json", doc)
            for d in {Path(f).parent for f in files} | {Path(".")}:
                self._fsync_dir(tmp / d)
            os.rename(tmp, p)  # atomic: the session appears complete or not at all
            self._fsync_dir(p.parent)
        except BaseException:
            remove_path(tmp)
            raise

    def _save_into_existing(self, p: Path) -> None:
        reuse = self.path if self.path is not None and self.path.is_dir() and self.path != p else None
        doc = self._write_payload(p, reuse)
        files = doc.pop("_files")
        for d in {Path(f).parent for f in files}:
            self._fsync_dir(p / d)
        text = json.dumps(doc, indent=1, allow_nan=False)
        atomic_write_text(p / "session.json", text, overwrite=True)  # the commit point
        self._fsync_dir(p)
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

    @classmethod
    def load(cls, path: PathLike) -> "Session":
        """Open a ``NAME.idmsession/`` folder.

        A missing or changed source file does not stop loading: :attr:`source_problem` says what is
        wrong and :meth:`relink` fixes it.

        Raises:
            SchemaTooNewError: written by a newer idm-host.
            SessionError: the folder is missing, not a session, or its files are corrupt.
        """
        from .audio import load_audio

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
        version = doc.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise SessionError(f"{jp}: missing or invalid schema_version {version!r}; this is not a valid session")
        if version > SESSION_SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{jp}: written by a newer idm-host (session schema {version}; this version reads up to "
                f"{SESSION_SCHEMA_VERSION}); update idm-host to open it")
        doc = _migrate(doc, version)

        def read_one_shot(rel: str) -> np.ndarray:
            fp = _inside(p, jp, rel)
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
            extracted = {c: (read_one_shot(doc["extracted"][c]["file"]), float(doc["extracted"][c]["track_gain"]))
                         for c in classes}
            hits = {c: tuple(sorted(SessionHit(float(h["time_s"]), int(h["id"]), float(h["velocity"]))
                                    for h in doc["hits"].get(c, ()))) for c in classes}
            kit: dict[str, KitSlot] = {}
            for c in classes:
                k = dict(doc["kit"][c])
                rel = k.pop("file")
                one_shot = extracted[c][0] if k.get("origin") == "extracted" else read_one_shot(rel)
                k["choked_by"] = tuple(k.get("choked_by", ()))
                unknown = set(k) - set(_KIT_SCALARS)
                if unknown:
                    raise SessionError(f"{jp}: unknown kit settings {sorted(unknown)} for {c}")
                kit[c] = KitSlot(one_shot, **k)
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
                    fp = _inside(p, jp, sd["files"][c])
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
        s = cls(classes=classes, sample_rate=sr, source=source, state=state, extracted=extracted,
                model=str(doc.get("model", "")), next_hit_id=next_id)
        s.path = p
        if stems is not None:
            sd = doc["stems"]
            s._stem_files = (stems, {c: (sd["files"][c], float(sd.get("scales", {}).get(c, 1.0)))
                                     for c in list(sd["classes"]) + [RESIDUAL]})
        problem = s.check_source()
        if problem:
            log.warning("%s", problem)
        return s

    def info(self) -> dict:
        """A JSON-able summary (for ``idm-host session info``)."""
        return {
            "path": str(self.path) if self.path else None,
            "schema_version": SESSION_SCHEMA_VERSION,
            "model": self.model,
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "source": self.source.to_dict(),
            "source_problem": self.source_problem,
            "tempo": self.tempo.to_dict(),
            "classes": {c: {"hits": len(self.hits[c]), "kit": self.kit[c].origin,
                            "sample": self.kit[c].sample_path, "blend": self.kit[c].blend,
                            "effects": self.mixer[c].effects} for c in self.classes},
            "n_hits": sum(len(h) for h in self.hits.values()),
            "stems": self.stems is not None,
        }


def _migrate(doc: dict, version: int) -> dict:
    """Bring an older session.json up to :data:`SESSION_SCHEMA_VERSION` (version 1 is the first)."""
    return doc


def _inside(folder: Path, doc_path: Path, rel: Any) -> Path:
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


def _to_int24(x: np.ndarray) -> np.ndarray:
    """The 24-bit integers a stem is stored as: ``round(x * (2**23 - 1))``, clipped."""
    y = x.astype(np.float64)
    y *= FULL_SCALE_24
    np.rint(y, out=y)
    np.clip(y, -2.0 ** 23, FULL_SCALE_24, out=y)
    return y.astype(np.int32)


def _from_int24(q: np.ndarray) -> np.ndarray:
    """The float32 samples pedalboard's 24-bit encoder turns into exactly ``q`` (it scales positive
    samples by 2**23 - 1 and negative ones by 2**23; its decoder divides both by 2**23 - 1).
    Checked over all 2**24 values: encode(_from_int24(q)) decodes to q / (2**23 - 1), which
    :func:`_to_int24` maps back to q."""
    out = q.astype(np.float32)  # exact: |q| <= 2**23
    neg = q < 0
    out /= np.float32(FULL_SCALE_24)  # float32 division: the same floats as float64's, checked for every q >= 0
    out[neg] = q[neg].astype(np.float32) * np.float32(2.0 ** -23)  # exact: a power of two
    return out


def _write_json(path: Path, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=1, allow_nan=False))
        f.flush()
        os.fsync(f.fileno())


__all__ = [
    "Session", "SessionHit", "KitSlot", "ChannelStrip", "SourceInfo", "SessionState", "Change", "Command",
    "AddHits", "DeleteHits", "MoveHits", "SetVelocity", "Quantize", "ReplaceSample", "RevertSample",
    "SetKitParams", "SetMixer", "SetEffects", "SetTempo", "SetStems", "Compound", "MASTER", "RESIDUAL",
    "SESSION_SCHEMA_VERSION", "VELOCITY_CURVES", "BLEND_MODES",
]
