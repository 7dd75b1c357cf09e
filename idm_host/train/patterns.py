"""Drum patterns for training data: General MIDI drum files, and a seeded groove generator.

A :class:`Pattern` is a list of hits ``(time_s, GM note, velocity 0..1)``. Notes, not classes, are
kept so that a kit can play the exact drum (a pedal hat, a side stick, a ride bell); the class of a
note comes from :data:`~idm_host.train.kits.PATTERN_NOTES`.

Example:
    >>> rng = np.random.default_rng(7)
    >>> p = generate_groove(rng, style="funk", duration_s=8.0)
    >>> p.style, p.duration_s
    ('funk', 8.0)
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TypeVar, Union

import numpy as np

from ..errors import MidiError
from ..types import Hit, Transcription
from .kits import PATTERN_NOTES

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: The generator's styles.
STYLES: tuple[str, ...] = ("rock", "funk", "hiphop", "shuffle", "metal", "ballad", "electronic")
MIN_BPM, MAX_BPM = 60.0, 200.0
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
#: Added to every style's fill probability: fills are where toms are learnt.
FILL_BONUS = 0.2


@dataclass(frozen=True)
class Pattern:
    """Drum hits.

    Attributes:
        times_s: float64 ``(n,)``, sorted.
        notes: int ``(n,)`` General MIDI drum notes.
        velocities: float32 ``(n,)`` in 0..1.
        duration_s: the pattern's length (s).
        tempo_bpm: the tempo, if known.
        style: a generator style, or ``"midi"``.
        source: where it came from (a file, or ``"generator:<style>:<seed>"``).
    """

    times_s: np.ndarray
    notes: np.ndarray
    velocities: np.ndarray
    duration_s: float
    tempo_bpm: float | None = None
    style: str = "midi"
    source: str = ""

    @classmethod
    def from_hits(cls, hits: Iterable[tuple[float, int, float]], duration_s: float | None = None,
                  **meta) -> "Pattern":
        rows = sorted((float(t), int(n), float(v)) for t, n, v in hits)
        times = np.array([r[0] for r in rows], dtype=np.float64)
        notes = np.array([r[1] for r in rows], dtype=np.int64)
        vel = np.clip(np.array([r[2] for r in rows], dtype=np.float32), 0.0, 1.0)
        if duration_s is None:
            duration_s = float(times[-1]) + 1.0 if rows else 0.0
        return cls(times, notes, vel, float(duration_s), **meta)

    @property
    def n_hits(self) -> int:
        return int(self.times_s.size)

    def crop(self, start_s: float, length_s: float) -> "Pattern":
        """Hits in ``[start_s, start_s + length_s)``, shifted to start at 0."""
        keep = (self.times_s >= start_s) & (self.times_s < start_s + length_s)
        return Pattern(self.times_s[keep] - start_s, self.notes[keep], self.velocities[keep], float(length_s),
                       self.tempo_bpm, self.style, self.source)

    def classes_present(self) -> set[str]:
        return {PATTERN_NOTES[int(n)] for n in self.notes if int(n) in PATTERN_NOTES}

    def to_transcription(self, classes: Sequence[str]) -> Transcription:
        """Hits of ``classes`` (notes mapped by :data:`PATTERN_NOTES`); others are dropped.

        Two hits of one class closer than 1 ms are joined (the louder one kept).
        """
        hits: dict[str, list[Hit]] = {c: [] for c in classes}
        for t, n, v in zip(self.times_s, self.notes, self.velocities):
            c = PATTERN_NOTES.get(int(n))
            if c in hits:
                h = hits[c]
                if h and t - h[-1].time_s < 1e-3:
                    if v > h[-1].velocity:
                        h[-1] = Hit(float(t), float(v))
                    continue
                h.append(Hit(float(t), float(v)))
        return Transcription(tuple(classes), hits, self.duration_s)  # type: ignore[arg-type]


# ------------------------------------------------------------------ MIDI files
def read_drum_midi(path: PathLike) -> Pattern:
    """Read a drum MIDI file (any GM drum file; notes on channel 10, else on every channel).

    Notes with no class (claps, cowbell ...) are kept in the pattern; classes are assigned later.

    Raises:
        MidiError: the file is missing, not MIDI, or has no note.
    """
    import mido

    p = Path(path)
    if not p.is_file():
        raise MidiError(f"{p}: MIDI file not found; check the path")
    try:
        mid = mido.MidiFile(str(p))
    except Exception as exc:  # mido raises OSError, EOFError, KeyError, ValueError on bad files
        raise MidiError(f"{p}: not a readable MIDI file ({exc}); export it again as a standard MIDI file") from exc
    drums: list[tuple[float, int, float]] = []
    others: list[tuple[float, int, float]] = []
    tempo_bpm = None
    t = 0.0
    try:
        for msg in mid:  # merged tracks, times in seconds
            t += msg.time
            if msg.type == "set_tempo" and tempo_bpm is None:
                tempo_bpm = round(mido.tempo2bpm(msg.tempo), 3)
            if msg.type == "note_on" and msg.velocity > 0:
                (drums if msg.channel == 9 else others).append((t, msg.note, msg.velocity / 127.0))
    except Exception as exc:
        raise MidiError(f"{p}: the MIDI data is damaged ({exc}); export it again") from exc
    hits = drums
    if not drums and others:
        log.info("%s: no notes on channel 10; reading every channel as drums", p)
        hits = others
    if not hits:
        raise MidiError(f"{p}: holds no notes; a drum pattern needs note-on events (GM channel 10)")
    return Pattern.from_hits(hits, max(t, max(h[0] for h in hits) + 0.5), tempo_bpm=tempo_bpm,
                             style="midi", source=str(p))


def find_midi_files(paths: Iterable[PathLike]) -> list[Path]:
    """The MIDI files among ``paths`` (files, or folders searched recursively), sorted.

    Raises:
        MidiError: a path does not exist.
    """
    out: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in MIDI_SUFFIXES and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise MidiError(f"{p}: not found; give MIDI files or folders that hold them")
    return out


# ------------------------------------------------------------------ groove generator
@dataclass(frozen=True)
class _Style:
    bpm: tuple[float, float]
    triplet: bool           # 12 steps per bar (shuffle) instead of 16
    swing: float            # delay of off-beat 16ths as a fraction of a step
    hat_rate: tuple[int, ...]  # candidate timekeeper steps (1 = every step, 2 = 8ths, 4 = quarters)
    ride_p: float           # probability the timekeeper is the ride
    kicks: tuple[tuple[int, ...], ...]  # kick step templates (16-step grid; scaled for triplets)
    snares: tuple[tuple[int, ...], ...]
    kick_extra_p: float     # probability of an extra kick on a free 16th
    ghost_p: float          # probability of a ghost snare on a free 16th
    open_hat_p: float       # probability of an open hat on the bar's last off-beat
    fill_p: float           # probability that a phrase ends with a fill (plus FILL_BONUS)
    timing_ms: float        # humanised timing, standard deviation
    vel_sd: float           # humanised velocity, standard deviation
    tom_groove_p: float     # probability that a bar keeps time on the floor tom
    crash_p: float          # probability of a crash on a bar's downbeat (besides phrase starts)


_STYLES: dict[str, _Style] = {
    "rock": _Style((80, 160), False, 0.0, (2, 2, 1), 0.25, ((0, 8), (0, 6, 8), (0, 8, 10), (0, 3, 8, 11), (0, 7, 8)),
                   ((4, 12),), 0.08, 0.03, 0.35, 0.5, 7.0, 0.08, 0.08, 0.12),
    "funk": _Style((85, 120), False, 0.08, (1, 2), 0.1, ((0, 3, 10), (0, 6, 9, 14), (0, 2, 7, 10), (0, 3, 6, 11)),
                   ((4, 12), (4, 7, 12)), 0.15, 0.25, 0.5, 0.4, 5.0, 0.09, 0.03, 0.1),
    "hiphop": _Style((70, 100), False, 0.18, (2, 1), 0.1, ((0, 7, 10), (0, 3, 10), (0, 2, 9, 11), (0, 10)),
                     ((4, 12), (4, 12, 15)), 0.1, 0.15, 0.4, 0.3, 10.0, 0.1, 0.02, 0.08),
    "shuffle": _Style((70, 150), True, 0.0, (1, 2), 0.35, ((0, 8), (0, 6, 8), (0, 10)),
                      ((4, 12),), 0.08, 0.12, 0.3, 0.45, 8.0, 0.09, 0.05, 0.12),
    "metal": _Style((100, 200), False, 0.0, (2, 4), 0.35, ((0, 2, 4, 6, 8, 10, 12, 14), (0, 1, 2, 3, 8, 9, 10, 11),
                                                          (0, 3, 6, 8, 11, 14), (0, 8)),
                    ((4, 12), (8,)), 0.2, 0.0, 0.15, 0.6, 4.0, 0.06, 0.1, 0.3),
    "ballad": _Style((60, 90), False, 0.0, (2, 4), 0.4, ((0, 10), (0, 8), (0, 7, 10)),
                     ((8,), (4, 12)), 0.05, 0.1, 0.3, 0.45, 10.0, 0.12, 0.1, 0.15),
    "electronic": _Style((110, 140), False, 0.0, (1, 2), 0.05, ((0, 4, 8, 12), (0, 4, 8, 12, 14), (0, 6, 8, 12)),
                         ((4, 12),), 0.05, 0.0, 0.0, 0.35, 0.0, 0.04, 0.03, 0.15),
}

_TOMS = ((50, 48), (47, 45), (43, 41))  # high, mid, floor; first note preferred
_CRASHES = (49, 49, 57, 55, 52)
_RIDES = (51, 51, 59)


_T = TypeVar("_T")


def _pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    return options[int(rng.integers(len(options)))]


def generate_groove(
    rng: np.random.Generator,
    *,
    style: str | None = None,
    duration_s: float = 8.0,
    tempo_bpm: float | None = None,
) -> Pattern:
    """A humanised drum groove.

    Bars of a style template (kick and snare placements, a timekeeper on closed hat, ride or floor
    tom), extra kicks, ghost notes, open hats, crashes on phrase starts, and fills across the toms at
    phrase ends; timing and velocity are humanised (not for ``electronic``).

    Args:
        rng: the random generator (a seeded one gives the same groove).
        style: one of :data:`STYLES`; ``None`` picks one at random.
        duration_s: length of the pattern (s).
        tempo_bpm: 60..200; ``None`` picks one in the style's range.

    Raises:
        ValueError: an unknown style, a tempo outside 60..200 BPM or a non-positive duration.
    """
    style = style or str(_pick(rng, STYLES))
    if style not in _STYLES:
        raise ValueError(f"unknown groove style {style!r}; use one of {', '.join(STYLES)}")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    s = _STYLES[style]
    if tempo_bpm is None:
        tempo_bpm = float(rng.uniform(*s.bpm))
    if not MIN_BPM <= tempo_bpm <= MAX_BPM:
        raise ValueError(f"tempo {tempo_bpm} BPM is outside {MIN_BPM:.0f}..{MAX_BPM:.0f}")
    beat_s = 60.0 / tempo_bpm
    steps = 12 if s.triplet else 16
    step_s = 4 * beat_s / steps
    n_bars = int(math.ceil(duration_s / (4 * beat_s))) + 1
    phrase = int(_pick(rng, (2, 2, 4, 4, 8)))

    def at(step16: int) -> int:  # a 16-step template position on this grid
        return step16 if steps == 16 else int(round(step16 * 12 / 16))

    kick_tpl = tuple(at(k) for k in _pick(rng, s.kicks))  # type: ignore[union-attr]
    snare_tpl = tuple(at(k) for k in _pick(rng, s.snares))  # type: ignore[union-attr]
    rate = int(_pick(rng, s.hat_rate))
    if steps == 12:
        rate = {1: 1, 2: 3, 4: 3}[rate] if rate != 1 else int(_pick(rng, (1, 3)))
        # shuffle: triplet 'swung 8ths' = steps 0, 2 of each beat of 3
    if tempo_bpm > 150 and rate == 1 and steps == 16:
        rate = 2
    use_ride = rng.random() < s.ride_p
    keeper = int(_pick(rng, _RIDES)) if use_ride else 42
    snare_note = 37 if (style == "ballad" and rng.random() < 0.3) else int(_pick(rng, (38, 38, 38, 40)))
    kick_note = int(_pick(rng, (36, 36, 36, 35)))
    grid: dict[tuple[int, int], float] = {}  # (absolute step, note) -> velocity: no flams

    def add(bar: int, step: int, note: int, vel: float) -> None:
        key = (bar * steps + step, note)
        grid[key] = max(vel, grid.get(key, 0.0))

    for bar in range(n_bars):
        pos_in_phrase = bar % phrase
        fill = pos_in_phrase == phrase - 1 and rng.random() < s.fill_p + FILL_BONUS
        fill_from = steps - int(_pick(rng, (steps // 4, steps // 4, steps // 2, steps))) if fill else steps
        tom_groove = rng.random() < s.tom_groove_p
        # crash (with a kick) on phrase starts and now and then on a downbeat
        if (pos_in_phrase == 0 and rng.random() < 0.7) or rng.random() < s.crash_p:
            add(bar, 0, int(_pick(rng, _CRASHES)), 0.8 + 0.2 * rng.random())
            add(bar, 0, kick_note, 0.85)
        for st in range(fill_from):
            beat_pos = st % (steps // 4)
            accent = 1.0 if beat_pos == 0 else (0.8 if (steps == 16 and beat_pos == 2) else 0.65)
            if st % rate == 0 and not (steps == 12 and rate == 1 and beat_pos == 1 and rng.random() < 0.6):
                if tom_groove:
                    add(bar, st, 43, 0.55 + 0.3 * accent)
                else:
                    note = keeper
                    if keeper == 42 and style == "ballad" and rng.random() < 0.1:
                        note = 44
                    if use_ride and beat_pos == 0 and rng.random() < 0.15:
                        note = 53  # ride bell
                    add(bar, st, note, 0.45 + 0.45 * accent)
            if st in kick_tpl or (rng.random() < s.kick_extra_p and st % 2 == 0 and st not in snare_tpl):
                add(bar, st, kick_note, 0.75 + 0.2 * accent)
            if st in snare_tpl:
                add(bar, st, snare_note, 0.8 + 0.2 * rng.random())
            elif rng.random() < s.ghost_p and steps == 16 and st % 2 == 1 or (
                    steps == 12 and beat_pos == 2 and rng.random() < s.ghost_p):
                add(bar, st, snare_note, 0.1 + 0.25 * rng.random())
        # open hat on the last off-beat (electronic: every off-beat)
        if not use_ride and not tom_groove:
            if style == "electronic" and rng.random() < 0.6:
                for beat in range(4):
                    add(bar, beat * 4 + 2, 46, 0.7)
            elif rng.random() < s.open_hat_p and fill_from == steps:
                add(bar, steps - (2 if steps == 16 else 1), 46, 0.75)
            if style in ("shuffle", "ballad", "rock") and rng.random() < 0.1:
                for beat in (1, 3):
                    add(bar, beat * steps // 4, 44, 0.5)
        if fill:
            order = [snare_note, int(_pick(rng, _TOMS[0])), int(_pick(rng, _TOMS[1])), int(_pick(rng, _TOMS[2]))]
            if rng.random() < 0.3:
                order = order[::-1]
            sub = 1 if steps == 12 or tempo_bpm < 130 else 2
            span = range(fill_from, steps, sub)
            per = max(1, len(span) // len(order))
            for i, st in enumerate(span):
                note = order[min(i // per, len(order) - 1)] if rng.random() < 0.85 else int(_pick(rng, _TOMS[int(rng.integers(3))]))
                add(bar, st, note, 0.65 + 0.35 * rng.random())
                if rng.random() < 0.25:
                    add(bar, st, kick_note, 0.7)
    # humanise: swing, timing and velocity
    out: list[tuple[float, int, float]] = []
    timing_sd = s.timing_ms / 1000.0
    for (step, note), vel in sorted(grid.items()):
        t = step * step_s
        if s.swing and steps == 16 and step % 2 == 1:
            t += s.swing * step_s
        if timing_sd:
            t += float(rng.normal(0.0, timing_sd))
            if style == "hiphop" and note in (37, 38, 40) and vel > 0.5:
                t += 0.008  # laid-back backbeat
        v = float(np.clip(vel * (1.0 + rng.normal(0.0, s.vel_sd)), 0.05, 1.0))
        out.append((max(t, 0.0), note, v))
    p = Pattern.from_hits(out, n_bars * 4 * beat_s, tempo_bpm=round(tempo_bpm, 3), style=style,
                          source=f"generator:{style}")
    return p.crop(0.0, duration_s)


class PatternSource:
    """Random pattern windows: crops of MIDI files mixed with generated grooves.

    Args:
        midi: MIDI files or folders (read once, here).
        generator_weight: probability that a window comes from the generator (1.0 when no MIDI).
        styles: the generator styles to draw from.

    Raises:
        MidiError: a MIDI path is missing or unreadable.
    """

    def __init__(self, midi: Iterable[PathLike] = (), *, generator_weight: float = 0.5,
                 styles: Sequence[str] = STYLES):
        unknown = set(styles) - set(STYLES)
        if unknown or not styles:
            raise ValueError(f"unknown groove styles {sorted(unknown)}; use some of {', '.join(STYLES)}")
        self.files = find_midi_files(midi)
        self.patterns = [read_drum_midi(f) for f in self.files]
        self.styles = tuple(styles)
        self.generator_weight = 1.0 if not self.patterns else float(generator_weight)

    def sample(self, rng: np.random.Generator, duration_s: float, *, pre_roll_s: float = 0.0) -> Pattern:
        """A window of ``pre_roll_s + duration_s`` whose clip part (after ``pre_roll_s``) starts anywhere,
        not only on a downbeat. The pre-roll holds the hits whose tails ring into the clip."""
        total = pre_roll_s + duration_s
        if self.patterns and rng.random() >= self.generator_weight:
            p = self.patterns[int(rng.integers(len(self.patterns)))]
            start = float(rng.uniform(0.0, max(p.duration_s - duration_s, 0.0)))
            return p.crop(start - pre_roll_s, total)
        style = self.styles[int(rng.integers(len(self.styles)))]
        lead = pre_roll_s + float(rng.uniform(0.0, 4.0))
        p = generate_groove(rng, style=style, duration_s=duration_s + lead)
        return p.crop(lead - pre_roll_s, total)
