"""``make demo``: separate the bundled example loop (made by this module's own synthesiser).

``python -m idm_host.demo --out demo-out`` makes sure a model is available (the official weights are
imported from ``$IDM_HOST_REFERENCE`` or ../shared/reference when they are there and nothing else is
installed), then writes stems, onsets.json, transcription.mid and the kit for
``examples/drum-loop.flac`` into ``--out``. ``python tools/make_assets.py example`` re-renders that file.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .audio import save_audio

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "drum-loop.flac"
SR = 44100


# ---------------------------------------------------------------------------- a tiny drum synth
def _env(n: int, decay_per_s: float, attack_s: float = 0.001) -> np.ndarray:
    t = np.arange(n) / SR
    return (np.minimum(1.0, t / attack_s) * np.exp(-decay_per_s * t)).astype(np.float32)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def _highpass(x: np.ndarray, coef: float = 0.95) -> np.ndarray:
    y = np.empty_like(x)
    prev_x = prev_y = 0.0
    for i, v in enumerate(x):  # one-pole high-pass; short signals only
        prev_y = coef * (prev_y + v - prev_x)
        prev_x = v
        y[i] = prev_y
    return y


def one_shots(seed: int = 7) -> dict[str, np.ndarray]:
    """Synthesised acoustic-ish one-shots for the 9 model classes (float32, 44.1 kHz, mono)."""
    rng = np.random.default_rng(seed)
    n = SR
    t = np.arange(n) / SR
    kick_f = 45 + 110 * np.exp(-t * 30)
    kick = np.sin(2 * np.pi * np.cumsum(kick_f) / SR).astype(np.float32) * _env(n, 9)
    kick += 0.3 * _noise(n, rng) * _env(n, 300)
    snare = 0.55 * _noise(n, rng) * _env(n, 22) + 0.5 * np.sin(2 * np.pi * 190 * t).astype(np.float32) * _env(n, 30)
    hh_n = 4000
    hat = _highpass(_noise(hh_n, rng), 0.6)
    closed = np.zeros(n, np.float32)
    closed[:hh_n] = 0.6 * hat * _env(hh_n, 60)
    open_ = np.zeros(n, np.float32)
    open_n = 30000
    open_[:open_n] = 0.5 * _highpass(_noise(open_n, rng), 0.6) * _env(open_n, 7)

    def tom(freq: float) -> np.ndarray:
        f = freq * (1 + 0.3 * np.exp(-t * 20))
        return (0.8 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32) * _env(n, 7) + 0.1 * _noise(n, rng) * _env(n, 80)

    crash = 0.45 * _highpass(_noise(n, rng), 0.5) * _env(n, 2.5)
    ride_ping = (0.25 * np.sin(2 * np.pi * 3100 * t) + 0.2 * np.sin(2 * np.pi * 4700 * t)).astype(np.float32)
    ride = (0.25 * _highpass(_noise(n, rng), 0.7) + ride_ping) * _env(n, 4)
    shots = {
        "KD": kick, "SD": snare, "HH_CHH": closed, "HH_OHH": open_, "TT_HMT": tom(210), "TT_LMT": tom(150),
        "TT_HFT": tom(95), "CY_CR": crash, "CY_RD": ride,
    }
    return {k: (0.9 * v / np.abs(v).max()).astype(np.float32) for k, v in shots.items()}


def pattern(bars: int = 4, bpm: float = 100.0, seed: int = 3) -> dict[str, list[tuple[float, float]]]:
    """A rock groove with a tom fill and crashes: ``{class: [(time_s, velocity), ...]}``."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    six = beat / 4
    hits: dict[str, list[tuple[float, float]]] = {c: [] for c in one_shots()}

    def add(c: str, t: float, v: float) -> None:
        hits[c].append((max(0.0, t + rng.normal(0, 0.003)), float(np.clip(v + rng.normal(0, 0.05), 0.1, 1.0))))

    for bar in range(bars):
        t0 = bar * 4 * beat
        fill = bar == bars - 1
        for s in range(16):
            t = t0 + s * six
            if fill and s >= 8:
                drum = ("TT_HMT", "TT_HMT", "TT_LMT", "TT_LMT", "TT_HFT", "TT_HFT", "SD", "SD")[s - 8]
                add(drum, t, 0.85)
                continue
            if s % 2 == 0:
                add("HH_OHH" if (s == 14 and bar % 2 == 1) else ("CY_RD" if bar == 2 else "HH_CHH"), t,
                    0.8 if s % 4 == 0 else 0.55)
            if s in (0, 6, 10) or (s == 11 and bar % 2 == 0):
                add("KD", t, 0.95)
            if s in (4, 12):
                add("SD", t, 0.9)
            if s == 7 and bar % 2 == 0:
                add("SD", t, 0.25)  # ghost note
        if bar == 0:
            add("CY_CR", t0, 0.9)
    add("CY_CR", bars * 4 * beat, 0.95)
    add("KD", bars * 4 * beat, 0.95)
    return hits


def render_loop(bars: int = 4, bpm: float = 100.0, *, tail_s: float = 1.5) -> np.ndarray:
    """The example loop, stereo float32 ``(2, frames)``: the kit panned like a drummer's view."""
    shots = one_shots()
    pans = {"KD": 0.0, "SD": -0.05, "HH_CHH": -0.35, "HH_OHH": -0.35, "TT_HMT": -0.2, "TT_LMT": 0.15,
            "TT_HFT": 0.4, "CY_CR": -0.5, "CY_RD": 0.5}
    hits = pattern(bars, bpm)
    n = int((bars * 4 * 60.0 / bpm + tail_s) * SR)
    out = np.zeros((2, n), np.float32)
    for c, items in hits.items():
        left, right = np.cos((pans[c] + 1) * np.pi / 4), np.sin((pans[c] + 1) * np.pi / 4)
        for t, v in items:
            a = int(round(t * SR))
            seg = shots[c][: max(0, n - a)] * v
            out[0, a:a + seg.size] += left * seg
            out[1, a:a + seg.size] += right * seg
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def make_example_loop(path: str | os.PathLike, *, duration_s: float | None = None,
                      overwrite: bool = True) -> Path:
    """Write the example loop (4 bars at 100 BPM, or as many bars as fit ``duration_s``)."""
    bars = 4 if duration_s is None else max(1, int(duration_s / 2.4))
    return save_audio(path, render_loop(bars), SR, bit_depth=16 if str(path).endswith(".flac") else 24,
                      overwrite=overwrite)


# ---------------------------------------------------------------------------- the demo
def ensure_model() -> str:
    """A usable model name: the default if it resolves, else the official weights imported from the
    reference folder when present."""
    from .errors import ModelError
    from .installs import import_official
    from .models import model_path

    try:
        model_path("default")
        return "default"
    except ModelError as missing:
        ref = Path(os.environ.get("IDM_HOST_REFERENCE") or REPO.parent / "shared" / "reference")
        ckpt = ref / "idm-44-train-kits.ckpt"
        if ckpt.exists():
            info = import_official(ckpt)
            print(f"imported the official weights from {ckpt} -> {info.path}", file=sys.stderr)
            return "default"
        raise missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m idm_host.demo", description=__doc__)
    ap.add_argument("--out", default="demo-out")
    args = ap.parse_args(argv)
    from .cli import main as cli_main

    try:
        ensure_model()
    except Exception as exc:  # a clear line, not a traceback
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    return cli_main(["separate", str(EXAMPLE), "--out", args.out, "--overwrite"])


if __name__ == "__main__":
    sys.exit(main())
