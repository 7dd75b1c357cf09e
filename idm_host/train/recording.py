"""A kit heard the way it is recorded and mixed: the mixture augmentation of transcriber training.

Input: per-class dry stems ``[K, n]`` (close mics). :func:`record` returns the mono mixture a
listener would get after, each with its own probability (recorded in ``meta``):

1. per-class levels (+-6 dB) and close-mic EQ;
2. **bleed**: every close mic picks up the other drums a little later and duller (-32..-14 dB,
   0.5..4 ms, low-passed), so each drum also sounds through the other mics;
3. an **overhead/room pair** that picks up every drum (cymbals and hats at full level, shells
   lower, high-passed), with early reflections; sometimes cymbals are heard only through it;
4. a **room** (pedalboard ``Reverb``) on the sum;
5. **bus processing**: compression, saturation (tanh), EQ (shelves and a peak), band limiting;
6. the **residue a stem separator leaves**: bass, chords and plucks from a small synthesiser and
   a noise floor, 15..40 dB under the drums;
7. level: peak-normalised, then a random gain.

Onsets never move: every delay added here is under 5 ms except reverberation tails.
"""
from __future__ import annotations

from typing import Any, Sequence, cast

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from ..classes import group_of
from ..drumsynth import highpass, lowpass
from ..levels import db_to_gain

SR = MODEL_SAMPLE_RATE


def _board(plugins: list[Any], x: np.ndarray) -> np.ndarray:
    from pedalboard import Pedalboard

    return Pedalboard(plugins)(np.ascontiguousarray(x[None, :], dtype=np.float32), SR)[0]


def _random_eq(rng: np.random.Generator, strength: float = 1.0) -> list[Any]:
    from pedalboard import HighShelfFilter, LowShelfFilter, PeakFilter

    return [
        LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(60, 300)), gain_db=float(rng.uniform(-6, 6) * strength)),
        PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(200), np.log(8000)))),
                   gain_db=float(rng.uniform(-8, 8) * strength), q=float(rng.uniform(0.5, 3.0))),
        HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(3000, 10000)), gain_db=float(rng.uniform(-8, 6) * strength)),
    ]


def _delay(x: np.ndarray, samples: int) -> np.ndarray:
    if samples <= 0:
        return x
    out = np.zeros_like(x)
    out[samples:] = x[:-samples]
    return out


def bleed(stems: np.ndarray, rng: np.random.Generator, level_db: tuple[float, float] = (-32.0, -14.0)
          ) -> tuple[np.ndarray, dict[str, Any]]:
    """What the other close mics add for each drum: ``sum_k g_k * lowpass(delay(stem_k))``.

    Returns the bleed signal (to be added to the mixture) and its settings.
    """
    k: int
    n: int
    k, n = stems.shape
    gains = db_to_gain(rng.uniform(*level_db, size=k))
    delays = rng.integers(int(0.0005 * SR), int(0.004 * SR), size=k)
    cutoff = float(rng.uniform(2000, 8000))
    out = np.zeros(n, dtype=np.float32)
    for i in range(k):
        if np.any(stems[i]):
            out += np.float32(gains[i]) * _delay(stems[i], int(delays[i]))
    out = lowpass(out, cutoff)
    return out, {"gains_db": [round(float(20 * np.log10(g)), 2) for g in gains], "cutoff_hz": round(cutoff, 1)}


def overheads(stems: np.ndarray, classes: Sequence[str], rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A mono overhead/room pair: cymbals and hats at full level, shells 4..16 dB lower, high-passed,
    with a few early reflections (1..25 ms)."""
    k: int
    n: int
    k, n = stems.shape
    weights = np.array([1.0 if group_of(c) in ("CY", "HH") else db_to_gain(-rng.uniform(4, 16)) for c in classes],
                       dtype=np.float32)
    x = (stems * weights[:, None]).sum(0)
    hp = float(rng.uniform(80, 600))
    x = highpass(x, hp)
    out = x.copy()
    taps = []
    for _ in range(int(rng.integers(2, 7))):
        d = int(rng.uniform(0.001, 0.025) * SR)
        g = float(rng.uniform(0.1, 0.5)) * (1 if rng.random() < 0.7 else -1)
        out += np.float32(g) * _delay(x, d)
        taps.append((d, round(g, 3)))
    return out.astype(np.float32), {"highpass_hz": round(hp, 1), "taps": taps}


def residue(n: int, rng: np.random.Generator) -> np.ndarray:
    """Other instruments a separator leaves in a drum stem: bass line, chords or plucks, unit RMS."""
    t = np.arange(n) / SR
    out = np.zeros(n, dtype=np.float64)
    note_s = float(rng.uniform(0.15, 0.8))
    start = 0.0
    while start < n / SR:
        length = note_s * float(rng.choice([0.5, 1, 1, 2]))
        a, b = int(start * SR), min(n, int((start + length) * SR))
        if b > a:
            tt = t[a:b] - start
            kind = rng.integers(3)
            if kind == 0:  # bass
                f = 40 * 2 ** (rng.integers(0, 24) / 12)
                sig = np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt)
                env = np.minimum(1, tt / 0.01) * np.exp(-tt / rng.uniform(0.2, 1.0))
            elif kind == 1:  # chord pad (three saws, slow attack)
                root = 110 * 2 ** (rng.integers(0, 24) / 12)
                sig = cast(np.ndarray, sum(2 * ((root * r * tt) % 1.0) - 1 for r in (1.0, 1.26, 1.5)))
                env = np.minimum(1, tt / rng.uniform(0.02, 0.2))
            else:  # pluck
                f = 220 * 2 ** (rng.integers(0, 24) / 12)
                sig = np.sign(np.sin(2 * np.pi * f * tt)) * 0.5 + np.sin(2 * np.pi * 2 * f * tt)
                env = np.exp(-tt / rng.uniform(0.05, 0.4))
            out[a:b] += sig * env
        start += length
    out = lowpass(out.astype(np.float32), float(rng.uniform(1500, 8000)))
    rms = float(np.sqrt(np.mean(out ** 2))) + 1e-9
    return (out / rms).astype(np.float32)


def record(stems: np.ndarray, classes: Sequence[str], rng: np.random.Generator, *, strength: float = 1.0
           ) -> tuple[np.ndarray, dict[str, Any]]:
    """The mono mixture of ``stems`` recorded and mixed at random (module docstring); ``strength``
    0 gives the plain sum (levels only), 1 the full augmentation."""
    from pedalboard import Compressor, Reverb

    k: int
    n: int
    k, n = stems.shape
    meta: dict[str, Any] = {}
    p = strength
    stems = stems * db_to_gain(rng.uniform(-6, 6, size=k)).astype(np.float32)[:, None]
    if rng.random() < 0.3 * p:
        for i in np.flatnonzero(np.abs(stems).max(1) > 0):
            stems[i] = _board(_random_eq(rng, 0.7), stems[i])
        meta["close_eq"] = True
    close = stems.copy()
    if rng.random() < 0.25 * p:  # cymbals heard through the overheads only
        for j, c in enumerate(classes):
            if group_of(c) == "CY":
                close[j] = 0.0
        meta["cymbals_overhead_only"] = True
    mix = close.sum(0)
    drum_rms = float(np.sqrt(np.mean(mix ** 2))) + 1e-9
    if rng.random() < 0.5 * p:
        b, meta["bleed"] = bleed(stems, rng)
        mix = mix + b
    if rng.random() < 0.6 * p or meta.get("cymbals_overhead_only"):
        oh, meta["overheads"] = overheads(stems, classes, rng)
        oh_rms = float(np.sqrt(np.mean(oh ** 2))) + 1e-9
        level = db_to_gain(rng.uniform(-8, 4)) * drum_rms / oh_rms
        mix = mix + np.float32(level) * oh
    if rng.random() < 0.4 * p:
        wet = float(rng.uniform(0.05, 0.35))
        room = {"room_size": float(rng.uniform(0.05, 0.7)), "damping": float(rng.uniform(0.2, 0.9)),
                "wet_level": wet, "dry_level": 1.0 - wet * 0.5, "width": 0.0}
        mix = _board([Reverb(**room)], mix)
        meta["room"] = room
    if rng.random() < 0.4 * p:
        peak = float(np.abs(mix).max()) + 1e-9
        comp = {"threshold_db": float(20 * np.log10(peak) - rng.uniform(3, 18)), "ratio": float(rng.uniform(2, 10)),
                "attack_ms": float(rng.uniform(0.5, 30)), "release_ms": float(rng.uniform(30, 300))}
        mix = _board([Compressor(**comp)], mix)
        meta["bus_compressor"] = comp
    if rng.random() < 0.25 * p:
        drive = float(rng.uniform(1.5, 6.0))
        peak = float(np.abs(mix).max()) + 1e-9
        mix = (np.tanh(drive * mix / peak) / np.tanh(drive) * peak).astype(np.float32)
        meta["saturation_drive"] = drive
    if rng.random() < 0.5 * p:
        mix = _board(_random_eq(rng), mix)
        meta["bus_eq"] = True
    if rng.random() < 0.3 * p:
        r = residue(n, rng)
        db = float(rng.uniform(-40, -15))
        mix = mix + np.float32(db_to_gain(db) * drum_rms) * r
        meta["residue_db"] = round(db, 2)
    if rng.random() < 0.3 * p:
        db = float(rng.uniform(-70, -40))
        mix = mix + np.float32(db_to_gain(db)) * rng.standard_normal(n).astype(np.float32)
        meta["noise_db"] = round(db, 2)
    if rng.random() < 0.1 * p:
        cut = float(rng.uniform(8000, 16000))
        mix = lowpass(lowpass(mix, cut), cut)
        meta["band_limit_hz"] = round(cut, 1)
    peak = float(np.abs(mix).max())
    if peak > 1e-9:
        mix = mix * np.float32(0.9 / peak)
    if rng.random() < 0.8:
        g = float(rng.uniform(0.1, 1.0))
        mix = mix * np.float32(g)
        meta["gain"] = round(g, 4)
    return mix.astype(np.float32), meta
