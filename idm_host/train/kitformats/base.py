"""What every kit loader shares: the General MIDI drum notes and their classes, the kit types
(:class:`SampledKit`, :class:`Instrument`, :class:`SampleLayer`), and the sample helpers
(loading each file once, trimming, repitching, guessing a note from a drum's name).

Imported through :mod:`idm_host.train.kits`, which holds the one loader (:func:`~idm_host.train.kits.load_kit`).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from ...audio import MODEL_SAMPLE_RATE, load_audio, resample
from ...errors import AudioError, PresetError
from ...levels import db_to_gain

#: The loaders log under the name they had before the split, ``idm_host.train.kits``.
log = logging.getLogger("idm_host.train.kits")

PathLike = Union[str, os.PathLike]

#: General MIDI percussion notes (channel 10) -> model class, for the notes a kit defines.
#: Side stick (37) and the second snare (40) are snares; the pedal hat (44) is a closed hat;
#: the two floor toms (41, 43) are TT_HFT, low and low-mid toms (45, 47) TT_LMT, high-mid and high
#: toms (48, 50) TT_HMT; crash 1/2, splash and china (49, 57, 55, 52) are crashes; ride 1/2 and the
#: ride bell (51, 59, 53) are rides. Other percussion (claps, cowbell, congas ...) has no class.
GM_KIT_NOTES: dict[int, str] = {
    35: "KD", 36: "KD",
    37: "SD", 38: "SD", 40: "SD",
    42: "HH_CHH", 44: "HH_CHH",
    46: "HH_OHH",
    41: "TT_HFT", 43: "TT_HFT",
    45: "TT_LMT", 47: "TT_LMT",
    48: "TT_HMT", 50: "TT_HMT",
    49: "CY_CR", 52: "CY_CR", 55: "CY_CR", 57: "CY_CR",
    51: "CY_RD", 53: "CY_RD", 59: "CY_RD",
}

#: For drum MIDI files: :data:`GM_KIT_NOTES` plus the Roland TD-11 extras the Groove MIDI Dataset
#: uses (22 closed-hat edge, 26 open-hat edge, 58 floor-tom rim). In a GM kit 58 is a vibraslap,
#: so kits never map it.
PATTERN_NOTES: dict[int, str] = {**GM_KIT_NOTES, 22: "HH_CHH", 26: "HH_OHH", 58: "TT_HFT"}

#: Per class, the notes a kit may provide it with, preferred first: a pattern note the kit lacks
#: falls back to the first of these the kit has.
CLASS_NOTES: dict[str, tuple[int, ...]] = {
    "KD": (36, 35), "SD": (38, 40, 37), "HH_CHH": (42, 44), "HH_OHH": (46,),
    "TT_HFT": (43, 41), "TT_LMT": (47, 45), "TT_HMT": (50, 48),
    "CY_CR": (49, 57, 55, 52), "CY_RD": (51, 59, 53),
}

#: Samples longer than this are cut (with a 50 ms fade); cymbal tails past it matter little.
MAX_SAMPLE_S = 4.0
#: Leading samples quieter than this fraction of the peak are trimmed, so onsets are sample-exact.
LEAD_TRIM = db_to_gain(-50.0)
#: A sample whose peak is below this is treated as empty (e.g. Hydrogen's ``emptySample.flac``).
SILENT_PEAK = 1e-4

KIT_KINDS = ("hydrogen", "sf2", "sfz", "folder")


class KitError(PresetError):
    """A sample kit could not be read (missing, malformed, or with no usable drum)."""


@dataclass(frozen=True)
class SampleLayer:
    """One velocity layer: a mono float32 sample used for velocities in ``[min_velocity, max_velocity]``."""

    samples: np.ndarray
    min_velocity: float = 0.0
    max_velocity: float = 1.0
    gain: float = 1.0

    @property
    def span(self) -> float:
        return self.max_velocity - self.min_velocity


@dataclass(frozen=True)
class Instrument:
    """One drum of a kit: a name, its GM note and its velocity layers."""

    name: str
    note: int
    layers: tuple[SampleLayer, ...]
    gain: float = 1.0

    @property
    def symbol(self) -> str:
        return GM_KIT_NOTES[self.note]

    def pick(self, velocity: float, rng: np.random.Generator) -> np.ndarray:
        """The sample for a hit of ``velocity`` (0..1), scaled by the gains and the velocity."""
        v = min(max(float(velocity), 0.0), 1.0)
        matching = [l for l in self.layers if l.min_velocity - 1e-6 <= v <= l.max_velocity + 1e-6]
        if not matching:  # gaps between layers: take the layer with the nearest range
            dist = [min(abs(v - l.min_velocity), abs(v - l.max_velocity)) for l in self.layers]
            matching = [self.layers[int(np.argmin(dist))]]
        narrowest = min(l.span for l in matching)
        choices = [l for l in matching if l.span <= narrowest + 1e-6]
        layer = choices[int(rng.integers(len(choices)))] if len(choices) > 1 else choices[0]
        return layer.samples * np.float32(layer.gain * self.gain * v)


@dataclass(frozen=True)
class SampledKit:
    """A sampled drum kit.

    Attributes:
        name: display name.
        instruments: per GM note (a key of :data:`GM_KIT_NOTES`), one or more alternative instruments.
        sample_rate: of every sample (Hz).
        source: the file or folder it was loaded from.
        kind: ``hydrogen``, ``sf2``, ``sfz``, ``folder`` or ``synthetic``.
    """

    name: str
    instruments: Mapping[int, tuple[Instrument, ...]]
    sample_rate: int = MODEL_SAMPLE_RATE
    source: Path | None = None
    kind: str = "synthetic"

    @property
    def classes(self) -> tuple[str, ...]:
        """The model classes this kit can play, sorted."""
        return tuple(sorted({GM_KIT_NOTES[n] for n in self.instruments}))

    def resolve_note(self, note: int) -> int | None:
        """The kit note that plays pattern ``note``: itself, or its class's preferred note the kit has."""
        if note in self.instruments:
            return note
        symbol = PATTERN_NOTES.get(note)
        if symbol is None:
            return None
        for alt in CLASS_NOTES[symbol]:
            if alt in self.instruments:
                return alt
        return None

    def variant(self, rng: np.random.Generator) -> "SampledKit":
        """This kit with one instrument per note, chosen at random (one snare sound per clip)."""
        chosen = {n: (alts[int(rng.integers(len(alts)))],) for n, alts in self.instruments.items()}
        return SampledKit(self.name, chosen, self.sample_rate, self.source, self.kind)

    def summary(self) -> dict[str, object]:
        """A JSON-friendly description: per class, the instruments and their layer counts."""
        out: dict[str, list[str]] = {}
        for note in sorted(self.instruments):
            for inst in self.instruments[note]:
                out.setdefault(GM_KIT_NOTES[note], []).append(
                    f"{inst.name} (note {note}, {len(inst.layers)} layers)"
                )
        return {"name": self.name, "kind": self.kind, "source": str(self.source or ""), "classes": out}


class _SampleCache:
    """Loads each audio file once per kit (kits reuse files across instruments)."""

    def __init__(self) -> None:
        self._cache: dict[Path, np.ndarray | None] = {}

    def load(self, path: Path, kit_path: Path) -> np.ndarray | None:
        path = path.resolve()
        if path not in self._cache:
            if not path.exists():
                raise KitError(f"{kit_path}: sample {path} is missing; reinstall the kit or fix its path")
            try:
                audio = load_audio(path, sample_rate=MODEL_SAMPLE_RATE, mono=True)
            except AudioError as exc:
                raise KitError(f"{kit_path}: sample {path.name} cannot be read ({exc}); replace the file") from exc
            self._cache[path] = prepare_sample(audio.samples[0])
        return self._cache[path]


def prepare_sample(x: np.ndarray, *, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray | None:
    """Trim leading near-silence and the silent tail, cap at :data:`MAX_SAMPLE_S`; ``None`` if silent."""
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < SILENT_PEAK:
        return None
    loud = np.flatnonzero(np.abs(x) >= peak * LEAD_TRIM)
    x = x[loud[0]:]
    tail = np.flatnonzero(np.abs(x) >= peak * 1e-4)
    x = x[: tail[-1] + 1]
    cap = int(MAX_SAMPLE_S * sample_rate)
    if x.size > cap:
        x = x[:cap].copy()
        fade = int(0.05 * sample_rate)
        x[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return np.ascontiguousarray(x)


def repitch(x: np.ndarray, semitones: float, *, from_rate: int = MODEL_SAMPLE_RATE,
            to_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Play ``x`` (recorded at ``from_rate``) ``semitones`` higher, at ``to_rate`` (Hz)."""
    effective = int(round(from_rate * 2.0 ** (semitones / 12.0)))
    if effective == to_rate:
        return np.asarray(x, dtype=np.float32)
    return resample(np.asarray(x, dtype=np.float32)[None, :], effective, to_rate)[0]


def _drop_parenthetical(name: str) -> str:
    return re.sub(r"\([^)]*\)", " ", name)


_SKIP_WORDS = re.compile(
    r"clap|cowbell|tambourin|agogo|shaker|conga|bongo|cabasa|clave|roll|guiro|whistle|triangle|"
    r"block|maraca|timbal|vibra|castanet|cuica|\bfx\b|noise|scratch|laser|zap"
)


def note_for_name(name: str) -> int | None:
    """Guess the GM note of a drum from its name (``"Tom Hi"`` -> 50, ``"Snare Rimshot"`` -> 40).

    Returns ``None`` for other percussion and for ambiguous names such as a bare ``"cymbal"``.
    """
    s = _drop_parenthetical(name).lower().replace("-", " ").replace("_", " ")
    for sym, note in (("hh chh", 42), ("hh ohh", 46), ("tt hft", 43), ("tt lmt", 47), ("tt hmt", 50),
                      ("cy cr", 49), ("cy rd", 51)):
        if s.startswith(sym):
            return note
    if _SKIP_WORDS.search(s):
        return None
    s = re.sub(r"^\s*[a-g][#b]?-?\d\s+(?=\S)", " ", s)  # a leading note name: "c#3 - stick"
    words = set(re.findall(r"[a-z0-9]+", s))
    tom_number = re.search(r"tom\s*(\d)", s)
    if tom_number:
        words.add(tom_number.group(1))
    hat = bool(re.search(r"hi ?hat|hihat|\bhh\b|\bhat\b|\bchh\b|\bohh\b|\bphh\b", s))
    if re.search(r"\bkick|\bbass ?drum|\bbd\b|\bkd\b|\bbassdrum", s):
        return 36
    if hat or words & {"chh", "ohh", "phh"}:
        if "pedal" in s or "foot" in s or "phh" in words:
            return 44
        if "open" in s or "ohh" in words or re.search(r"\bho\b", s):
            return 46
        return 42
    if "ride" in s:
        return 53 if "bell" in s else 51
    if "splash" in s:
        return 55
    if "china" in s or "chinese" in s:
        return 52
    if "crash" in s:
        return 49
    if "tom" in s or re.search(r"\btt\b|\bft\b", s):
        if "floor" in s or re.search(r"\bft\b", s) or words & {"low", "lo", "3", "4"}:
            return 43
        if words & {"mid", "middle", "med", "2"}:
            return 47
        if words & {"hi", "high", "1", "rack"}:
            return 50
        return 47
    if re.search(r"rim ?shot", s):
        return 40
    if re.search(r"rim ?click|side ?stick|cross ?stick|\bstick\b|\brim\b|\brs\b", s):
        return 37
    if re.search(r"snare|\bsd\b|\bsn\b", s):
        return 38
    return None


def _add(instruments: dict[int, list[Instrument]], inst: Instrument) -> None:
    instruments.setdefault(inst.note, []).append(inst)


def _finish(name: str, instruments: dict[int, list[Instrument]], source: Path, kind: str) -> SampledKit:
    if not instruments:
        raise KitError(
            f"{source}: no usable drum found (no kick, snare, hi-hat, tom or cymbal sample); "
            "check that this is a drum kit and its samples are present"
        )
    kit = SampledKit(name, {n: tuple(v) for n, v in sorted(instruments.items())}, MODEL_SAMPLE_RATE, source, kind)
    log.info("loaded %s kit %r from %s: classes %s", kind, name, source, ", ".join(kit.classes))
    return kit
