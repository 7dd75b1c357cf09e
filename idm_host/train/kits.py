"""Sampled drum kits for training data: Hydrogen drumkits, SoundFont (SF2) drum presets, SFZ, and
plain folders of one-shots named by class.

Every loader returns a :class:`SampledKit`: per General MIDI drum note, one or more
:class:`Instrument` s (alternatives, e.g. a jazz and a rock snare), each a list of velocity-layered
mono float32 samples at 44.1 kHz. A note's drum class comes from :data:`GM_KIT_NOTES`.

Velocity is applied the same way for every format: the layer whose velocity range holds the hit's
velocity is chosen (the narrowest when ranges nest, at random among equals: round robin), then
scaled linearly by the velocity. Format-specific velocity curves are not modelled.

Example:
    >>> kit = load_kit("/usr/share/hydrogen/data/drumkits/ForzeeStereo")   # doctest: +SKIP
    >>> kit.classes                                                       # doctest: +SKIP
    ('CY_CR', 'CY_RD', 'HH_CHH', 'HH_OHH', 'KD', 'SD', 'TT_HFT', 'TT_HMT', 'TT_LMT')
"""
from __future__ import annotations

import logging
import os
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Union

import numpy as np

from ..audio import AUDIO_SUFFIXES, MODEL_SAMPLE_RATE, load_audio, resample
from ..classes import DRUM_CLASSES
from ..errors import AudioError, PresetError
from ..levels import db_to_gain

log = logging.getLogger(__name__)

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


# ------------------------------------------------------------------ helpers shared by the loaders
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


# ------------------------------------------------------------------ Hydrogen
def _strip_ns(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def _float(el: ET.Element | None, tag: str, default: float) -> float:
    child = el.find(tag) if el is not None else None
    if child is None or child.text is None or not child.text.strip():
        return default
    try:
        return float(child.text)
    except ValueError:
        return default


def load_hydrogen_kit(path: PathLike) -> SampledKit:
    """Load a Hydrogen drumkit: a folder with ``drumkit.xml`` (or the xml itself).

    Instruments are classified by name (:func:`note_for_name`), then by ``midiOutNote`` when the
    name says nothing; percussion that is not one of the model's classes is skipped. Both the old
    (``<layer>`` in ``<instrument>``) and the component (``<instrumentComponent>``) layouts are read.

    Raises:
        KitError: the folder or xml is missing or malformed, a sample is missing, or no drum is usable.
    """
    p = Path(path)
    xml = p / "drumkit.xml" if p.is_dir() else p
    if not xml.exists():
        raise KitError(f"{p}: no drumkit.xml found; point at a Hydrogen drumkit folder")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise KitError(f"{xml}: not valid XML ({exc}); the drumkit file is damaged") from exc
    _strip_ns(root)
    if root.tag != "drumkit_info":
        raise KitError(f"{xml}: root element is <{root.tag}>, not <drumkit_info>; this is not a Hydrogen drumkit")
    folder = xml.parent
    kit_name = (root.findtext("name") or folder.name).strip()
    cache = _SampleCache()
    instruments: dict[int, list[Instrument]] = {}
    for inst_el in root.iter("instrument"):
        name = (inst_el.findtext("name") or "").strip()
        note = note_for_name(name)
        if note is None and not _SKIP_WORDS.search(name.lower()):
            try:
                midi = int(float(inst_el.findtext("midiOutNote") or "-1"))
            except ValueError:
                midi = -1
            note = midi if midi in GM_KIT_NOTES else None
        if note is None:
            log.debug("%s: instrument %r is not a model class; skipped", xml, name)
            continue
        layer_els = list(inst_el.findall("layer")) + [
            l for comp in inst_el.findall("instrumentComponent") for l in comp.findall("layer")
        ]
        layers: list[SampleLayer] = []
        if not layer_els and inst_el.findtext("filename"):
            layer_els = [inst_el]
        for lay in layer_els:
            filename = (lay.findtext("filename") or "").strip()
            if not filename:
                continue
            samples = cache.load(folder / filename, xml)
            if samples is None:
                continue
            pitch = _float(lay, "pitch", 0.0)
            if abs(pitch) > 1e-3:
                samples = repitch(samples, pitch)
            layers.append(SampleLayer(samples, _float(lay, "min", 0.0), _float(lay, "max", 1.0),
                                      _float(lay, "gain", 1.0)))
        if not layers:
            log.debug("%s: instrument %r has no audible sample; skipped", xml, name)
            continue
        gain = _float(inst_el, "gain", 1.0) * _float(inst_el, "volume", 1.0)
        _add(instruments, Instrument(name or f"note {note}", note, tuple(layers), gain))
    return _finish(kit_name, instruments, folder, "hydrogen")


# ------------------------------------------------------------------ one-shot folder
_VEL_NUMBER = re.compile(r"(?:^|[^a-z])(?:v|vel|velocity|layer)[ _-]?(\d+)", re.I)


def load_folder_kit(path: PathLike) -> SampledKit:
    """Load a folder of one-shots named by class: ``kick*.wav``, ``KD_01.wav``, ``snare/*.flac`` ...

    A file is classified by its name (:func:`note_for_name`), else by the name of the folder it is
    in. Several files of one drum are velocity layers when their names carry a layer number
    (``_v1``, ``vel3``: ranges split evenly in number order), else round-robin alternatives.

    Raises:
        KitError: the folder is missing, holds no audio, or no file names a drum class.
    """
    p = Path(path)
    if not p.is_dir():
        raise KitError(f"{p}: not a folder; a one-shot kit is a folder of files such as kick.wav, snare.wav")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise KitError(f"{p}: holds no audio files (.wav, .flac, .aiff, .ogg, .mp3)")
    cache = _SampleCache()
    by_note: dict[int, list[tuple[int | None, np.ndarray, str]]] = {}
    for f in files:
        note = note_for_name(f.stem)
        if note is None and f.parent != p:
            note = note_for_name(f.parent.name)
        if note is None:
            log.debug("%s: %s names no drum class; skipped", p, f.name)
            continue
        samples = cache.load(f, p)
        if samples is None:
            continue
        m = _VEL_NUMBER.search(f.stem)
        by_note.setdefault(note, []).append((int(m.group(1)) if m else None, samples, f.name))
    instruments: dict[int, list[Instrument]] = {}
    for note, entries in by_note.items():
        numbered = sorted({e[0] for e in entries if e[0] is not None})
        layers = []
        for number, samples, _ in entries:
            if number is not None and len(numbered) > 1:
                i = numbered.index(number)
                lo, hi = i / len(numbered), (i + 1) / len(numbered)
            else:
                lo, hi = 0.0, 1.0
            layers.append(SampleLayer(samples, lo, hi))
        _add(instruments, Instrument(entries[0][2], note, tuple(layers)))
    return _finish(p.name, instruments, p, "folder")


# ------------------------------------------------------------------ SFZ
_NOTE_NAME = re.compile(r"^([a-g])([#b]?)(-?\d+)$", re.I)
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def parse_note(value: str) -> int:
    """A MIDI note from a number or a name with C4 = 60 (``"c#2"`` -> 37, ``"36"`` -> 36)."""
    v = value.strip()
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    m = _NOTE_NAME.match(v)
    if not m:
        raise ValueError(f"not a note: {value!r}")
    acc = {"#": 1, "b": -1, "": 0}[m.group(2).lower()]
    return 12 * (int(m.group(3)) + 1) + _PITCH_CLASS[m.group(1).lower()] + acc


def _sfz_text(path: Path, depth: int = 0) -> str:
    if depth > 8:
        raise KitError(f"{path}: #include nests too deeply; check for an include loop")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise KitError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)

    def include(m: re.Match) -> str:
        return _sfz_text(path.parent / m.group(1).replace("\\", "/"), depth + 1)

    return re.sub(r'#include\s+"([^"]+)"', include, text)


def _sfz_regions(text: str, sfz: Path) -> list[dict[str, str]]:
    defines: dict[str, str] = {}

    def define(m: re.Match) -> str:
        defines[m.group(1)] = m.group(2).strip()
        return ""

    text = re.sub(r"#define\s+(\$\w+)\s+([^\n]+)", define, text)
    for k in sorted(defines, key=len, reverse=True):
        text = text.replace(k, defines[k])
    tokens = re.split(r"<(\w+)>", text)
    levels: dict[str, dict[str, str]] = {"control": {}, "global": {}, "master": {}, "group": {}}
    order = ("control", "global", "master", "group")
    regions: list[dict[str, str]] = []
    if tokens[0].strip() and "=" in tokens[0]:
        raise KitError(f"{sfz}: opcodes before any <header>; the file is not valid SFZ")
    for header, body in zip(tokens[1::2], tokens[2::2]):
        header = header.lower()
        opcodes: dict[str, str] = {}
        matches = list(re.finditer(r"(?:^|\s)(\w+)=", body))
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
            opcodes[m.group(1).lower()] = body[m.end():end].strip()
        if header in levels:
            levels[header] = dict(opcodes)
            for lower in order[order.index(header) + 1:]:
                levels[lower] = {}
        elif header == "region":
            merged: dict[str, str] = {}
            for lvl in order:
                merged.update(levels[lvl])
            merged.update(opcodes)
            regions.append(merged)
        elif header in ("curve", "effect", "midi", "sample"):
            continue
        else:
            log.debug("%s: header <%s> ignored", sfz, header)
    return regions


def load_sfz_kit(path: PathLike) -> SampledKit:
    """Load an SFZ drum kit: regions with ``key`` / ``lokey``-``hikey``, ``lovel``-``hivel``, ``sample``.

    Understood: ``<control>`` ``default_path``, ``<global>``/``<master>``/``<group>`` inheritance,
    ``#define``, ``#include``, note names (C4 = 60), ``pitch_keycenter``, ``pitch_keytrack``,
    ``transpose``, ``tune``, ``volume`` (dB), ``amplitude`` (%), ``offset``/``end``, ``seq_position``
    (round robin); release-triggered regions are skipped. Regions of one key with the same velocity
    range and sequence position sound together (they are summed).

    Raises:
        KitError: the file is missing or malformed, a sample is missing, or no region is a drum.
    """
    sfz = Path(path)
    if not sfz.is_file():
        raise KitError(f"{sfz}: SFZ file not found; check the path")
    regions = _sfz_regions(_sfz_text(sfz), sfz)
    if not regions:
        raise KitError(f"{sfz}: no <region> found; the file is not an SFZ instrument")
    cache = _SampleCache()
    # note -> (lovel, hivel, seq) -> summed sample
    layers: dict[int, dict[tuple[int, int, int], np.ndarray]] = {}
    gains: dict[int, dict[tuple[int, int, int], float]] = {}
    for r in regions:
        sample = r.get("sample", "").replace("\\", "/")
        if not sample or sample.startswith("*"):
            continue
        if r.get("trigger", "attack").lower() not in ("attack", "first"):
            continue
        try:
            if "key" in r:
                lokey = hikey = center = parse_note(r["key"])
            else:
                lokey, hikey = parse_note(r.get("lokey", "0")), parse_note(r.get("hikey", "127"))
                center = parse_note(r.get("pitch_keycenter", "60"))
            if "pitch_keycenter" in r:
                center = parse_note(r["pitch_keycenter"])
            lovel, hivel = int(r.get("lovel", 1)), int(r.get("hivel", 127))
            keytrack = float(r.get("pitch_keytrack", 100))
            shift = float(r.get("transpose", 0)) + float(r.get("tune", 0)) / 100.0
            gain = db_to_gain(float(r.get("volume", 0))) * float(r.get("amplitude", 100)) / 100.0
            offset, end = int(r.get("offset", 0)), int(r.get("end", -1))
            seq = int(r.get("seq_position", 1))
        except ValueError as exc:
            raise KitError(f"{sfz}: region with sample {sample!r} has a bad value ({exc}); fix the opcode") from exc
        notes = [n for n in range(max(lokey, 0), min(hikey, 127) + 1) if n in GM_KIT_NOTES]
        if not notes:
            continue
        sample_path = sfz.parent / (r.get("default_path", "").replace("\\", "/")) / sample
        raw = cache.load(sample_path, sfz)
        if raw is None:
            continue
        if offset or end >= 0:
            raw = raw[offset: (end + 1 if end >= 0 else None)]
        for n in notes:
            semis = (n - center) * keytrack / 100.0 + shift
            x = repitch(raw, semis) if abs(semis) > 1e-3 else raw
            key = (lovel, hivel, seq)
            slot = layers.setdefault(n, {})
            g = gains.setdefault(n, {})
            if key in slot:
                a, b = slot[key], x * gain / g[key]
                out = np.zeros(max(a.size, b.size), np.float32)
                out[: a.size] += a
                out[: b.size] += b
                slot[key] = out
            else:
                slot[key], g[key] = x, gain
    instruments: dict[int, list[Instrument]] = {}
    for n, slot in layers.items():
        lay = tuple(SampleLayer(x, (lo - 1) / 127.0 if lo > 1 else 0.0, hi / 127.0, gains[n][(lo, hi, s)])
                    for (lo, hi, s), x in sorted(slot.items()))
        _add(instruments, Instrument(f"{sfz.stem} note {n}", n, lay))
    return _finish(sfz.stem, instruments, sfz, "sfz")


# ------------------------------------------------------------------ SF2
# generator operators (SoundFont 2.04, section 8.1.2)
_G_START, _G_END, _G_STARTLOOP, _G_ENDLOOP = 0, 1, 2, 3
_G_START_COARSE, _G_END_COARSE = 4, 12
_G_STARTLOOP_COARSE, _G_ENDLOOP_COARSE = 45, 50
_G_HOLD_VOL, _G_DECAY_VOL, _G_SUSTAIN_VOL = 35, 36, 37
_G_INSTRUMENT, _G_KEYRANGE, _G_VELRANGE = 41, 43, 44
_G_ATTENUATION, _G_COARSE, _G_FINE = 48, 51, 52
_G_SAMPLE_ID, _G_SAMPLE_MODES, _G_SCALE_TUNING, _G_ROOT_KEY = 53, 54, 56, 58
_RANGE_GENS = (_G_KEYRANGE, _G_VELRANGE)
_ADDITIVE_PRESET_GENS = (_G_ATTENUATION, _G_COARSE, _G_FINE)


@dataclass(frozen=True)
class Sf2Preset:
    """One preset of a SoundFont: ``bank`` 128 holds the drum kits."""

    name: str
    bank: int
    program: int


@dataclass
class _Sf2:
    path: Path
    smpl_offset: int
    smpl_bytes: int
    sm24_offset: int | None
    presets: list[tuple[str, int, int, int]]  # name, program, bank, bag index
    pbag: list[tuple[int, int]]
    pgen: list[tuple[int, bytes]]
    insts: list[tuple[str, int]]
    ibag: list[tuple[int, int]]
    igen: list[tuple[int, bytes]]
    shdr: list[tuple]  # name, start, end, startloop, endloop, rate, pitch, correction, link, type
    cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def _sf2_name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _read_sf2(path: Path) -> _Sf2:
    def bad(problem: str) -> KitError:
        return KitError(f"{path}: {problem}; the file is not a valid SoundFont 2")

    if not path.is_file():
        raise KitError(f"{path}: SoundFont file not found; check the path")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise bad("no RIFF 'sfbk' header")
        chunks: dict[str, tuple[int, int]] = {}
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"LIST":
                kind = f.read(4)
                sub, end = pos + 12, min(pos + 8 + csize, size)
                while sub + 8 <= end:
                    f.seek(sub)
                    sid, ssize = struct.unpack("<4sI", f.read(8))
                    chunks[f"{kind.decode('latin-1')}/{sid.decode('latin-1')}"] = (sub + 8, ssize)
                    sub += 8 + ssize + (ssize & 1)
            pos += 8 + csize + (csize & 1)
        need = ("sdta/smpl", "pdta/phdr", "pdta/pbag", "pdta/pgen", "pdta/inst", "pdta/ibag", "pdta/igen", "pdta/shdr")
        missing = [n for n in need if n not in chunks]
        if missing:
            raise bad(f"chunks {', '.join(missing)} are missing")

        def read(name: str) -> bytes:
            off, n = chunks[name]
            f.seek(off)
            data = f.read(n)
            if len(data) != n:
                raise bad(f"chunk {name} is truncated")
            return data

        def records(name: str, fmt: str) -> list[tuple]:
            data = read(name)
            step = struct.calcsize(fmt)
            if len(data) % step:
                raise bad(f"chunk {name} has a size that is not a multiple of {step}")
            return [struct.unpack_from(fmt, data, i) for i in range(0, len(data), step)]

        phdr = [(_sf2_name(r[0]), r[1], r[2], r[3]) for r in records("pdta/phdr", "<20sHHHIII")]
        pbag = [(r[0], r[1]) for r in records("pdta/pbag", "<HH")]
        pgen = [(r[0], r[1]) for r in records("pdta/pgen", "<H2s")]
        inst = [(_sf2_name(r[0]), r[1]) for r in records("pdta/inst", "<20sH")]
        ibag = [(r[0], r[1]) for r in records("pdta/ibag", "<HH")]
        igen = [(r[0], r[1]) for r in records("pdta/igen", "<H2s")]
        shdr = [(_sf2_name(r[0]),) + tuple(r[1:]) for r in records("pdta/shdr", "<20sIIIIIBbHH")]
    if len(phdr) < 2 or len(inst) < 2 or len(shdr) < 2:
        raise bad("it holds no preset, instrument or sample")
    smpl_off, smpl_n = chunks["sdta/smpl"]
    sm24 = chunks.get("sdta/sm24")
    return _Sf2(path, smpl_off, smpl_n, sm24[0] if sm24 and sm24[1] >= smpl_n // 2 else None,
                phdr, pbag, pgen, inst, ibag, igen, shdr)


def _zones(bags: list[tuple[int, int]], gens: list[tuple[int, bytes]], first: int, last: int,
           terminal: int, path: Path) -> list[dict[int, bytes]]:
    out = []
    for b in range(first, last):
        if b + 1 >= len(bags):
            raise KitError(f"{path}: zone index {b} is out of range; the SoundFont is damaged")
        g0, g1 = bags[b][0], bags[b + 1][0]
        if g1 > len(gens) or g0 > g1:
            raise KitError(f"{path}: generator index out of range; the SoundFont is damaged")
        out.append({op: amount for op, amount in gens[g0:g1]})
    return out


def _s16(b: bytes) -> int:
    return struct.unpack("<h", b)[0]


def _rng(b: bytes | None) -> tuple[int, int]:
    return (0, 127) if b is None else (b[0], b[1])


def list_sf2_presets(path: PathLike, *, bank: int | None = 128) -> list[Sf2Preset]:
    """The presets of a SoundFont (only ``bank``'s; ``None`` for all), sorted by bank and program.

    Raises:
        KitError: the file is missing or not a SoundFont 2.
    """
    sf = _read_sf2(Path(path))
    out = [Sf2Preset(n, b, p) for n, p, b, _ in sf.presets[:-1] if bank is None or b == bank]
    return sorted(out, key=lambda x: (x.bank, x.program))


def _sf2_sample(sf: _Sf2, index: int, start_off: int, end_off: int) -> tuple[np.ndarray, tuple]:
    if not 0 <= index < len(sf.shdr) - 1:
        raise KitError(f"{sf.path}: a zone points at sample {index}, which does not exist; the SoundFont is damaged")
    hdr = sf.shdr[index]
    start, end = hdr[1] + start_off, hdr[2] + end_off
    n_total = sf.smpl_bytes // 2
    if not 0 <= start < end <= n_total:
        raise KitError(f"{sf.path}: sample {hdr[0]!r} lies outside the sample data; the SoundFont is damaged")
    key = (start, end)
    if key not in sf.cache:
        with open(sf.path, "rb") as f:
            f.seek(sf.smpl_offset + 2 * start)
            x = np.frombuffer(f.read(2 * (end - start)), dtype="<i2").astype(np.float32) / 32768.0
            if sf.sm24_offset is not None:
                f.seek(sf.sm24_offset + start)
                low = np.frombuffer(f.read(end - start), dtype=np.uint8).astype(np.float32)
                x = x + low / (32768.0 * 256.0)
        sf.cache[key] = x
    return sf.cache[key], hdr


def _render_zone(sf: _Sf2, gens: dict[int, bytes], note: int) -> np.ndarray | None:
    """One key of one instrument zone, as played at 44.1 kHz (no velocity curve)."""
    def s(op: int, default: int = 0) -> int:
        return _s16(gens[op]) if op in gens else default

    start_off = s(_G_START) + 32768 * s(_G_START_COARSE)
    end_off = s(_G_END) + 32768 * s(_G_END_COARSE)
    raw, hdr = _sf2_sample(sf, struct.unpack("<H", gens[_G_SAMPLE_ID])[0], start_off, end_off)
    _, start, _, loop_start, loop_end, rate, orig_pitch, correction, _, _ = hdr
    if rate <= 0:
        raise KitError(f"{sf.path}: sample {hdr[0]!r} has sample rate {rate}; the SoundFont is damaged")
    root = s(_G_ROOT_KEY, -1)
    root = root if 0 <= root <= 127 else (orig_pitch if orig_pitch <= 127 else 60)
    semis = (note - root) * s(_G_SCALE_TUNING, 100) / 100.0 + s(_G_COARSE) + (s(_G_FINE) + correction) / 100.0
    x = raw
    if s(_G_SAMPLE_MODES) in (1, 3):  # looped: repeat the loop to MAX_SAMPLE_S, the cut fades it
        ls = loop_start + s(_G_STARTLOOP) + 32768 * s(_G_STARTLOOP_COARSE) - start - start_off
        le = loop_end + s(_G_ENDLOOP) + 32768 * s(_G_ENDLOOP_COARSE) - start - start_off
        if 0 <= ls < le <= x.size:
            reps = int(np.ceil(max(MAX_SAMPLE_S * rate - le, 0) / (le - ls))) + 1
            x = np.concatenate([x[:le], np.tile(x[ls:le], reps)])
    x = repitch(x, semis, from_rate=int(rate))
    # volume envelope: hold, then a dB-linear decay towards the sustain level (no note-off)
    hold_s = 2.0 ** (s(_G_HOLD_VOL, -12000) / 1200.0)
    decay_s = 2.0 ** (s(_G_DECAY_VOL, -12000) / 1200.0)
    sustain_db = min(max(s(_G_SUSTAIN_VOL), 0), 1440) / 10.0
    if sustain_db > 0:
        t = np.arange(x.size) / MODEL_SAMPLE_RATE
        db = np.minimum(96.0 * np.clip(t - hold_s, 0, None) / max(decay_s, 1e-3), sustain_db)
        x = x * db_to_gain(-db).astype(np.float32)
    attenuation_db = min(max(s(_G_ATTENUATION), 0), 1440) / 10.0
    return prepare_sample(x * np.float32(db_to_gain(-attenuation_db)))


def load_sf2_kit(path: PathLike, preset: int | str | None = None, *, bank: int = 128) -> SampledKit:
    """Load a drum preset of a SoundFont 2 file by reading its samples (no synthesiser needed).

    Args:
        path: the ``.sf2`` file.
        preset: program number or preset name; ``None`` takes the first drum preset (lowest program).
        bank: the preset bank; 128 is the GM percussion bank.

    Each key of the preset that is a model class becomes an instrument; instrument zones with the
    same velocity range are summed (stereo pairs at half level each), different ranges are velocity
    layers. Key tracking, root key, tuning, attenuation, sample offsets, loops and the hold/decay/
    sustain volume envelope are applied; filters, modulators and release are not.

    Raises:
        KitError: the file is not a SoundFont, the preset does not exist, or it holds no drum.
    """
    p = Path(path)
    sf = _read_sf2(p)
    presets = [(i, r) for i, r in enumerate(sf.presets[:-1]) if r[2] == bank]
    if preset is None:
        chosen = min(presets, key=lambda ir: ir[1][1]) if presets else None
    elif isinstance(preset, int) or (isinstance(preset, str) and preset.isdigit()):
        chosen = next((ir for ir in presets if ir[1][1] == int(preset)), None)
    else:
        chosen = next((ir for ir in presets if ir[1][0].lower() == str(preset).lower()), None)
    if chosen is None:
        names = ", ".join(f"{r[1]} {r[0]!r}" for _, r in presets) or "none"
        raise KitError(f"{p}: no preset {preset!r} in bank {bank}; available: {names}")
    index, (preset_name, program, _, bag0) = chosen
    bag1 = sf.presets[index + 1][3]
    pzones = _zones(sf.pbag, sf.pgen, bag0, bag1, 0, p)
    pglobal = pzones[0] if pzones and _G_INSTRUMENT not in pzones[0] else {}
    # note -> (vlo, vhi) -> (summed samples)
    per_note: dict[int, dict[tuple[int, int], np.ndarray]] = {}
    for pz in pzones:
        if _G_INSTRUMENT not in pz:
            continue
        pz = {**pglobal, **pz}
        ii = struct.unpack("<H", pz[_G_INSTRUMENT])[0]
        if not 0 <= ii < len(sf.insts) - 1:
            raise KitError(f"{p}: preset {preset_name!r} points at instrument {ii}, which does not exist")
        izones = _zones(sf.ibag, sf.igen, sf.insts[ii][1], sf.insts[ii + 1][1], 0, p)
        iglobal = izones[0] if izones and _G_SAMPLE_ID not in izones[0] else {}
        pk, pv = _rng(pz.get(_G_KEYRANGE)), _rng(pz.get(_G_VELRANGE))
        for iz in izones:
            if _G_SAMPLE_ID not in iz:
                continue
            gens = {**iglobal, **iz}
            for op in _ADDITIVE_PRESET_GENS:  # preset generators add to the instrument's
                if op in pz:
                    gens[op] = struct.pack("<h", _s16(gens.get(op, b"\0\0")) + _s16(pz[op]))
            ik, iv = _rng(gens.get(_G_KEYRANGE)), _rng(gens.get(_G_VELRANGE))
            klo, khi = max(pk[0], ik[0]), min(pk[1], ik[1])
            vlo, vhi = max(pv[0], iv[0]), min(pv[1], iv[1])
            if vlo > vhi:
                continue
            sample_type = sf.shdr[struct.unpack("<H", gens[_G_SAMPLE_ID])[0]][9] if \
                struct.unpack("<H", gens[_G_SAMPLE_ID])[0] < len(sf.shdr) else 1
            weight = 0.5 if sample_type & 0x7FFF in (2, 4) else 1.0
            for note in range(klo, khi + 1):
                if note not in GM_KIT_NOTES:
                    continue
                x = _render_zone(sf, gens, note)
                if x is None:
                    continue
                slot = per_note.setdefault(note, {})
                prev = slot.get((vlo, vhi))
                if prev is None:
                    slot[(vlo, vhi)] = x * np.float32(weight)
                else:
                    out = np.zeros(max(prev.size, x.size), np.float32)
                    out[: prev.size] += prev
                    out[: x.size] += x * np.float32(weight)
                    slot[(vlo, vhi)] = out
    instruments: dict[int, list[Instrument]] = {}
    for note, slot in per_note.items():
        layers = tuple(SampleLayer(x, lo / 127.0 if lo > 0 else 0.0, hi / 127.0)
                       for (lo, hi), x in sorted(slot.items()))
        _add(instruments, Instrument(f"{preset_name} note {note}", note, layers))
    return _finish(f"{p.stem}:{preset_name}", instruments, p, "sf2")


# ------------------------------------------------------------------ any kit
def detect_kit_kind(path: PathLike) -> str:
    """``hydrogen``, ``sf2``, ``sfz`` or ``folder``, from the path.

    Raises:
        KitError: the path does not exist or is a file of another kind.
    """
    p = Path(path)
    if not p.exists():
        raise KitError(f"{p}: kit not found; check the path")
    if p.is_dir():
        return "hydrogen" if (p / "drumkit.xml").exists() else "folder"
    suffix = p.suffix.lower()
    if suffix == ".sf2":
        return "sf2"
    if suffix == ".sfz":
        return "sfz"
    if p.name == "drumkit.xml":
        return "hydrogen"
    raise KitError(f"{p}: unknown kit format {suffix!r}; use a Hydrogen drumkit folder, .sf2, .sfz or a folder of one-shots")


def load_kit(path: PathLike, *, kind: str | None = None, preset: int | str | None = None) -> SampledKit:
    """Load any supported kit (format detected from the path unless ``kind`` is given).

    Args:
        path: a Hydrogen drumkit folder, a ``.sf2``, a ``.sfz`` or a folder of one-shots.
        kind: one of :data:`KIT_KINDS`.
        preset: for SF2 only: program number or name in bank 128.

    Raises:
        KitError: anything wrong with the kit, with the file and the fix in the message.
    """
    kind = kind or detect_kit_kind(path)
    if kind not in KIT_KINDS:
        raise KitError(f"{path}: unknown kit kind {kind!r}; use one of {', '.join(KIT_KINDS)}")
    if kind == "sf2":
        return load_sf2_kit(path, preset)
    if preset is not None:
        raise KitError(f"{path}: 'preset' applies to SoundFonts only, not to a {kind} kit; remove it")
    return {"hydrogen": load_hydrogen_kit, "sfz": load_sfz_kit, "folder": load_folder_kit}[kind](path)


def synthetic_kit(seed: int = 0, *, name: str | None = None) -> SampledKit:
    """A small kit synthesised from noise and sines (the project's own; handy for tests and demos).

    Each class gets a distinct recipe (pitched decaying sine for kick and toms, noise bursts with
    different decays and filters for snare, hats and cymbals); ``seed`` varies pitches and decays.
    """
    rng = np.random.default_rng(seed)
    sr = MODEL_SAMPLE_RATE

    def env(length_s: float, decay_per_s: float) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(int(length_s * sr)) / sr
        return t, np.exp(-decay_per_s * t)

    def hp(x: np.ndarray, k: int) -> np.ndarray:  # crude high-pass: x minus its moving average
        return x - np.convolve(x, np.ones(k) / k, mode="same")

    def tone(f0: float, drop: float, decay: float, noise: float, length_s: float = 0.6) -> np.ndarray:
        t, e = env(length_s, decay)
        f = f0 * (1 + drop * np.exp(-30 * t))
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) * e + noise * rng.standard_normal(t.size) * e ** 3
        return x

    recipes = {
        36: lambda: tone(rng.uniform(45, 65), 2.0, rng.uniform(8, 14), 0.05),
        38: lambda: 0.5 * tone(rng.uniform(170, 220), 0.5, 25, 0.0, 0.4)
        + hp(rng.standard_normal(int(0.4 * sr)), 3) * env(0.4, rng.uniform(14, 22))[1],
        42: lambda: hp(rng.standard_normal(int(0.15 * sr)), 2) * env(0.15, rng.uniform(40, 70))[1] * 0.6,
        46: lambda: hp(rng.standard_normal(int(1.0 * sr)), 2) * env(1.0, rng.uniform(4, 7))[1] * 0.5,
        43: lambda: tone(rng.uniform(80, 100), 0.3, 7, 0.02),
        47: lambda: tone(rng.uniform(120, 140), 0.3, 8, 0.02),
        50: lambda: tone(rng.uniform(170, 200), 0.3, 9, 0.02),
        49: lambda: hp(rng.standard_normal(int(2.5 * sr)), 4) * env(2.5, rng.uniform(1.5, 2.5))[1] * 0.5,
        51: lambda: (hp(rng.standard_normal(int(2.0 * sr)), 3) * 0.25
                    + 0.3 * np.sin(2 * np.pi * rng.uniform(2500, 3500) * env(2.0, 1)[0]))
        * env(2.0, rng.uniform(2.0, 3.5))[1],
    }
    instruments: dict[int, tuple[Instrument, ...]] = {}
    for note, make in recipes.items():
        layers = []
        for lo, hi in ((0.0, 0.5), (0.5, 1.0)):
            x = make().astype(np.float32)
            x *= np.float32((0.6 if hi <= 0.5 else 0.9) / (np.max(np.abs(x)) + 1e-9))
            layers.append(SampleLayer(prepare_sample(x), lo, hi))  # type: ignore[arg-type]
        instruments[note] = (Instrument(f"synthetic {DRUM_CLASSES[GM_KIT_NOTES[note]].name}", note, tuple(layers)),)
    return SampledKit(name or f"synthetic-{seed}", instruments, sr, None, "synthetic")


def kit_classes(kits: Iterable[SampledKit]) -> tuple[str, ...]:
    """The classes any of ``kits`` can play, sorted."""
    return tuple(sorted({c for k in kits for c in k.classes}))
