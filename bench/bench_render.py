"""Re-rendering: a 3-minute session with a replaced kit and an effect chain on every class; a 10 s single-class audition.

Targets (issue 4): full re-render <= 1.5 s on 2 CPU cores; single-class 10 s audition <= 100 ms.
The session is built directly (no model): a 120 BPM groove on all 9 classes with the synth-electro kit.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "unit"))

FX = {"KD": "tight-kick", "SD": "fat-snare", "HH_CHH": "hat-air", "HH_OHH": "hat-air", "CY_CR": "hat-air",
      "CY_RD": "hat-air", "TT_HFT": "tom-boom", "TT_HMT": "tom-boom", "TT_LMT": "tom-boom"}


def _groove(duration_s: float) -> dict:
    beat = 0.5
    n_beats = int(duration_s / beat)
    rng = np.random.default_rng(0)
    hits = {
        "KD": [(i * beat, 0.9) for i in range(0, n_beats, 2)] + [(i * beat + 0.75, 0.6) for i in range(0, n_beats - 2, 8)],
        "SD": [(i * beat, 0.8) for i in range(1, n_beats, 2)],
        "HH_CHH": [(i * beat / 2, float(rng.uniform(0.3, 0.8))) for i in range(2 * n_beats) if i % 8 != 7],
        "HH_OHH": [(i * beat / 2, 0.6) for i in range(7, 2 * n_beats, 8)],
        "CY_CR": [(i * beat, 1.0) for i in range(0, n_beats, 32)],
        "CY_RD": [(i * beat, 0.5) for i in range(0, n_beats, 1) if (i // 16) % 4 == 3],
        "TT_HFT": [(i * beat + 0.25, 0.7) for i in range(15, n_beats, 16)],
        "TT_HMT": [(i * beat, 0.7) for i in range(15, n_beats, 16)],
        "TT_LMT": [(i * beat + 0.125, 0.7) for i in range(15, n_beats, 16)],
    }
    return {c: [(t, v) for t, v in hs if t < duration_s - 0.01] for c, hs in hits.items()}


def _session(duration_s: float):
    from sessionkit import make_analysis

    from idm_host.kit_presets import kit_command
    from idm_host.session import Compound, Session, SetEffects

    s = Session.from_analysis(make_analysis(duration_s=duration_s, hits=_groove(duration_s)), keep_stems=False)
    s.apply(kit_command(s, "synth-electro"))
    s.apply(Compound([SetEffects(c, p) for c, p in FX.items()], "fx"))
    return s


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _cpu(fn) -> float:
    """CPU seconds (all threads of this process) of one call: what the work costs without contention."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return ""


def run() -> list[dict]:
    from idm_host.render import render

    s = _session(180.0)
    n_hits = sum(len(h) for h in s.hits.values())
    render(s, channels=2)  # warm-up (imports, plugin libraries)
    full = _best(lambda: render(s, channels=2), 3)
    full_1 = _best(lambda: render(s, channels=2, workers=1), 2)
    cpu_1 = _cpu(lambda: render(s, channels=2, workers=1))
    dry = _best(lambda: render(s, channels=2, effects=False), 3)
    aud = _best(lambda: render(s, classes=["SD"], start_s=60.0, end_s=70.0, channels=2), 10)
    aud_hh = _best(lambda: render(s, classes=["HH_CHH"], start_s=60.0, end_s=70.0, channels=2), 10)
    cores = os.cpu_count()
    return [
        {"name": f"re-render 3 min, 9 classes, kit + fx chain per class ({n_hits} hits, stereo)", "value": round(full, 3),
         "unit": "s", "target": "<= 1.5 s", "ok": full <= 1.5,
         "note": f"{cores} cores, class chains on threads; best of 3; {_load()} while measured"},
        {"name": "same, one thread", "value": round(full_1, 3), "unit": "s", "target": "", "ok": None, "note": "best of 2"},
        {"name": "same, one thread: CPU time", "value": round(cpu_1, 3), "unit": "s", "target": "", "ok": None,
         "note": "process CPU seconds: the wall time on an otherwise idle core"},
        {"name": "same without effects (hits x kit, pan, sum)", "value": round(dry, 3), "unit": "s", "target": "",
         "ok": None, "note": ""},
        {"name": "audition: snare, 10 s window, with its fx chain", "value": round(aud * 1000, 1), "unit": "ms",
         "target": "<= 100 ms", "ok": aud <= 0.1, "note": "best of 10"},
        {"name": "audition: closed hat, 10 s window, with its fx chain", "value": round(aud_hh * 1000, 1), "unit": "ms",
         "target": "<= 100 ms", "ok": aud_hh <= 0.1, "note": "best of 10"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
