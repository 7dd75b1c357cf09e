"""The parts of a session's state: hits, kit slots, mixer strips, the source, the snapshot undo covers,
and the :class:`Change` observers receive. All immutable and validated on construction."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from ..errors import SessionError
from ..tempo import Tempo
from ..types import Hit, Stems

SESSION_SUFFIX = ".idmsession"
#: Mixer strips that are not drum classes.
MASTER = "master"
RESIDUAL = "residual"
VELOCITY_CURVES = ("linear", "exponential", "fixed")
BLEND_MODES = ("sample", "replace", "layer")
#: Longest one-shot accepted for a kit slot (s).
MAX_ONE_SHOT_S = 10.0

PathLike = Union[str, os.PathLike]


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


def frozen_array(x: np.ndarray) -> np.ndarray:
    a = np.array(x, dtype=np.float32, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class KitSlot:
    """The one-shot a class plays, and how.

    Attributes:
        one_shot: float32 ``(samples,)`` mono at the session rate (read-only).
        origin: ``"extracted"`` (the model's own synthetic one-shot), ``"fitted"`` (the model's one-shot
            corrected by the templates fitted to the record, see
            :meth:`idm_host.engine.Separator.adapted_kit`) or ``"file"`` (a user sample).
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
        fitted: the one-shot fitted to the record (read-only), or ``None`` when the analysis fitted
            none; an ``"extracted"`` slot that has one can switch to it (:class:`UseFitted`).
        synthetic: the model's synthetic one-shot the fit started from (read-only), kept beside
            ``fitted`` so the user can go back to it; ``None`` exactly when ``fitted`` is.
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
    fitted: np.ndarray | None = None
    synthetic: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("one_shot", "fitted", "synthetic"):
            a = getattr(self, name)
            if a is None and name != "one_shot":
                continue
            if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and not a.flags.writeable):
                a = np.asarray(a, dtype=np.float32)
            what = "a one-shot" if name == "one_shot" else f"the {name} one-shot"
            if a.ndim != 1 or a.size == 0:
                raise SessionError(f"{what} must be a non-empty mono array; got shape {a.shape}")
            if not np.isfinite(a).all():
                raise SessionError(f"{what} contains NaN or infinite samples")
            if a.flags.writeable:
                a = frozen_array(a)
            object.__setattr__(self, name, a)
        if self.origin not in KIT_ORIGINS:
            raise SessionError(f"kit origin {self.origin!r} is unknown; use one of {', '.join(KIT_ORIGINS)}")
        if (self.fitted is None) != (self.synthetic is None):
            raise SessionError("a kit slot keeps its fitted and its synthetic one-shot together, or neither")
        if self.origin == "fitted" and self.fitted is None:
            raise SessionError("a 'fitted' kit slot needs the fitted one-shot (and the synthetic one)")
        check_range("kit gain", self.gain_db, -60.0, 24.0, "dB")
        check_range("tune", self.tune_semitones, -24.0, 24.0, "semitones")
        check_range("stem gain", self.stem_gain_db, -60.0, 24.0, "dB")
        check_range("curve amount", self.curve_amount, 0.1, 8.0, "")
        check_range("level", self.level, 0.0, 100.0, "")
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
        return all(getattr(self, f) == getattr(other, f) for f in KIT_SCALARS) and (
            self.one_shot is other.one_shot or np.array_equal(self.one_shot, other.one_shot)
        ) and all(_same_array(getattr(self, f), getattr(other, f)) for f in ("fitted", "synthetic"))

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


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or np.array_equal(a, b)


#: Where a kit slot's one-shot comes from (:attr:`KitSlot.origin`).
KIT_ORIGINS = ("extracted", "fitted", "file")

#: The settings of a kit slot besides its samples (session.json stores them by these names).
KIT_SCALARS = ("origin", "level", "sample_path", "gain_db", "tune_semitones", "velocity_curve",
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
        check_range("mixer gain", self.gain_db, -60.0, 24.0, "dB")
        check_range("pan", self.pan, -1.0, 1.0, "")
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

    @classmethod
    def for_file(cls, path: PathLike | None, *, sample_rate: int, duration_s: float, channels: int = 1,
                 sha256: str | None = None) -> "SourceInfo":
        """The source ``path`` (made absolute), with its sha256 (given, or read from the file when it exists)."""
        from ..audio import file_sha256

        if path is not None and sha256 is None and Path(path).is_file():
            sha256 = file_sha256(path)
        return cls(str(Path(path).resolve()) if path is not None else None, sha256, int(sample_rate),
                   float(duration_s), int(channels))


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


def check_range(name: str, value: Any, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        u = f" {unit}" if unit else ""
        raise SessionError(f"{name} {value!r}{u} is out of range; use {lo:g}..{hi:g}{u}")


