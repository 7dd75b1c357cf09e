"""Typed results that cross idm_host's public API. No bare tuples cross it.

Conventions: audio is float32 ``(channels, frames)``; velocities are 0..1 (MIDI 1..127 appears only in
:mod:`idm_host.midi`); times are seconds (``time_s``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .classes import GROUPS, group_of
from .errors import IdmError

TRANSCRIPTION_SCHEMA_VERSION = 1


@dataclass(frozen=True, order=True)
class Hit:
    """One drum hit: ``time_s`` from the start of the audio, ``velocity`` in 0..1."""

    time_s: float
    velocity: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_s) or self.time_s < 0:
            raise IdmError(f"hit time {self.time_s!r} s is invalid; times must be finite and >= 0")
        if not math.isfinite(self.velocity) or not 0.0 <= self.velocity <= 1.0:
            raise IdmError(f"hit velocity {self.velocity!r} is invalid; velocities are 0..1")


@dataclass(frozen=True)
class Audio:
    """Decoded audio.

    Attributes:
        samples: float32 array ``(channels, frames)``.
        sample_rate: in Hz.
        source: the file it came from, if any.
        sha256: hex digest of that file's bytes, if any.
    """

    samples: np.ndarray
    sample_rate: int
    source: Path | None = None
    sha256: str | None = None

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_frames / float(self.sample_rate)

    def mono(self) -> np.ndarray:
        """The mean of the channels, float32 ``(frames,)``."""
        return self.samples.mean(axis=0, dtype=np.float32) if self.channels > 1 else self.samples[0]


@dataclass(frozen=True)
class Transcription:
    """Hits per class.

    Attributes:
        classes: class symbols in model order.
        hits: per class symbol, hits sorted by time (every class of ``classes`` is a key).
        duration_s: the length of the audio transcribed, if known.
    """

    classes: tuple[str, ...]
    hits: Mapping[str, tuple[Hit, ...]]
    duration_s: float | None = None

    def __post_init__(self) -> None:
        unknown = set(self.hits) - set(self.classes)
        if unknown:
            raise IdmError(
                f"transcription names classes {sorted(unknown)} that are not among {list(self.classes)}"
            )
        fixed = {c: tuple(sorted(self.hits.get(c, ()))) for c in self.classes}
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "hits", fixed)

    @classmethod
    def from_times(
        cls,
        classes: Iterable[str],
        times: Mapping[str, Iterable[float | tuple[float, float]]],
        duration_s: float | None = None,
    ) -> "Transcription":
        """Build from ``{class: [time_s, ...]}`` or ``{class: [(time_s, velocity), ...]}``."""
        hits: dict[str, list[Hit]] = {}
        for name, items in times.items():
            out = []
            for item in items:
                if isinstance(item, (tuple, list)):
                    out.append(Hit(float(item[0]), float(item[1])))
                else:
                    out.append(Hit(float(item)))
            hits[name] = out
        return cls(tuple(classes), hits, duration_s)  # type: ignore[arg-type]

    @property
    def n_hits(self) -> int:
        return sum(len(h) for h in self.hits.values())

    def times(self, symbol: str) -> np.ndarray:
        return np.array([h.time_s for h in self.hits[symbol]], dtype=np.float64)

    def merged(self, groups: Iterable[str] = GROUPS) -> "Transcription":
        """Merge classes into the 5 groups (KD/SD/HH/TT/CY); hits closer than 1 ms are joined."""
        groups = tuple(groups)
        out: dict[str, list[Hit]] = {g: [] for g in groups}
        for c, hits in self.hits.items():
            g = group_of(c)
            if g in out:
                out[g].extend(hits)
        for g, group_hits in out.items():
            group_hits.sort()
            joined: list[Hit] = []
            for h in group_hits:
                if joined and h.time_s - joined[-1].time_s < 1e-3:
                    if h.velocity > joined[-1].velocity:
                        joined[-1] = h
                    continue
                joined.append(h)
            out[g] = joined
        return Transcription(groups, out, self.duration_s)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": TRANSCRIPTION_SCHEMA_VERSION,
            "classes": list(self.classes),
            "duration_s": self.duration_s,
            "hits": {
                c: [{"time_s": round(h.time_s, 6), "velocity": round(h.velocity, 6)} for h in hs]
                for c, hs in self.hits.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Transcription":
        """Read :meth:`to_dict`'s form, or a plain ``{class: [time_s, ...]}`` mapping."""
        try:
            if "hits" in data:
                version = int(data.get("schema_version", 1))
                if version > TRANSCRIPTION_SCHEMA_VERSION:
                    raise IdmError(
                        f"onsets file has schema_version {version}, newer than this idm-host "
                        f"understands ({TRANSCRIPTION_SCHEMA_VERSION}); update idm-host"
                    )
                hits_in = data["hits"]
                classes = tuple(data.get("classes", hits_in.keys()))
                hits = {
                    c: [
                        Hit(float(h["time_s"]), float(h.get("velocity", 1.0)))
                        if isinstance(h, Mapping)
                        else Hit(float(h))
                        for h in hs
                    ]
                    for c, hs in hits_in.items()
                }
                return cls(classes, hits, data.get("duration_s"))  # type: ignore[arg-type]
            return cls.from_times(tuple(data.keys()), data)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IdmError(f"onsets data is malformed ({exc}); expected {{class: [time_s, ...]}}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Transcription":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise IdmError(f"onsets file is not valid JSON ({exc})") from exc


#: A hit of velocity v plays its one-shot at amplitude ``MODEL_VELOCITY_SCALE * v``: the model's
#: velocities lie in (0, 2], transcription velocities in 0..1.
MODEL_VELOCITY_SCALE = 2.0


@dataclass(frozen=True)
class Kit:
    """One one-shot per class, and how the model plays them.

    The synthetic stem of class k is ``track_gains[k] * velocity_scale * sum over hits of
    velocity * one_shot_k`` started at sample ``round(time_s * sample_rate)``.

    Attributes:
        classes: class symbols, one per row of ``one_shots``.
        one_shots: float32 ``(classes, samples)``.
        sample_rate: in Hz.
        track_gains: float32 ``(classes,)``, the model's static gain per track (ones if unknown).
        velocity_scale: amplitude of a hit of velocity 1.0.
    """

    classes: tuple[str, ...]
    one_shots: np.ndarray
    sample_rate: int
    track_gains: np.ndarray | None = None
    velocity_scale: float = MODEL_VELOCITY_SCALE

    def gain(self, symbol: str) -> float:
        """The track gain of ``symbol`` (1.0 if the kit has none)."""
        if self.track_gains is None:
            return 1.0
        return float(self.track_gains[self.classes.index(symbol)])

    def one_shot(self, symbol: str) -> np.ndarray:
        return self.one_shots[self.classes.index(symbol)]


@dataclass(frozen=True)
class Stems:
    """Separated audio.

    Attributes:
        classes: class symbols, one per stem.
        audio: float32 ``(classes, channels, frames)``.
        residual: float32 ``(channels, frames)``: the mixture minus the sum of the stems, so that
            ``audio.sum(0) + residual`` nulls against the input.
        sample_rate: in Hz.
    """

    classes: tuple[str, ...]
    audio: np.ndarray
    residual: np.ndarray
    sample_rate: int

    def stem(self, symbol: str) -> np.ndarray:
        return self.audio[self.classes.index(symbol)]

    def merged(self, groups: Iterable[str] = GROUPS) -> "Stems":
        """Sum stems into the 5 groups (KD/SD/HH/TT/CY)."""
        groups = tuple(groups)
        out = np.zeros((len(groups),) + self.audio.shape[1:], dtype=np.float32)
        for i, c in enumerate(self.classes):
            g = group_of(c)
            if g in groups:
                out[groups.index(g)] += self.audio[i]
        return Stems(groups, out, self.residual, self.sample_rate)


@dataclass(frozen=True)
class Analysis:
    """Everything one analysis of a mixture produced.

    Attributes:
        transcription: the hits the model found (or the override it was given).
        kit: the extracted one-shots.
        stems: the separated stems and residual.
        track_gains: per class, the model's static track gain.
        kit_embedding: the model's kit-classifier softmax.
        model: the model's name.
        audio: the analysed audio (at the model rate, in the input's channel count).
    """

    transcription: Transcription
    kit: Kit
    stems: Stems
    track_gains: np.ndarray
    kit_embedding: np.ndarray
    model: str
    audio: Audio
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """A model the registry knows: where it lives and what it does."""

    name: str
    path: Path | None
    sha256: str | None
    classes: tuple[str, ...]
    sample_rate: int
    description: str = ""
    installed: bool = False
