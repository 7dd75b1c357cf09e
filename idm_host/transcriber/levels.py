"""Velocities from the recording's own levels: how loud each hit is in its class's band.

The network's velocity head finds a recording's overall dynamics well but follows the hit-to-hit
changes within a recording poorly (correlation .2-.5 for kick and hi-hat within one clip), while
the level of each hit in a band where its drum dominates follows them closely (.7-.95 on dry
clips; MODEL_CARD.md, session 11). :func:`level_velocities` keeps the network's level for the
recording (the median per class) and takes the spread around it partly from the hits' band levels:

    log v = m + (1 - lam) (log v_net - m) + lam gamma (log level - median log level),  m = median log v_net

per class and recording, with ``gamma`` (how velocity grows with level) and ``lam`` (how much of
the spread the levels give) fitted on the validation clips and kept in the calibration.
A level is measured over :data:`WINDOW` samples from :data:`PRE_S` before the hit (a short fade-in,
a half-Hann fade-out), as the root of the band's spectral energy.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .features import SAMPLE_RATE

#: Band (Hz) each class's level is measured in: where that drum dominates a kit's sum.
BANDS: Mapping[str, tuple[float, float]] = {
    "KD": (30.0, 120.0), "SD": (150.0, 400.0), "HH_CHH": (6000.0, 16000.0), "HH_OHH": (6000.0, 16000.0),
    "TT_HFT": (60.0, 300.0), "TT_LMT": (80.0, 400.0), "TT_HMT": (100.0, 500.0),
    "CY_CR": (4000.0, 16000.0), "CY_RD": (3000.0, 12000.0)}
#: A class not named above (another taxonomy) is measured over the whole range.
WIDE_BAND = (30.0, 16000.0)
#: Samples of one level measurement (93 ms at 44.1 kHz) and how long before the hit it starts.
WINDOW = 4096
PRE_S = 0.005
_FADE_IN = 128
#: Hits measured per FFT batch (bounds memory on long files: 512 x 4096 floats).
_BATCH = 512
#: Levels below this (relative to full scale after peak normalisation) count as this: silence
#: must not make a velocity run to 0.
_FLOOR = 1e-5

__all__ = ["BANDS", "hit_levels", "level_velocities"]


def _window() -> np.ndarray:
    w = np.ones(WINDOW, dtype=np.float32)
    w[:_FADE_IN] = np.hanning(2 * _FADE_IN)[:_FADE_IN]
    w[WINDOW // 2:] = np.hanning(WINDOW)[WINDOW // 2:]
    return w


def hit_levels(x: np.ndarray, times_s: Sequence[float], cls: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The level of each hit at ``times_s`` of class ``cls`` in mono ``x``: the root of the energy
    in the class's :data:`BANDS` band over :data:`WINDOW` samples from :data:`PRE_S` before it
    (zero-padded past the ends; float32 FFTs), at least a small floor. ``float64 [len(times_s)]``."""
    t = np.asarray(times_s, dtype=np.float64)
    out = np.zeros(t.size, dtype=np.float64)
    if t.size == 0:
        return out
    lo, hi = BANDS.get(cls, WIDE_BAND)
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / sample_rate)
    band = np.flatnonzero((freqs >= lo) & (freqs < hi))
    b0, b1 = int(band[0]), int(band[-1]) + 1
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    start = np.clip(np.round((t - PRE_S) * sample_rate).astype(np.int64), 0, x.size)
    # windows as views of the audio; those that run past its end come from a zero-padded copy of the end
    cut = max(0, x.size - WINDOW)
    body = torch.from_numpy(x).unfold(0, WINDOW, 1) if x.size >= WINDOW else None
    tail = torch.from_numpy(np.concatenate([x[cut:], np.zeros(WINDOW, dtype=np.float32)])).unfold(0, WINDOW, 1)
    win = torch.from_numpy(_window())
    with torch.inference_mode():
        for b in range(0, t.size, _BATCH):
            st = start[b:b + _BATCH]
            inside = st <= cut if body is not None else np.zeros(st.size, dtype=bool)
            seg = torch.empty((st.size, WINDOW), dtype=torch.float32)
            if body is not None and inside.any():
                seg[torch.from_numpy(inside)] = body[torch.from_numpy(st[inside])]
            if (~inside).any():
                seg[torch.from_numpy(~inside)] = tail[torch.from_numpy(st[~inside] - cut)]
            spec = torch.fft.rfft(seg * win, dim=1)[:, b0:b1]
            out[b:b + _BATCH] = torch.sqrt((spec.real ** 2 + spec.imag ** 2).sum(dim=1)).double().numpy()
    # a unit-amplitude window's energy scales with the window: per sample, so levels read as amplitudes
    return np.maximum(out / np.sqrt(WINDOW), _FLOOR)


def level_velocities(velocities: np.ndarray, levels: np.ndarray, gamma: float, lam: float,
                     floor: float) -> np.ndarray:
    """One class's velocities in one recording (0..1) with their spread around the median partly
    from ``levels`` (:func:`hit_levels`): see the module's formula. The median velocity stays where
    it was; the result lies in ``floor``..1. With ``lam`` 0 the velocities come back unchanged."""
    v = np.asarray(velocities, dtype=np.float64)
    if v.size == 0 or lam <= 0.0:
        return v.copy()
    ln = np.log(np.maximum(v, floor))
    la = np.log(np.maximum(np.asarray(levels, dtype=np.float64), _FLOOR))
    m = float(np.median(ln))
    out = np.exp(m + (1.0 - lam) * (ln - m) + lam * gamma * (la - float(np.median(la))))
    return np.clip(out, floor, 1.0)
