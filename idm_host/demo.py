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
from .drumsynth import SAMPLE_RATE, envelope, finish, highpass, noise, partials, pole_hz, sweep, time_axis

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "drum-loop.flac"
SR = SAMPLE_RATE


# ---------------------------------------------------------------------------- a tiny drum synth
# Recipes over idm_host.drumsynth. The decays are time constants written as 1 / rate and the
# high-passes as poles (drumsynth.pole_hz), the way this kit was first made, so that the example
# loop stays the committed examples/drum-loop.flac.
_ATTACK_S = 0.001


def one_shots(seed: int = 7) -> dict[str, np.ndarray]:
    """Synthesised acoustic-ish one-shots for the 9 model classes (float32, 44.1 kHz, mono)."""
    rng = np.random.default_rng(seed)
    t = time_axis(1.0)
    a = _ATTACK_S
    kick = sweep(t, 155.0, 45.0, 1 / 30) * envelope(t, 1 / 9, a) + 0.3 * noise(rng, t) * envelope(t, 1 / 300, a)
    snare = 0.55 * noise(rng, t) * envelope(t, 1 / 22, a) + partials(t, (190.0,), (0.5,), (1 / 30,), attack_s=a)
    hat_t = t[:4000]
    closed = np.zeros(t.size)
    closed[:hat_t.size] = 0.6 * highpass(noise(rng, hat_t), pole_hz(0.6)) * envelope(hat_t, 1 / 60, a)
    open_t = t[:30000]
    open_ = np.zeros(t.size)
    open_[:open_t.size] = 0.5 * highpass(noise(rng, open_t), pole_hz(0.6)) * envelope(open_t, 1 / 7, a)

    def tom(freq: float) -> np.ndarray:
        body = 0.8 * sweep(t, 1.3 * freq, freq, 1 / 20) * envelope(t, 1 / 7, a)
        return body + 0.1 * noise(rng, t) * envelope(t, 1 / 80, a)

    crash = 0.45 * highpass(noise(rng, t), pole_hz(0.5)) * envelope(t, 1 / 2.5, a)
    ping = partials(t, (3100.0, 4700.0), (0.25, 0.2))
    ride = (0.25 * highpass(noise(rng, t), pole_hz(0.7)) + ping) * envelope(t, 1 / 4, a)
    shots = {
        "KD": kick, "SD": snare, "HH_CHH": closed, "HH_OHH": open_, "TT_HMT": tom(210), "TT_LMT": tom(150),
        "TT_HFT": tom(95), "CY_CR": crash, "CY_RD": ride,
    }
    return {k: finish(v, 0.9, fade_s=0.0) for k, v in shots.items()}


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
