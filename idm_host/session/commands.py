"""The undoable session edits: each is a small :class:`Command` whose :meth:`~Command.run` maps one
:class:`~idm_host.session.parts.SessionState` to the next; :meth:`Session.apply
<idm_host.session.document.Session.apply>` keeps the states for undo and redo."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import IdmError, SessionError
from ..tempo import Tempo, parse_grid, quantize
from ..types import Hit, Stems
from .parts import MASTER, MAX_ONE_SHOT_S, RESIDUAL, Change, PathLike, SessionHit, SessionState, frozen_array

if TYPE_CHECKING:
    from .document import Session


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


def check_class(session: "Session", cls: str, *, strips: bool = False) -> str:
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
        check_class(session, self.cls)
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
            check_class(session, self.to_class)
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
                check_class(session, c)
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
        from ..audio import load_audio

        self.cls = cls
        self._rate = sample_rate
        self.sample_path: str | None
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
        from ..audio import resample

        check_class(session, self.cls)
        data = self._data.mean(axis=0, dtype=np.float32) if self._data.shape[0] > 1 else self._data[0]
        if self._rate != session.sample_rate:
            data = resample(data[None, :], int(self._rate), session.sample_rate)[0]
        if data.size > MAX_ONE_SHOT_S * session.sample_rate:
            raise SessionError(
                f"sample {self.sample_path or ''} is {data.size / session.sample_rate:.1f} s long; "
                f"one-shots may be at most {MAX_ONE_SHOT_S:g} s: trim it first")
        old = state.kit[self.cls]
        slot = replace(old, one_shot=frozen_array(data), origin="file", level=1.0, sample_path=self.sample_path)
        kit = dict(state.kit)
        kit[self.cls] = slot
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class RevertSample(Command):
    """Go back to the model's extracted one-shot (and its track gain) for a class; settings stay."""

    label = "revert sample"

    def __init__(self, cls: str):
        self.cls = cls

    def run(self, session, state):
        check_class(session, self.cls)
        one_shot, gain = session._extracted[self.cls]
        old = state.kit[self.cls]
        kit = dict(state.kit)
        if old.fitted is not None:  # back to the one-shot that sounds like the record
            kit[self.cls] = replace(old, one_shot=old.fitted, origin="fitted", level=gain, sample_path=None)
        else:
            kit[self.cls] = replace(old, one_shot=one_shot, origin="extracted", level=gain, sample_path=None)
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class UseFitted(Command):
    """Play a class's one-shot fitted to the record (``fitted=True``) or the model's synthetic one
    (``fitted=False``); only for a slot that has both (:attr:`KitSlot.fitted`) and plays the model's,
    not a user sample. Settings stay."""

    def __init__(self, cls: str, fitted: bool = True):
        self.cls = cls
        self.fitted = bool(fitted)
        self.label = "use the fitted one-shot" if self.fitted else "use the synthetic one-shot"

    def run(self, session, state):
        check_class(session, self.cls)
        old = state.kit[self.cls]
        if old.fitted is None or old.synthetic is None:
            raise SessionError(f"{self.cls} has no one-shot fitted to the record; re-separate with the "
                               "adaptive masks to fit one")
        if old.origin == "file":
            raise SessionError(f"{self.cls} plays a user sample; revert the sample first")
        kit = dict(state.kit)
        kit[self.cls] = replace(old, one_shot=old.fitted if self.fitted else old.synthetic,
                                origin="fitted" if self.fitted else "extracted")
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class SetFittedKit(Command):
    """Store newly fitted one-shots (``{class: float32 (samples,)}``, e.g. from re-separating with the
    adaptive masks): a class playing the model's one-shot then plays the new fitted one (unless the user
    chose the synthetic one, :class:`UseFitted`), with the synthetic one-shot kept beside it; classes
    playing a user sample are left alone."""

    label = "fit the kit to the record"

    def __init__(self, one_shots: Mapping[str, np.ndarray]):
        self.one_shots = {c: frozen_array(np.asarray(a, dtype=np.float32).reshape(-1)) for c, a in one_shots.items()}

    def run(self, session, state):
        kit = dict(state.kit)
        changed = set()
        for c, shot in self.one_shots.items():
            check_class(session, c)
            old = state.kit[c]
            if old.origin == "file":
                continue
            synthetic = old.synthetic if old.synthetic is not None else session._extracted[c][0]
            chose_synthetic = old.origin == "extracted" and old.fitted is not None
            kit[c] = replace(old, fitted=shot, synthetic=synthetic, one_shot=synthetic if chose_synthetic else shot,
                             origin="extracted" if chose_synthetic else "fitted")
            changed.add(c)
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset(changed), self.label)


class _SetFields(Command):
    """Some of one slot's settings, given by keyword (only those in ``FIELDS``); the others stay."""

    FIELDS: tuple[str, ...] = ()
    #: What the settings are called in the error for an unknown one.
    WHAT = "settings"

    def __init__(self, cls: str, *, merge_key: Any = None, **params: Any):
        unknown = set(params) - set(self.FIELDS)
        if unknown:
            raise SessionError(f"unknown {self.WHAT} {sorted(unknown)}; use {', '.join(self.FIELDS)}")
        self.cls, self.params, self.merge_key = cls, params, merge_key


class SetKitParams(_SetFields):
    """Change a kit slot's settings (``gain_db``, ``tune_semitones``, ``velocity_curve``,
    ``curve_amount``, ``blend``, ``stem_gain_db``, ``choked_by``); only the given ones change."""

    label = "change kit settings"
    FIELDS = ("gain_db", "tune_semitones", "velocity_curve", "curve_amount", "blend", "stem_gain_db", "choked_by")
    WHAT = "kit settings"

    def run(self, session, state):
        check_class(session, self.cls)
        params = dict(self.params)
        if "choked_by" in params:
            params["choked_by"] = tuple(params["choked_by"])
            for c in params["choked_by"]:
                check_class(session, c)
                if c == self.cls:
                    raise SessionError(f"{self.cls} cannot choke itself; choose other classes")
        kit = dict(state.kit)
        kit[self.cls] = replace(state.kit[self.cls], **params)
        return replace(state, kit=MappingProxyType(kit)), Change(frozenset({"kit"}), frozenset({self.cls}), self.label)


class SetMixer(_SetFields):
    """Change a mixer strip (a class, ``"master"`` or ``"residual"``): ``gain_db``, ``mute``, ``solo``, ``pan``."""

    label = "change mixer"
    FIELDS = ("gain_db", "mute", "solo", "pan")
    WHAT = "mixer settings"

    def run(self, session, state):
        check_class(session, self.cls, strips=True)
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
        check_class(session, self.cls, strips=True)
        if self.effects_json is not None:
            from ..fx import validate_effects

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

    def run(self, session: "Session", state: SessionState) -> tuple[SessionState, Change]:
        parts: set[str] = set()
        classes: set[str] = set()
        ids: list[int] = []
        for cmd in self.commands:
            state, ch = cmd.run(session, state)
            parts |= ch.parts
            classes |= ch.classes
            ids.extend(ch.hit_ids)
        return state, Change(frozenset(parts), frozenset(classes), self.label, hit_ids=tuple(ids))
