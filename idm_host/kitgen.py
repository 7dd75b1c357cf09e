"""Synthesised drum kits: the one-shots shipped in ``presets/kits/`` are made by this code.

Two kits, all 9 model classes each, 44.1 kHz mono 16-bit WAV, at most 1 s per one-shot:

- ``synth-electro``: analogue-drum-machine style (pitch-swept sine kick, tone+noise snare,
  metallic square-wave hats and cymbals, swept toms).
- ``synth-acoustic``: acoustic-style (beater thump and shell modes for the kick, snare-wire noise,
  inharmonic membrane modes for the toms, dense noisy cymbals).

Everything is deterministic (fixed seeds). Regenerate the shipped ones with
``python tools/make_assets.py kits --overwrite``; ``python -m idm_host.kitgen --out FOLDER`` writes them anywhere.

Example:
    >>> shots = synthesize_kit("synth-electro")
    >>> sorted(shots)[:3], all(x.size <= 44100 for x in shots.values())
    (['CY_CR', 'CY_RD', 'HH_CHH'], True)
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, cast

import numpy as np

from .classes import IDM_CLASSES, class_info
from .errors import IdmError

log = logging.getLogger(__name__)

SR = 44100
KITS = ("synth-electro", "synth-acoustic")
_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # square-wave partials of a classic metal voice


def _t(length_s: float) -> np.ndarray:
    return np.arange(int(round(length_s * SR))) / SR


def _env(t: np.ndarray, decay_s: float, attack_s: float = 0.0005) -> np.ndarray:
    e = np.exp(-t / decay_s)
    if attack_s > 0:
        e *= np.minimum(1.0, t / attack_s)
    return e


def _band(x: np.ndarray, lo_hz: float | None, hi_hz: float | None, order: int = 4) -> np.ndarray:
    """Zero-phase band filter by FFT with smooth (Butterworth-shaped) edges."""
    n = x.size
    f = np.fft.rfftfreq(n, 1.0 / SR)
    g = np.ones_like(f)
    if lo_hz:
        g *= 1.0 / np.sqrt(1.0 + (lo_hz / np.maximum(f, 1e-6)) ** (2 * order))
    if hi_hz:
        g *= 1.0 / np.sqrt(1.0 + (f / hi_hz) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x) * g, n)


def _sweep(t: np.ndarray, f0: float, f1: float, tau_s: float) -> np.ndarray:
    """Sine whose frequency glides from f0 to f1 with time constant tau_s."""
    freq = f1 + (f0 - f1) * np.exp(-t / tau_s)
    return np.sin(2 * np.pi * np.cumsum(freq) / SR)


def _metal(t: np.ndarray, scale: float = 1.0) -> np.ndarray:
    total = cast(np.ndarray, sum(np.sign(np.sin(2 * np.pi * f * scale * t + i)) for i, f in enumerate(_METAL_HZ)))
    return total / len(_METAL_HZ)


def _finish(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    fade = min(x.size, int(0.01 * SR))
    x = x.copy()
    x[-fade:] *= np.linspace(1.0, 0.0, fade)  # end at silence
    m = np.max(np.abs(x))
    return (x * (peak / m) if m > 0 else x).astype(np.float32)


# ------------------------------------------------------------------------------------- electro
def _electro(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    t = _t(0.8)
    click = _band(rng.standard_normal(t.size), 1500, 8000) * _env(t, 0.002)
    out["KD"] = _finish(_sweep(t, 160.0, 48.0, 0.03) * _env(t, 0.35) + 0.3 * click)
    t = _t(0.4)
    tone = 0.6 * np.sin(2 * np.pi * 185 * t) * _env(t, 0.06) + 0.4 * np.sin(2 * np.pi * 330 * t) * _env(t, 0.04)
    noise = _band(rng.standard_normal(t.size), 1200, 9000) * _env(t, 0.12)
    out["SD"] = _finish(tone + 0.8 * noise)
    t = _t(0.12)
    out["HH_CHH"] = _finish(_band(_metal(t) + 0.3 * rng.standard_normal(t.size), 7000, 16000) * _env(t, 0.02), 0.7)
    t = _t(0.7)
    out["HH_OHH"] = _finish(_band(_metal(t) + 0.3 * rng.standard_normal(t.size), 6500, 16000) * _env(t, 0.25), 0.7)
    for cls, (f0, f1) in {"TT_HMT": (260.0, 190.0), "TT_LMT": (190.0, 140.0), "TT_HFT": (130.0, 95.0)}.items():
        t = _t(0.7)
        out[cls] = _finish(_sweep(t, f0, f1, 0.05) * _env(t, 0.22)
                           + 0.1 * _band(rng.standard_normal(t.size), 2000, 8000) * _env(t, 0.01))
    t = _t(1.0)
    out["CY_CR"] = _finish(_band(_metal(t, 1.3) + 0.8 * rng.standard_normal(t.size), 4000, 18000) * _env(t, 0.45), 0.75)
    bell = sum(np.sin(2 * np.pi * f * t) for f in (2840.0, 3560.0, 5110.0)) / 3
    out["CY_RD"] = _finish(_band(_metal(t, 2.1), 5000, 16000) * _env(t, 0.35) + 0.4 * bell * _env(t, 0.5), 0.6)
    return out


# ------------------------------------------------------------------------------------ acoustic
def _modes(t: np.ndarray, f0: float, ratios: tuple[float, ...], decays: tuple[float, ...],
           amps: tuple[float, ...]) -> np.ndarray:
    return sum(a * np.sin(2 * np.pi * f0 * r * t) * _env(t, d) for r, d, a in zip(ratios, decays, amps))


def _acoustic(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    membrane = (1.0, 1.59, 2.14, 2.30, 2.65)  # circular membrane mode ratios
    t = _t(0.7)
    beater = _band(rng.standard_normal(t.size), 800, 5000) * _env(t, 0.004)
    out["KD"] = _finish(_sweep(t, 95.0, 58.0, 0.02) * _env(t, 0.28)
                        + 0.3 * _modes(t, 62.0, membrane[1:], (0.08, 0.06, 0.05, 0.04), (0.5, 0.3, 0.2, 0.1))
                        + 0.5 * beater)
    t = _t(0.6)
    shell = _modes(t, 210.0, membrane, (0.09, 0.07, 0.05, 0.05, 0.04), (1.0, 0.6, 0.4, 0.3, 0.2))
    wires = _band(rng.standard_normal(t.size), 2500, 12000) * _env(t, 0.16)
    out["SD"] = _finish(0.5 * shell + wires + 0.4 * _band(rng.standard_normal(t.size), 400, 3000) * _env(t, 0.01))
    t = _t(0.15)
    sizzle = _band(rng.standard_normal(t.size), 6000, 17000)
    out["HH_CHH"] = _finish((sizzle + 0.3 * _band(_metal(t, 1.7), 6000, 16000)) * _env(t, 0.03), 0.6)
    t = _t(0.9)
    sizzle = _band(rng.standard_normal(t.size), 5000, 17000)
    out["HH_OHH"] = _finish((sizzle + 0.3 * _band(_metal(t, 1.7), 5000, 16000)) * _env(t, 0.35), 0.6)
    for cls, f0 in {"TT_HMT": 180.0, "TT_LMT": 130.0, "TT_HFT": 88.0}.items():
        t = _t(0.9)
        stick = _band(rng.standard_normal(t.size), 1000, 6000) * _env(t, 0.005)
        body = _modes(t, f0, membrane, (0.35, 0.2, 0.12, 0.1, 0.08), (1.0, 0.5, 0.35, 0.25, 0.15))
        glide = _sweep(t, f0 * 1.15, f0, 0.04) * _env(t, 0.3)
        out[cls] = _finish(0.6 * body + 0.5 * glide + 0.3 * stick)
    t = _t(1.0)
    wash = _band(rng.standard_normal(t.size), 3000, 16000)
    shimmer = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in rng.uniform(3000, 9000, 40)) / 40
    out["CY_CR"] = _finish((wash + 0.5 * shimmer) * _env(t, 0.5, 0.002), 0.75)
    ping = sum(np.sin(2 * np.pi * f * t) for f in (3120.0, 4430.0, 6010.0)) / 3
    out["CY_RD"] = _finish(0.6 * _band(rng.standard_normal(t.size), 4000, 14000) * _env(t, 0.25)
                           + 0.6 * ping * _env(t, 0.6) + 0.3 * shimmer * _env(t, 0.4), 0.55)
    return out


_MAKERS: dict[str, tuple[Callable[[np.random.Generator], dict[str, np.ndarray]], int, str]] = {
    "synth-electro": (_electro, 808, "Analogue drum machine style, synthesised by idm_host.kitgen"),
    "synth-acoustic": (_acoustic, 1964, "Acoustic-style kit (membrane modes, wires, cymbal wash), "
                                        "synthesised by idm_host.kitgen"),
}


def synthesize_kit(name: str) -> dict[str, np.ndarray]:
    """The one-shots of kit ``name``: ``{class symbol: float32 (samples,)}`` at 44.1 kHz."""
    if name not in _MAKERS:
        raise IdmError(f"kit {name!r} is not one kitgen makes; use one of {', '.join(KITS)}")
    maker, seed, _ = _MAKERS[name]
    shots = maker(np.random.default_rng(seed))
    missing = set(IDM_CLASSES) - set(shots)
    assert not missing, missing
    return {c: shots[c] for c in IDM_CLASSES}


def write_kit(name: str, out_dir: "str | Path", *, overwrite: bool = False) -> Path:
    """Write ``out_dir/<name>/<CLASS>.wav`` (16-bit) and ``out_dir/<name>.json``; returns the JSON path."""
    from .audio import save_audio
    from .fsutil import atomic_write_text

    out = Path(out_dir)
    shots = synthesize_kit(name)
    for c, x in shots.items():
        save_audio(out / name / f"{c}.wav", x, SR, bit_depth=16, overwrite=overwrite)
    doc = {
        "schema_version": 1,
        "name": name,
        "description": _MAKERS[name][2],
        "samples": {c: f"{name}/{c}.wav" for c in shots},
        "names": {c: class_info(c).name for c in shots},
        "choke": {"HH_OHH": ["HH_CHH"]},
        "velocity_curve": "exponential",
        "curve_amount": 1.5,
    }
    return atomic_write_text(out / f"{name}.json", json.dumps(doc, indent=1) + "\n", overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the synthesised kits into a folder (tools/make_assets.py kits: presets/kits/).")
    ap.add_argument("--out", required=True)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    for name in KITS:
        print(write_kit(name, args.out, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
