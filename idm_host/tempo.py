"""Tempo and grid: a BPM and downbeat estimate from hits, grid snapping and quantisation.

The estimate is a starting point the user may override (:class:`Tempo` is what a session stores).
This is the project's one tempo model: the editor's bar lines and snapping (:func:`grid_lines`,
:func:`snap`), quantising (:func:`quantize`), the bar/beat readout (:func:`bar_beat`) and every
MIDI file written (its tempo, time signature and downbeat, :func:`song_tempo`) come from here.

A beat is a quarter note and a bar holds ``Tempo.beats_per_bar`` of them (3/4, 4/4, 7/4 ...).
Grids are note values: ``"1/4"`` (a beat) to ``"1/32"``, with ``"T"`` for triplets (``"1/8T"``).

Example:
    >>> t = Tempo(bpm=120.0, downbeat_s=0.0)
    >>> grid_step_s(t, "1/16")
    0.125
    >>> snap(0.13, t, "1/16")
    0.125
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import IdmError

log = logging.getLogger(__name__)

#: Tempo range the estimator searches (BPM).
MIN_BPM = 60.0
MAX_BPM = 200.0
#: Tempo used when there are too few hits to estimate one.
DEFAULT_BPM = 120.0
#: Grid denominators accepted by :func:`parse_grid`.
GRID_DENOMINATORS = (4, 8, 16, 32)

_ENVELOPE_RATE = 200.0  # frames per second of the onset envelope used by the estimator
_GRID_RE = re.compile(r"^\s*1\s*/\s*(\d+)\s*(t|T)?\s*$")


@dataclass(frozen=True)
class Tempo:
    """A tempo map with one tempo.

    Attributes:
        bpm: quarter notes per minute, 20..400.
        downbeat_s: time of a bar's first beat (s); the grid extends both ways from it.
        beats_per_bar: beats per bar (4 for 4/4).
        estimated: True while the values come from :func:`estimate_tempo`, False once a user set them.
    """

    bpm: float = DEFAULT_BPM
    downbeat_s: float = 0.0
    beats_per_bar: int = 4
    estimated: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.bpm, (int, float)) and math.isfinite(self.bpm) and 20.0 <= self.bpm <= 400.0):
            raise IdmError(f"tempo {self.bpm!r} BPM is out of range; use 20..400 BPM")
        if not (isinstance(self.downbeat_s, (int, float)) and math.isfinite(self.downbeat_s) and self.downbeat_s >= 0):
            raise IdmError(f"downbeat {self.downbeat_s!r} s is invalid; use a time >= 0 s")
        if not isinstance(self.beats_per_bar, int) or not 1 <= self.beats_per_bar <= 16:
            raise IdmError(f"beats per bar {self.beats_per_bar!r} is invalid; use 1..16")
        object.__setattr__(self, "bpm", float(self.bpm))
        object.__setattr__(self, "downbeat_s", float(self.downbeat_s))

    @property
    def beat_s(self) -> float:
        """Length of one beat (s)."""
        return 60.0 / self.bpm

    @property
    def bar_s(self) -> float:
        """Length of one bar (s)."""
        return self.beats_per_bar * self.beat_s

    @property
    def time_signature(self) -> tuple[int, int]:
        """``(beats_per_bar, 4)``: the MIDI time signature."""
        return self.beats_per_bar, 4

    def to_dict(self) -> dict:
        return {"bpm": self.bpm, "downbeat_s": self.downbeat_s,
                "beats_per_bar": self.beats_per_bar, "estimated": self.estimated}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Tempo":
        return cls(float(data["bpm"]), float(data["downbeat_s"]), int(data.get("beats_per_bar", 4)),
                   bool(data.get("estimated", False)))


@dataclass(frozen=True)
class Grid:
    """A parsed grid: ``denominator`` (4, 8, 16, 32) and ``triplet``."""

    denominator: int
    triplet: bool = False

    @property
    def label(self) -> str:
        return f"1/{self.denominator}{'T' if self.triplet else ''}"


def parse_grid(grid: "str | Grid", triplet: bool = False) -> Grid:
    """Parse ``"1/16"`` or ``"1/8T"`` (or pass a :class:`Grid` through).

    Raises:
        IdmError: the grid is not one of 1/4, 1/8, 1/16, 1/32 (optionally with T).
    """
    if isinstance(grid, Grid):
        return Grid(grid.denominator, grid.triplet or triplet)
    m = _GRID_RE.match(str(grid))
    if not m or int(m.group(1)) not in GRID_DENOMINATORS:
        raise IdmError(f"grid {grid!r} is not supported; use 1/4, 1/8, 1/16 or 1/32, optionally with T for triplets")
    return Grid(int(m.group(1)), bool(m.group(2)) or triplet)


def grid_step_s(tempo: Tempo, grid: "str | Grid", triplet: bool = False) -> float:
    """Length of one grid step (s)."""
    g = parse_grid(grid, triplet)
    step = tempo.beat_s * 4.0 / g.denominator
    return step * 2.0 / 3.0 if g.triplet else step


def _check_unit(name: str, value: float, hi: float = 1.0) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= hi:
        raise IdmError(f"{name} {value!r} is out of range; use 0..{hi:g}")
    return float(value)


def grid_times(
    start_s: float, end_s: float, tempo: Tempo, grid: "str | Grid", *, swing: float = 0.0,
    triplet: bool = False,
) -> np.ndarray:
    """The grid's times in ``[start_s, end_s]`` (s), swing applied; float64 ``(n,)``."""
    step = grid_step_s(tempo, grid, triplet)
    swing = _check_unit("swing", swing, 0.99)
    k0 = math.floor((start_s - tempo.downbeat_s) / step) - 1
    k1 = math.ceil((end_s - tempo.downbeat_s) / step) + 1
    k = np.arange(k0, k1 + 1, dtype=np.int64)
    t = tempo.downbeat_s + k * step + (k % 2 == 1) * (swing * step / 2.0)
    return t[(t >= start_s) & (t <= end_s)]


def steps_per_beat(grid: "str | Grid") -> int:
    """Grid steps in one beat (``"1/16"`` -> 4, ``"1/8T"`` -> 3).

    Raises:
        IdmError: the grid does not divide a beat evenly (``"1/4T"``).
    """
    g = parse_grid(grid)
    num = g.denominator * (3 if g.triplet else 2)
    if num % 8:
        raise IdmError(f"grid {g.label} does not divide a beat evenly; use 1/8T or finer for triplets")
    return num // 8


def grid_lines(start_s: float, end_s: float, tempo: Tempo, grid: "str | Grid" = "1/4", *,
               min_step_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The grid's lines in ``[start_s, end_s]`` (extended by a step each side) and their rank:
    2 = bar line (every ``tempo.beats_per_bar`` beats from the downbeat), 1 = beat, 0 = grid step.

    Lines closer than ``min_step_s`` are thinned: grid steps first, then beats, then whole bars by
    powers of two (all lines are then bar lines).

    Example:
        >>> t, r = grid_lines(0.0, 3.0, Tempo(120.0, 0.0, 3), "1/4")
        >>> t[r == 2].tolist()  # 3/4 at 120 BPM: a bar every 1.5 s
        [0.0, 1.5, 3.0]
    """
    per_beat = steps_per_beat(grid)
    beat = tempo.beat_s
    step = beat / per_beat
    per_bar = tempo.beats_per_bar * per_beat
    if step < min_step_s and per_beat > 1:
        per_beat, step, per_bar = 1, beat, tempo.beats_per_bar
    if step < min_step_s:
        bars = 1
        while tempo.bar_s * bars < min_step_s:
            bars *= 2
        per_beat, step, per_bar = 1, tempo.bar_s * bars, 1
    k0 = int(math.floor((start_s - tempo.downbeat_s) / step))
    k1 = int(math.ceil((end_s - tempo.downbeat_s) / step))
    k = np.arange(k0, k1 + 1)
    times = tempo.downbeat_s + k * step
    rank = np.where(k % per_bar == 0, 2, np.where(k % per_beat == 0, 1, 0)).astype(np.int8)
    return times, rank


def bar_beat(time_s: float, tempo: Tempo) -> tuple[int, float]:
    """1-based bar number and 1-based (fractional) beat of ``time_s``; bar 1 starts at the downbeat.

    Example:
        >>> bar_beat(2.25, Tempo(120.0, 0.0, 3))
        (2, 2.5)
    """
    beats = (float(time_s) - tempo.downbeat_s) / tempo.beat_s
    bar = math.floor(beats / tempo.beats_per_bar)
    return bar + 1, beats - bar * tempo.beats_per_bar + 1


def snap(time_s: float, tempo: Tempo, grid: "str | Grid", *, swing: float = 0.0, triplet: bool = False) -> float:
    """The grid time nearest to ``time_s`` (never below 0 s).

    Swing delays every second grid step by ``swing`` x half a step (0 = straight; 2/3 gives a
    triplet shuffle on pairs of steps).
    """
    out = quantize([time_s], tempo, grid, strength=1.0, swing=swing, triplet=triplet)
    return float(out[0])


def quantize(
    times_s: "Sequence[float] | np.ndarray",
    tempo: Tempo,
    grid: "str | Grid",
    *,
    strength: float = 1.0,
    swing: float = 0.0,
    triplet: bool = False,
) -> np.ndarray:
    """Move times towards their nearest grid time.

    Args:
        times_s: hit times (s).
        tempo: the grid's tempo and downbeat.
        grid: ``"1/4"`` .. ``"1/32"``, ``"T"`` suffix (or ``triplet=True``) for triplets.
        strength: 0 (unchanged) .. 1 (exactly on the grid).
        swing: 0..0.99, see :func:`snap`.

    Returns:
        float64 ``(n,)`` new times, clipped at 0 s.

    Example:
        >>> quantize([0.1, 0.26], Tempo(120.0), "1/8", strength=0.5).round(3).tolist()
        [0.05, 0.255]
    """
    strength = _check_unit("quantise strength", strength)
    swing = _check_unit("swing", swing, 0.99)
    t = np.asarray(times_s, dtype=np.float64)
    if t.size == 0:
        return t.copy()
    step = grid_step_s(tempo, grid, triplet)
    rel = (t - tempo.downbeat_s) / step
    best = np.full(t.shape, np.inf)
    target = t.copy()
    # the nearest swung grid point is one of the straight neighbours k-1..k+1 after the shift
    base = np.floor(rel).astype(np.int64)
    for dk in (-1, 0, 1, 2):
        k = base + dk
        g = tempo.downbeat_s + k * step + (k % 2 == 1) * (swing * step / 2.0)
        d = np.abs(g - t)
        better = d < best
        best[better] = d[better]
        target[better] = g[better]
    out = t + strength * (target - t)
    return np.maximum(out, 0.0)


def _onset_envelope(times: np.ndarray, weights: np.ndarray, length_s: float) -> np.ndarray:
    n = int(math.ceil(length_s * _ENVELOPE_RATE)) + 4
    env = np.zeros(n)
    idx = np.clip(np.round(times * _ENVELOPE_RATE).astype(np.int64), 0, n - 1)
    np.add.at(env, idx, weights)
    # smear by a small Gaussian (+-10 ms) so slightly off-grid hits still line up
    kern = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
    return np.convolve(env, kern, mode="same")


def estimate_tempo(
    hits: "Mapping[str, Iterable]",
    *,
    duration_s: float | None = None,
    min_bpm: float = MIN_BPM,
    max_bpm: float = MAX_BPM,
    beats_per_bar: int = 4,
) -> Tempo:
    """Estimate BPM and downbeat from hits.

    Autocorrelation of a velocity-weighted onset envelope picks the beat period (with a mild
    preference for 90..150 BPM against octave errors), then the beat phase that collects the most
    hits, then the bar phase where kicks fall most.

    Args:
        hits: per class symbol, an iterable of objects with ``time_s`` and ``velocity`` (or plain times).
        duration_s: the audio's length; defaults to the last hit + 1 s.
        beats_per_bar: the metre whose bar phase is looked for (the estimate does not guess it).

    Returns:
        a :class:`Tempo` with ``estimated=True``; :data:`DEFAULT_BPM` at the first hit when there
        are fewer than 4 hits.
    """
    times, weights, kick_l = _hit_arrays(hits)
    if times.size < 4:
        first = float(times.min()) if times.size else 0.0
        return Tempo(DEFAULT_BPM, first, beats_per_bar, True)
    length_s = float(duration_s) if duration_s else float(times.max()) + 1.0
    env = _onset_envelope(times, weights, max(length_s, float(times.max()) + 0.1))
    env = env - env.mean()
    n = env.size
    fft_n = 1 << int(math.ceil(math.log2(2 * n)))
    spec = np.fft.rfft(env, fft_n)
    ac = np.fft.irfft(spec * np.conj(spec), fft_n)[:n]
    lag_min = int(math.floor(60.0 / max_bpm * _ENVELOPE_RATE))
    lag_max = min(int(math.ceil(60.0 / min_bpm * _ENVELOPE_RATE)), n - 2)
    if lag_max <= lag_min + 2:
        return Tempo(DEFAULT_BPM, float(times.min()), beats_per_bar, True)
    lags = np.arange(lag_min, lag_max + 1)
    # a beat period also shows at 2x and 4x the lag: sum those to favour the true beat
    score = ac[lags].copy()
    for mult, w in ((2, 0.5), (4, 0.25)):
        ok = lags * mult < n
        score[ok] += w * ac[lags[ok] * mult]
    bpm_at = 60.0 * _ENVELOPE_RATE / lags
    prior = np.exp(-0.5 * (np.log2(bpm_at / 120.0) / 0.6) ** 2)
    score = score * prior
    i = int(np.argmax(score))
    lag = float(lags[i])
    if 0 < i < len(lags) - 1:  # parabolic refinement
        a, b, c = score[i - 1], score[i], score[i + 1]
        den = a - 2 * b + c
        if den < 0:
            lag += 0.5 * (a - c) / den
    beat_s = lag / _ENVELOPE_RATE
    # refine the period by least squares of hit times on the beat lattice
    phase = _best_phase(times, weights, beat_s)
    k = np.round((times - phase) / beat_s)
    near = np.abs(times - phase - k * beat_s) < 0.15 * beat_s
    if near.sum() >= 4 and np.ptp(k[near]) > 0:
        slope, intercept = np.polyfit(k[near], times[near], 1, w=weights[near])
        if 0.9 * beat_s < slope < 1.1 * beat_s:
            beat_s, phase = float(slope), float(intercept)
    bpm = float(np.clip(60.0 / beat_s, min_bpm, max_bpm))
    beat_s = 60.0 / bpm
    phase = phase % beat_s
    downbeat = _bar_phase(times, weights, kick_l, phase, beat_s, beats_per_bar)
    return Tempo(round(bpm, 3), round(downbeat, 6), beats_per_bar, True)


def _bar_phase(times: np.ndarray, weights: np.ndarray, kick_l: list[float], phase: float, beat_s: float,
               beats_per_bar: int) -> float:
    """The downbeat: of the bar's beats (from ``phase``), the one where kicks land most (all hits
    when there are no kicks), moved back to the first bar that starts at or before the first hit."""
    bar_s = beats_per_bar * beat_s
    kicks = np.asarray(kick_l) if kick_l else times
    kick_w = np.ones(kicks.size) if kick_l else weights
    best_b, best_score = 0, -1.0
    for b in range(beats_per_bar):
        bar_phase = phase + b * beat_s
        kk = (kicks - bar_phase) / bar_s
        s = float((kick_w * (np.abs(kk - np.round(kk)) * bar_s < 0.1 * beat_s)).sum())
        if s > best_score + 1e-9:
            best_b, best_score = b, s
    downbeat = phase + best_b * beat_s
    first = float(times.min())
    while downbeat - bar_s >= 0 and downbeat > first + 1e-9:
        downbeat -= bar_s
    return max(float(downbeat), 0.0)


def _hit_arrays(hits: "Mapping[str, Iterable]") -> tuple[np.ndarray, np.ndarray, list[float]]:
    times_l: list[float] = []
    weights_l: list[float] = []
    kick_l: list[float] = []
    for cls, items in hits.items():
        w_cls = 1.5 if cls in ("KD", "SD") else 1.0
        for h in items:
            t = float(getattr(h, "time_s", h))
            v = float(getattr(h, "velocity", 1.0))
            times_l.append(t)
            weights_l.append(w_cls * (0.25 + v))
            if cls == "KD":
                kick_l.append(t)
    return np.asarray(times_l), np.asarray(weights_l), kick_l


def song_tempo(transcription, tempo: "Tempo | None" = None, *, bpm: float | None = None,
               beats_per_bar: int | None = None) -> Tempo:
    """The tempo to write with ``transcription``: every MIDI file the project writes goes through this.

    ``tempo`` (a session's, estimated or edited by the user) is used as it is; ``bpm`` (a tempo the
    user typed, with no downbeat) counts bars from 0 s; with neither, the tempo and downbeat are
    estimated from the hits (:func:`estimate_tempo`). ``beats_per_bar`` sets the metre of the last two.
    """
    if tempo is not None:
        if not isinstance(tempo, Tempo):
            raise IdmError(f"expected a Tempo, got {type(tempo).__name__}")
        return tempo
    bar = 4 if beats_per_bar is None else beats_per_bar
    if bpm is not None:
        return Tempo(float(bpm), 0.0, bar, False)
    return estimate_tempo(transcription.hits, duration_s=transcription.duration_s or None, beats_per_bar=bar)


def _best_phase(times: np.ndarray, weights: np.ndarray, beat_s: float) -> float:
    """The beat phase (s, 0..beat_s) that the weighted hits agree on (circular mean)."""
    ang = 2 * np.pi * (times % beat_s) / beat_s
    z = np.sum(weights * np.exp(1j * ang))
    return float((np.angle(z) % (2 * np.pi)) / (2 * np.pi) * beat_s)
