"""Builders for session/render tests: an Analysis made directly (no model), with known one-shots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from idm_host.classes import IDM_CLASSES
from idm_host.types import Analysis, Audio, Hit, Kit, Stems, Transcription

SR = 44100


def one_shots(n: int = 4410, seed: int = 0) -> np.ndarray:
    """(9, n) decaying noise one-shots, different per class."""
    rng = np.random.default_rng(seed)
    env = np.exp(-30.0 * np.arange(n) / SR)
    return (rng.standard_normal((len(IDM_CLASSES), n)) * env * 0.5).astype(np.float32)


def make_analysis(duration_s: float = 4.0, *, seed: int = 0, source: Path | None = None,
                  channels: int = 1, hits: dict | None = None) -> Analysis:
    """An Analysis with a simple 120 BPM pattern, random one-shots and stems = synthetic stems."""
    n = int(round(duration_s * SR))
    if hits is None:
        beat = 0.5
        hits = {
            "KD": [(i * 2 * beat, 0.9) for i in range(int(duration_s / (2 * beat)))],
            "SD": [(beat + i * 2 * beat, 0.7) for i in range(int((duration_s - beat) / (2 * beat)))],
            "HH_CHH": [(i * beat / 2, 0.4 + 0.1 * (i % 3)) for i in range(int(duration_s / (beat / 2)))],
            "HH_OHH": [(1.75, 0.6)],
            "CY_CR": [(0.0, 1.0)],
        }
    tr = Transcription(IDM_CLASSES, {c: tuple(Hit(t, v) for t, v in hs) for c, hs in hits.items()}, duration_s)
    shots = one_shots(seed=seed)
    gains = np.linspace(0.5, 1.5, len(IDM_CLASSES)).astype(np.float32)
    kit = Kit(IDM_CLASSES, shots, SR, gains, 2.0)  # the engine's convention: amplitude 2 * gain * velocity
    stems = np.zeros((len(IDM_CLASSES), channels, n), dtype=np.float32)
    for k, c in enumerate(IDM_CLASSES):
        for h in tr.hits[c]:
            i = int(round(h.time_s * SR))
            m = min(shots.shape[1], n - i)
            if m > 0:
                stems[k, :, i:i + m] += 2.0 * gains[k] * h.velocity * shots[k, :m]
    rng = np.random.default_rng(seed + 1)
    residual = (0.01 * rng.standard_normal((channels, n))).astype(np.float32)
    mix = stems.sum(0) + residual
    audio = Audio(mix, SR, source, None)
    return Analysis(tr, kit, Stems(IDM_CLASSES, stems, residual, SR), gains, np.ones(6, np.float32) / 6,
                    "test", audio)
