"""Tempo-grid arithmetic for the editor: grid steps, snapping, quantising (pure numpy, no Qt)."""
from __future__ import annotations

import numpy as np

BEATS_PER_BAR = 4
#: Grid divisions the editor offers: label -> subdivisions per beat (a beat is a quarter note).
DIVISIONS: dict[str, int] = {"1/4": 1, "1/8": 2, "1/8T": 3, "1/16": 4, "1/16T": 6, "1/32": 8}
DEFAULT_DIVISION = "1/16"


def beat_s(bpm: float) -> float:
    """Seconds per beat at ``bpm``."""
    return 60.0 / max(float(bpm), 1e-6)


def step_s(bpm: float, division: str | int) -> float:
    """Seconds per grid step for a division label (``"1/16"``) or subdivisions per beat."""
    per_beat = DIVISIONS[division] if isinstance(division, str) else int(division)
    return beat_s(bpm) / per_beat


def _nearest(times_s: np.ndarray, step: float, downbeat_s: float) -> np.ndarray:
    return downbeat_s + np.round((times_s - downbeat_s) / step) * step


def snap(time_s: float | np.ndarray, step: float, downbeat_s: float = 0.0) -> float | np.ndarray:
    """The grid line nearest ``time_s`` (grid lines at ``downbeat_s + k * step``), clipped at 0 s."""
    t = np.asarray(time_s, dtype=np.float64)
    out = np.maximum(_nearest(t, step, downbeat_s), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def quantise(times_s: np.ndarray, step: float, downbeat_s: float = 0.0, strength: float = 1.0) -> np.ndarray:
    """Move each time ``strength`` (0..1) of the way to its nearest grid line (clipped at 0 s), as
    :func:`idm_host.tempo.quantize` does without swing."""
    times = np.asarray(times_s, dtype=np.float64)
    strength = min(max(float(strength), 0.0), 1.0)
    return np.maximum(times + strength * (_nearest(times, step, downbeat_s) - times), 0.0)


def grid_lines(start_s: float, end_s: float, bpm: float, downbeat_s: float, per_beat: int,
               min_px: float, px_per_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid line times in ``[start_s, end_s]`` and their rank (2 = bar, 1 = beat, 0 = sub-beat).

    Divisions too dense to draw (closer than ``min_px`` pixels) are coarsened: sub-beats, then beats,
    then whole bars by powers of two.
    """
    beat = beat_s(bpm)
    step = beat / per_beat
    per_bar = BEATS_PER_BAR * per_beat
    while step * px_per_s < min_px and per_beat > 1:
        per_beat = 1
        step = beat
        per_bar = BEATS_PER_BAR
    bars_per_line = 1
    if step * px_per_s < min_px:
        step = beat * BEATS_PER_BAR
        per_bar = 1
        while step * bars_per_line * px_per_s < min_px:
            bars_per_line *= 2
        step *= bars_per_line
    k0 = int(np.floor((start_s - downbeat_s) / step))
    k1 = int(np.ceil((end_s - downbeat_s) / step))
    k = np.arange(k0, k1 + 1)
    times = downbeat_s + k * step
    if per_bar == 1:
        rank = np.full(k.shape, 2, dtype=np.int8)
    else:
        per_beat_now = per_bar // BEATS_PER_BAR
        rank = np.where(k % per_bar == 0, 2, np.where(k % per_beat_now == 0, 1, 0)).astype(np.int8)
    return times, rank


def bar_beat(time_s: float, bpm: float, downbeat_s: float) -> tuple[int, float]:
    """1-based bar number and 1-based beat (fractional) of ``time_s``."""
    beats = (time_s - downbeat_s) / beat_s(bpm)
    bar = int(np.floor(beats / BEATS_PER_BAR))
    return bar + 1, beats - bar * BEATS_PER_BAR + 1
