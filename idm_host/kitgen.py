"""Synthesised drum kits: the one-shots shipped in ``presets/kits/`` are made by this code.

Two kits, all 9 model classes each, 44.1 kHz mono 16-bit WAV, at most 1 s per one-shot:

- ``synth-electro``: analogue-drum-machine style (pitch-swept sine kick, tone+noise snare,
  metallic square-wave hats and cymbals, swept toms).
- ``synth-acoustic``: acoustic-style (beater thump and shell modes for the kick, snare-wire noise,
  inharmonic membrane modes for the toms, dense noisy cymbals).

This module holds the recipes; the building blocks (envelopes, filters, sweeps, metal) are
:mod:`idm_host.drumsynth`'s. Everything is deterministic (fixed seeds). Regenerate the shipped ones with
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
from typing import Callable

import numpy as np

from .classes import IDM_CLASSES, class_info
from .drumsynth import SAMPLE_RATE, band, envelope, finish, noise, partials, square_bank, sweep, time_axis
from .errors import IdmError

log = logging.getLogger(__name__)

SR = SAMPLE_RATE
KITS = ("synth-electro", "synth-acoustic")
_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # square-wave partials of a classic metal voice
_MEMBRANE = (1.0, 1.59, 2.14, 2.30, 2.65)  # circular membrane mode ratios


def _metal(t: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The classic metal voice, its partials scaled by ``scale``."""
    return square_bank(t, np.multiply(_METAL_HZ, scale), range(len(_METAL_HZ)))


def _modes(t: np.ndarray, f0: float, ratios: tuple[float, ...], decays_s: tuple[float, ...],
           amps: tuple[float, ...]) -> np.ndarray:
    """Decaying modes at ``f0`` times ``ratios``."""
    return partials(t, np.multiply(f0, ratios), amps, decays_s)


# ------------------------------------------------------------------------------------- electro
def _electro(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    t = time_axis(0.8)
    click = band(noise(rng, t), 1500, 8000) * envelope(t, 0.002)
    out["KD"] = finish(sweep(t, 160.0, 48.0, 0.03) * envelope(t, 0.35) + 0.3 * click)
    t = time_axis(0.4)
    tone = partials(t, (185.0, 330.0), (0.6, 0.4), (0.06, 0.04))
    hiss = band(noise(rng, t), 1200, 9000) * envelope(t, 0.12)
    out["SD"] = finish(tone + 0.8 * hiss)
    t = time_axis(0.12)
    out["HH_CHH"] = finish(band(_metal(t) + 0.3 * noise(rng, t), 7000, 16000) * envelope(t, 0.02), 0.7)
    t = time_axis(0.7)
    out["HH_OHH"] = finish(band(_metal(t) + 0.3 * noise(rng, t), 6500, 16000) * envelope(t, 0.25), 0.7)
    for cls, (f0, f1) in {"TT_HMT": (260.0, 190.0), "TT_LMT": (190.0, 140.0), "TT_HFT": (130.0, 95.0)}.items():
        t = time_axis(0.7)
        out[cls] = finish(sweep(t, f0, f1, 0.05) * envelope(t, 0.22)
                          + 0.1 * band(noise(rng, t), 2000, 8000) * envelope(t, 0.01))
    t = time_axis(1.0)
    out["CY_CR"] = finish(band(_metal(t, 1.3) + 0.8 * noise(rng, t), 4000, 18000) * envelope(t, 0.45), 0.75)
    bell = partials(t, (2840.0, 3560.0, 5110.0)) / 3
    out["CY_RD"] = finish(band(_metal(t, 2.1), 5000, 16000) * envelope(t, 0.35) + 0.4 * bell * envelope(t, 0.5), 0.6)
    return out


# ------------------------------------------------------------------------------------ acoustic
def _acoustic(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    t = time_axis(0.7)
    beater = band(noise(rng, t), 800, 5000) * envelope(t, 0.004)
    out["KD"] = finish(sweep(t, 95.0, 58.0, 0.02) * envelope(t, 0.28)
                       + 0.3 * _modes(t, 62.0, _MEMBRANE[1:], (0.08, 0.06, 0.05, 0.04), (0.5, 0.3, 0.2, 0.1))
                       + 0.5 * beater)
    t = time_axis(0.6)
    shell = _modes(t, 210.0, _MEMBRANE, (0.09, 0.07, 0.05, 0.05, 0.04), (1.0, 0.6, 0.4, 0.3, 0.2))
    wires = band(noise(rng, t), 2500, 12000) * envelope(t, 0.16)
    out["SD"] = finish(0.5 * shell + wires + 0.4 * band(noise(rng, t), 400, 3000) * envelope(t, 0.01))
    t = time_axis(0.15)
    sizzle = band(noise(rng, t), 6000, 17000)
    out["HH_CHH"] = finish((sizzle + 0.3 * band(_metal(t, 1.7), 6000, 16000)) * envelope(t, 0.03), 0.6)
    t = time_axis(0.9)
    sizzle = band(noise(rng, t), 5000, 17000)
    out["HH_OHH"] = finish((sizzle + 0.3 * band(_metal(t, 1.7), 5000, 16000)) * envelope(t, 0.35), 0.6)
    for cls, f0 in {"TT_HMT": 180.0, "TT_LMT": 130.0, "TT_HFT": 88.0}.items():
        t = time_axis(0.9)
        stick = band(noise(rng, t), 1000, 6000) * envelope(t, 0.005)
        body = _modes(t, f0, _MEMBRANE, (0.35, 0.2, 0.12, 0.1, 0.08), (1.0, 0.5, 0.35, 0.25, 0.15))
        glide = sweep(t, f0 * 1.15, f0, 0.04) * envelope(t, 0.3)
        out[cls] = finish(0.6 * body + 0.5 * glide + 0.3 * stick)
    t = time_axis(1.0)
    wash = band(noise(rng, t), 3000, 16000)
    shimmer_hz = rng.uniform(3000, 9000, 40)
    shimmer = partials(t, shimmer_hz, phases=rng.uniform(0, 6.3, shimmer_hz.size)) / 40
    out["CY_CR"] = finish((wash + 0.5 * shimmer) * envelope(t, 0.5, 0.002), 0.75)
    ping = partials(t, (3120.0, 4430.0, 6010.0)) / 3
    out["CY_RD"] = finish(0.6 * band(noise(rng, t), 4000, 14000) * envelope(t, 0.25)
                          + 0.6 * ping * envelope(t, 0.6) + 0.3 * shimmer * envelope(t, 0.4), 0.55)
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
