"""Procedural drum kits and kit augmentation for transcriber training.

:func:`procedural_kit` draws a whole kit from a parametric drum synthesiser (pitched membranes
with a pitch drop for kick and toms, tone plus filtered noise for the snare; for hats and cymbals
either banks of inharmonic square oscillators (an analogue machine's metal) or, in half the kits,
shaped noise with a dense set of random modal peaks, each frequency decaying at its own rate
(:func:`spectral_metal`: an acoustic cymbal's wash, bloom and stick ping); ping plus bell partials
for the ride), with every parameter random, three velocity layers per drum (louder layers
brighter). Thousands of seeds give thousands of distinct kits.

:func:`augment_kit` changes a sampled kit the way another kit or another recording of it would
sound: per-class pitch shift of a few semitones, EQ tilt, decay shortened or lengthened. Every
change is recorded in the returned ``changes`` so tests can check what was done.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..classes import DRUM_CLASSES
from ..drumsynth import (SAMPLE_RATE, envelope, finish, glide_phase, highpass, lowpass, n_samples, noise, partials,
                         square_bank, time_axis)
from ..levels import db_to_gain
from .kits import GM_KIT_NOTES, Instrument, SampleLayer, SampledKit, prepare_sample, repitch

SR = SAMPLE_RATE


def _membrane(rng: np.random.Generator, f0: float, drop: float, decay_s: float, length_s: float,
              click: float, noise_level: float, bright: float) -> np.ndarray:
    """A pitched membrane: a sine falling ``drop`` times ``f0`` above it to ``f0``, an overtone at 2.13
    times its phase, a high-passed click and low-passed noise."""
    t = time_axis(length_s)
    phase = glide_phase(t, f0 * (1.0 + drop), f0, rng.uniform(0.005, 0.04))
    x = np.sin(phase) + rng.uniform(0.0, 0.4) * np.sin(2.13 * phase) * envelope(t, 0.3 * decay_s, attack_s=0.0)
    x = x * envelope(t, decay_s)
    if click > 0:
        c = noise(rng, t) * envelope(t, rng.uniform(0.002, 0.01))
        x = x + click * highpass(c, 1500 + 3000 * bright)
    if noise_level > 0:
        x = x + noise_level * lowpass(noise(rng, t), 2000 + 6000 * bright) * envelope(t, 0.4 * decay_s)
    return x


def _metal(rng: np.random.Generator, base_hz: float, decay_s: float, length_s: float, hp_hz: float,
           bright: float, n_partials: int = 6) -> np.ndarray:
    """A bank of ``n_partials`` square oscillators at random ratios of ``base_hz`` plus noise, high-passed
    (and low-passed when dark)."""
    t = time_axis(length_s)
    ratios = np.sort(rng.uniform(1.0, 3.6, size=n_partials))
    x = square_bank(t, base_hz * ratios, rng.uniform(0, 2 * np.pi, size=n_partials))
    x = highpass(x + rng.uniform(0.3, 1.0) * noise(rng, t), hp_hz)
    if bright < 0.7:
        x = lowpass(x, 6000 + 12000 * bright)
    return x * envelope(t, decay_s)


def _ping(rng: np.random.Generator, lo_hz: float, hi_hz: float, length_s: float, decay_s: tuple[float, float]
          ) -> np.ndarray:
    """A sine at a random pitch in ``lo_hz..hi_hz`` decaying with a random time constant (a ride's ping, a bell)."""
    t = time_axis(length_s)
    return partials(t, (rng.uniform(lo_hz, hi_hz),)) * envelope(t, rng.uniform(*decay_s))


def spectral_metal(rng: np.random.Generator, length_s: float, decay_s: float, lo_hz: float, hi_hz: float,
                   bright: float, *, n_peaks: int = 60, bloom_s: float = 0.0, slope: float | None = None,
                   floor: float | None = None, strike: float | None = None) -> np.ndarray:
    """An acoustic-sounding metal one-shot built in the short-time Fourier domain.

    Random-phase frames (noise) are shaped by a spectral envelope of ``n_peaks`` narrow random peaks
    between ``lo_hz`` and ``hi_hz`` (the dense inharmonic modes of a cymbal or hat) over a noise
    floor, and each frequency decays with its own time constant ``decay_s * (f / f_mid) ** -slope``
    (highs die first; ``f_mid`` the band's geometric middle; at most 4 ``decay_s``). With ``bloom_s``
    the highs swell in over that time (a crash's bloom). ``strike`` adds a broadband burst of a few
    milliseconds at that fraction of the envelope's peak (the stick). ``bright`` (0..1) tilts the
    envelope towards the highs, as a harder hit does. A 1024-point Hann overlap-add at hop 256.
    """
    n_fft, hop = 1024, 256
    n = n_samples(length_s)
    n_frames = n // hop + n_fft // hop + 1
    f = np.fft.rfftfreq(n_fft, 1.0 / SR)
    logf = np.log(np.maximum(f, 20.0))
    centres = rng.uniform(np.log(lo_hz), np.log(hi_hz), size=n_peaks)
    widths = rng.uniform(0.004, 0.03, size=n_peaks)
    amps = rng.uniform(0.2, 1.0, size=n_peaks) ** 2
    env = np.zeros(f.size)
    for c, w, a in zip(centres, widths, amps):
        env += a * np.exp(-0.5 * ((logf - c) / w) ** 2)
    env += (rng.uniform(0.05, 0.4) if floor is None else floor) * amps.mean()
    edge = 1.0 / np.sqrt(1.0 + (lo_hz / np.maximum(f, 1.0)) ** 8) / np.sqrt(1.0 + (f / hi_hz) ** 4)
    mid = np.sqrt(lo_hz * hi_hz)
    env *= edge * (np.maximum(f, 20.0) / mid) ** (1.5 * (bright - 0.5))
    slope = rng.uniform(0.3, 1.0) if slope is None else slope
    tau = np.minimum(decay_s * (np.maximum(f, lo_hz) / mid) ** -slope, 4.0 * decay_s)
    t = (np.arange(n_frames) * hop - n_fft // 2) / SR
    tt = np.maximum(t, 0.0)[:, None]
    gain = env[None, :] * np.exp(-tt / tau[None, :])
    if bloom_s > 0:
        rise = np.clip(f / hi_hz, 0.0, 1.0)[None, :]
        gain *= 1.0 - rise * np.exp(-tt / bloom_s)
    strike = rng.uniform(0.2, 0.8) if strike is None else strike
    gain += strike * env.max() * edge[None, :] * np.exp(-tt / 0.004)
    spec = gain * (rng.standard_normal(gain.shape) + 1j * rng.standard_normal(gain.shape))
    win = np.hanning(n_fft)
    frames = np.fft.irfft(spec, n_fft, axis=1) * win[None, :]
    out = np.zeros(n_frames * hop + n_fft)
    for i in range(n_frames):
        out[i * hop:i * hop + n_fft] += frames[i]
    x = out[n_fft // 2:n_fft // 2 + n]
    x = x * np.minimum(1.0, np.arange(n) / (0.0005 * SR))  # the stick's attack, no click before it
    return x / (np.abs(x).max() + 1e-12)


def _recipes(rng: np.random.Generator) -> dict[int, Any]:
    """Per GM note, a function ``bright -> samples`` with this kit's random parameters."""
    kick_f = rng.uniform(40, 75)
    # toms from a tight high-tuned set to a deep one, open to taped-down (damped), soft to sticky attacks
    tom_base = rng.uniform(60, 140)
    tom_step = rng.uniform(1.12, 1.6)
    tom_damp = float(np.exp(rng.uniform(np.log(0.3), np.log(1.5))))
    tom_click = rng.uniform(0.1, 0.7)
    tom_noise = rng.uniform(0.0, 0.12)
    snare_f = rng.uniform(150, 260)
    hat_base = rng.uniform(300, 600)
    cym_base = rng.uniform(250, 500)
    kick_decay = rng.uniform(0.08, 0.5)
    snare_noise = rng.uniform(0.5, 1.5)
    hat_hp = rng.uniform(4000, 9000)
    r: dict[int, Any] = {
        36: lambda b: _membrane(rng, kick_f, rng.uniform(1.0, 4.0), kick_decay, 0.8, 0.3 + 0.6 * b, 0.05, b),
        38: lambda b: 0.6 * _membrane(rng, snare_f, rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2), 0.5, 0.2, 0.0, b)
        + snare_noise * highpass(noise(rng, time_axis(0.5)), 800 + 1500 * b)
        * envelope(time_axis(0.5), rng.uniform(0.06, 0.25)),
        37: lambda b: _membrane(rng, snare_f * 2.5, 0.1, 0.03, 0.15, 0.8, 0.0, b),
        42: lambda b: _metal(rng, hat_base, rng.uniform(0.02, 0.08), 0.3, hat_hp, b),
        44: lambda b: 0.7 * _metal(rng, hat_base, rng.uniform(0.02, 0.05), 0.2, hat_hp, b * 0.7),
        46: lambda b: _metal(rng, hat_base, rng.uniform(0.25, 0.9), 1.5, hat_hp * 0.8, b),
        43: lambda b: _membrane(rng, tom_base, rng.uniform(0.2, 0.8), tom_damp * rng.uniform(0.2, 0.6), 1.0, tom_click,
                                tom_noise, b),
        47: lambda b: _membrane(rng, tom_base * tom_step, rng.uniform(0.2, 0.8), tom_damp * rng.uniform(0.15, 0.5), 0.9,
                                tom_click, tom_noise, b),
        50: lambda b: _membrane(rng, tom_base * tom_step ** 2, rng.uniform(0.2, 0.8), tom_damp * rng.uniform(0.12, 0.4),
                                0.8, tom_click, tom_noise, b),
        49: lambda b: _metal(rng, cym_base, rng.uniform(0.8, 2.5), 3.0, rng.uniform(300, 1500), b, n_partials=10),
        51: lambda b: 0.5 * _metal(rng, cym_base * 1.3, rng.uniform(0.8, 2.0), 3.0, 2000, b * 0.6, n_partials=8)
        + 0.4 * _ping(rng, 3000, 5500, 3.0, (0.1, 0.5)),
        53: lambda b: 0.8 * _ping(rng, 1800, 3200, 2.0, (0.3, 1.0)) + 0.2 * _metal(rng, cym_base, 0.8, 2.0, 2000, b),
    }
    if rng.random() < 0.5:  # a china or splash beside the crash
        r[55] = lambda b: _metal(rng, cym_base * 1.5, rng.uniform(0.3, 1.0), 2.0, 1500, b, n_partials=10)
    if rng.random() < 0.65:  # acoustic metal instead of the analogue machine's
        r.update(_acoustic_metal(rng, 55 in r))
    return r


def _acoustic_metal(rng: np.random.Generator, splash: bool) -> dict[int, Any]:
    """Hats and cymbals from :func:`spectral_metal`, with this kit's random sizes (band edges, decays)."""
    hat_lo = float(np.exp(rng.uniform(np.log(1200.0), np.log(7000.0))))
    hat_peaks = int(rng.integers(25, 70))
    hat_decay = float(np.exp(rng.uniform(np.log(0.015), np.log(0.15))))
    cr_lo, cr_decay, cr_bloom = rng.uniform(250, 900), rng.uniform(0.7, 2.2), rng.uniform(0.005, 0.05)
    rd_lo, rd_decay = rng.uniform(300, 900), rng.uniform(1.0, 3.0)
    ping_hz = rng.uniform(2500, 6000)
    bell = rng.uniform(600, 1600)
    bell_ratios = np.array([1.0, rng.uniform(1.9, 2.2), rng.uniform(2.7, 3.1), rng.uniform(3.9, 4.5)])
    # the kit's metal from bright to dark (large, old or heavy cymbals, heard from the overheads): the
    # sampled kits' crashes and open hats measure a spectral centroid of 1.4-6 kHz (Millo 2.1-6.0,
    # ForzeeStereo 1.4-3.0), where bands reaching 17 kHz alone gave 8.6-13 kHz (MODEL_CARD.md, session 15)
    top = float(np.exp(rng.uniform(np.log(3000.0), np.log(17000.0))))
    hat_top = max(top, 1.8 * hat_lo)

    def ride(b: float) -> np.ndarray:
        t = time_axis(3.0)
        wash = spectral_metal(rng, 3.0, rd_decay, rd_lo, min(top, 16000.0), 0.6 * b, n_peaks=90, slope=0.5)
        ping = partials(t, ping_hz * np.array([1.0, 1.37, 1.93]), (1.0, 0.5, 0.3), (0.15, 0.08, 0.05))
        return 0.7 * wash + rng.uniform(0.2, 0.6) * ping / 1.8

    def ride_bell(b: float) -> np.ndarray:
        t = time_axis(2.5)
        tone = partials(t, bell * bell_ratios, (1.0, 0.6, 0.4, 0.25), rd_decay * np.array([0.8, 0.5, 0.35, 0.25]))
        return 0.7 * tone / 2.25 + 0.3 * spectral_metal(rng, 2.5, rd_decay * 0.6, rd_lo, min(top, 16000.0), b, n_peaks=60)

    r: dict[int, Any] = {
        # closed hats from tight (15 ms) to loose (150 ms, ringing like a dry ride played fast)
        42: lambda b: spectral_metal(rng, 0.6, hat_decay * rng.uniform(0.85, 1.15), hat_lo, hat_top, b, n_peaks=hat_peaks),
        44: lambda b: 0.7 * spectral_metal(rng, 0.2, rng.uniform(0.01, 0.035), hat_lo * 0.7, min(hat_top, 14000.0), 0.7 * b,
                                           n_peaks=hat_peaks),
        46: lambda b: spectral_metal(rng, 1.5, rng.uniform(0.2, 0.8), hat_lo * 0.8, hat_top, b, n_peaks=hat_peaks,
                                     bloom_s=0.005),
        49: lambda b: spectral_metal(rng, 3.0, cr_decay, cr_lo, top, b, n_peaks=100, bloom_s=cr_bloom),
        51: ride,
        53: ride_bell,
    }
    if splash:
        r[55] = lambda b: spectral_metal(rng, 2.0, rng.uniform(0.25, 0.9), cr_lo * 2.0, top, b, n_peaks=80,
                                         bloom_s=0.01, floor=rng.uniform(0.3, 0.8))
    return r


def procedural_kit(seed: int) -> SampledKit:
    """A random kit from the parametric drum synthesiser (three velocity layers per drum)."""
    rng = np.random.default_rng(seed)
    instruments: dict[int, tuple[Instrument, ...]] = {}
    for note, make in _recipes(rng).items():
        layers = []
        for lo, hi, bright, level in ((0.0, 0.4, 0.2, 0.4), (0.4, 0.75, 0.5, 0.7), (0.75, 1.0, 0.9, 1.0)):
            s = prepare_sample(finish(make(bright), level, fade_s=0.0))
            if s is not None:
                layers.append(SampleLayer(s, lo, hi))
        if layers:
            name = f"procedural {DRUM_CLASSES[GM_KIT_NOTES[note]].name}"
            instruments[note] = (Instrument(name, note, tuple(layers)),)
    return SampledKit(f"procedural-{seed}", instruments, SR, None, "synthetic")


def tilt(x: np.ndarray, db_per_octave: float) -> np.ndarray:
    """A gentle spectral tilt: positive brightens, negative darkens (a low/high split at ~1 kHz)."""
    low = lowpass(x, 1000.0)
    high = x - low
    g = db_to_gain(db_per_octave * 2)  # about two octaves either side of the split
    return (low / np.sqrt(g) + high * np.sqrt(g)).astype(np.float32)


def change_decay(x: np.ndarray, factor: float) -> np.ndarray:
    """Shorten (``factor`` < 1) or lengthen (> 1) a one-shot's decay.

    The sample is multiplied by ``exp(t / tau)`` with ``tau`` set from its own decay time, so the
    envelope's time constant is scaled by ``factor``; the boost of a lengthened tail is capped at
    +12 dB so noise floors are not blown up.
    """
    n = x.size
    if n == 0 or abs(factor - 1.0) < 1e-6:
        return x
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(256) / 256, mode="same")) + 1e-9
    peak = int(np.argmax(env))
    below = np.flatnonzero(env[peak:] < env[peak] * np.exp(-1.0))
    tau = (below[0] if below.size else n - peak) / SR
    tau = max(tau, 0.005)
    t = np.maximum(np.arange(n) - peak, 0) / SR
    # e^{-t/tau} -> e^{-t/(tau*factor)}: multiply by e^{t/tau (1 - 1/factor)}
    g = np.exp(np.minimum(t / tau * (1.0 - 1.0 / factor), np.log(4.0)))
    return (x * g).astype(np.float32)


def augment_kit(kit: SampledKit, rng: np.random.Generator, *, pitch_st: float = 3.0, tilt_db: float = 3.0,
                decay: tuple[float, float] = (0.5, 1.6), prob: float = 0.5) -> tuple[SampledKit, dict[str, Any]]:
    """A variant of ``kit`` (one instrument per note) with per-class random pitch, tilt and decay.

    Each class is changed with probability ``prob``; every note of a class gets the same change
    (toms move together with their class, the hats keep one character).

    Returns:
        the kit and ``changes``: per class symbol, ``{"semitones", "tilt_db", "decay"}``.
    """
    variant = kit.variant(rng)
    changes: dict[str, dict[str, float]] = {}
    for sym in sorted({GM_KIT_NOTES[n] for n in variant.instruments}):
        if rng.random() < prob:
            changes[sym] = {"semitones": float(rng.uniform(-pitch_st, pitch_st)),
                            "tilt_db": float(rng.uniform(-tilt_db, tilt_db)),
                            "decay": float(np.exp(rng.uniform(np.log(decay[0]), np.log(decay[1]))))}
    out: dict[int, tuple[Instrument, ...]] = {}
    for note, (inst,) in variant.instruments.items():
        c = changes.get(GM_KIT_NOTES[note])
        if c is None:
            out[note] = (inst,)
            continue
        layers = []
        for layer in inst.layers:
            x = repitch(layer.samples, c["semitones"])
            x = change_decay(tilt(x, c["tilt_db"]), c["decay"])
            layers.append(SampleLayer(x.astype(np.float32), layer.min_velocity, layer.max_velocity, layer.gain))
        out[note] = (Instrument(inst.name, inst.note, tuple(layers), inst.gain),)
    return SampledKit(kit.name, out, kit.sample_rate, kit.source, kit.kind), changes


def mix_kits(kits: list[SampledKit] | tuple[SampledKit, ...], rng: np.random.Generator
             ) -> tuple[SampledKit, dict[str, str]]:
    """A kit whose drum groups (kick, snare, hi-hat, toms, cymbals) each come from a random kit of
    ``kits`` that has that group: combinations no single kit has, so that the network cannot learn
    one kit's character for a class. A group keeps all its notes from one kit (the toms stay in
    pitch order, the hats keep one character).

    Returns:
        the kit (one instrument per note) and ``sources``: per group, the name of the kit it came from.
    """
    if not kits:
        raise ValueError("mix_kits needs at least one kit")
    groups: dict[str, list[int]] = {}
    for i, kit in enumerate(kits):
        for g in {GM_KIT_NOTES[n][:2] for n in kit.instruments}:
            groups.setdefault(g, []).append(i)
    out: dict[int, tuple[Instrument, ...]] = {}
    sources: dict[str, str] = {}
    for g in sorted(groups):
        kit = kits[groups[g][int(rng.integers(len(groups[g])))]].variant(rng)
        sources[g] = kit.name
        out.update({n: alts for n, alts in kit.instruments.items() if GM_KIT_NOTES[n][:2] == g})
    name = "mix(" + ", ".join(f"{g}={k}" for g, k in sources.items()) + ")"
    return SampledKit(name, out, kits[0].sample_rate, None, "mixed"), sources
