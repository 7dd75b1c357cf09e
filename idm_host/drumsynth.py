"""Drum-synthesis primitives: the one set of building blocks under every drum synthesiser here.

The example loop (:mod:`idm_host.demo`), the shipped kits (:mod:`idm_host.kitgen`), the test kits
(:func:`idm_host.train.kits.synthetic_kit`) and the training stream's procedural kits
(:mod:`idm_host.train.procedural`) keep only their recipes (which drum gets which parameters) and
build them from these functions. Everything runs at :data:`SAMPLE_RATE` (the model's, 44.1 kHz);
arrays are float64 ``(samples,)`` until :func:`finish` makes a float32 one-shot (the one-pole filters
keep a float32 input float32, for the training stream's float32 mixes).

- Time: :func:`n_samples` (a duration to a sample count) and :func:`time_axis` (seconds).
- :func:`envelope`: exponential decay ``exp(-t / tau_s)`` after a linear attack. Every decay in the
  recipes is this time constant, in seconds.
- :func:`noise`: white Gaussian noise drawn from the recipe's generator (its seed fixes the kit).
- Filters, two kinds for two jobs: :func:`lowpass` and :func:`highpass` are the gentle one-pole
  pair (6 dB per octave, causal; the exact recursion), :func:`band` the steep one (zero-phase, by
  FFT, Butterworth-shaped edges) for band-limited noise and metal.
- Pitched drums: :func:`glide` (a frequency falling from ``start_hz`` to ``end_hz`` with a time
  constant: the pitch drop of a struck membrane), :func:`glide_phase` and :func:`sweep` (its sine),
  and :func:`partials` (sums of sines, each decaying with its own time constant: membrane and
  shell modes, bells and pings).
- Metal: :func:`square_bank`, inharmonic square oscillators averaged (hats and cymbals).
- :func:`finish`: a short fade to silence, then the peak set, as float32.

Example:
    >>> t = time_axis(0.5)
    >>> kick = finish(sweep(t, 150.0, 50.0, 0.03) * envelope(t, 0.2), 0.9)
    >>> kick.dtype, kick.size, round(float(abs(kick).max()), 3)
    (dtype('float32'), 22050, 0.9)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

SAMPLE_RATE = 44100  # the model's rate (audio.MODEL_SAMPLE_RATE; a lower layer cannot import it)


def n_samples(length_s: float) -> int:
    """The number of samples in ``length_s`` seconds, rounded to the nearest."""
    return int(round(length_s * SAMPLE_RATE))


def time_axis(length_s: float) -> np.ndarray:
    """The time of each sample of a ``length_s`` one-shot, in seconds (from 0)."""
    return np.arange(n_samples(length_s)) / SAMPLE_RATE


def envelope(t: np.ndarray, tau_s: float, attack_s: float = 0.0005) -> np.ndarray:
    """``exp(-t / tau_s)`` with a linear attack ramp over the first ``attack_s`` seconds.

    The default half-millisecond attack keeps a one-shot from starting with a click; ``attack_s=0``
    starts at full level.
    """
    e = np.exp(-t / tau_s)
    if attack_s > 0:
        e *= np.minimum(1.0, t / attack_s)
    return e


def noise(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """White Gaussian noise (unit variance), one value per sample of ``t``."""
    return rng.standard_normal(t.size)


def pole_hz(pole: float) -> float:
    """The cutoff (Hz) of the one-pole filter whose pole is ``pole`` (0 < pole < 1): the inverse of
    the mapping :func:`lowpass` and :func:`highpass` use, for recipes written with a pole."""
    return float(-np.log(pole) * SAMPLE_RATE / (2.0 * np.pi))


def _float_dtype(x: np.ndarray) -> type[np.floating]:
    """float32 for float32 input (the filters then fit a float32 signal chain), float64 otherwise."""
    return np.float32 if np.asarray(x).dtype == np.float32 else np.float64


def _pole(cutoff_hz: float) -> float:
    return float(np.exp(-2.0 * np.pi * min(cutoff_hz, 0.45 * SAMPLE_RATE) / SAMPLE_RATE))


def lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """One-pole low-pass, ``y[n] = (1 - a) x[n] + a y[n-1]`` with ``a = exp(-2 pi cutoff / rate)``
    (cutoffs above 0.45 of the rate are taken as that). Run in float64; float32 in gives float32 out."""
    from scipy.signal import lfilter

    a = _pole(cutoff_hz)
    return np.asarray(lfilter([1.0 - a], [1.0, -a], x), dtype=_float_dtype(x))


def highpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """One-pole high-pass, the complement of :func:`lowpass` (``x - lowpass(x)``), run as its own
    recursion ``y[n] = a (y[n-1] + x[n] - x[n-1])``: zero gain at DC, ``2a / (1 + a)`` at Nyquist."""
    from scipy.signal import lfilter

    a = _pole(cutoff_hz)
    return np.asarray(lfilter([a, -a], [1.0, -a], x), dtype=_float_dtype(x))


def band(x: np.ndarray, lo_hz: float | None, hi_hz: float | None, order: int = 4) -> np.ndarray:
    """Zero-phase band filter by FFT with Butterworth-shaped edges (``order`` poles each side; no
    edge where ``lo_hz`` or ``hi_hz`` is None). The signal is treated as periodic, so it suits
    one-shots that start and end near silence or are enveloped after filtering."""
    n = x.size
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    g = np.ones_like(f)
    if lo_hz:
        g *= 1.0 / np.sqrt(1.0 + (lo_hz / np.maximum(f, 1e-6)) ** (2 * order))
    if hi_hz:
        g *= 1.0 / np.sqrt(1.0 + (f / hi_hz) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x) * g, n)


def glide(t: np.ndarray, start_hz: float, end_hz: float, tau_s: float) -> np.ndarray:
    """The instantaneous frequency (Hz) of a pitch drop: ``start_hz`` at ``t = 0``, falling to
    ``end_hz`` with time constant ``tau_s``."""
    return end_hz + (start_hz - end_hz) * np.exp(-t / tau_s)


def glide_phase(t: np.ndarray, start_hz: float, end_hz: float, tau_s: float) -> np.ndarray:
    """The phase (radians) of :func:`glide`'s frequency, integrated sample by sample."""
    return 2 * np.pi * np.cumsum(glide(t, start_hz, end_hz, tau_s)) / SAMPLE_RATE


def sweep(t: np.ndarray, start_hz: float, end_hz: float, tau_s: float) -> np.ndarray:
    """A sine with a pitch drop (:func:`glide`): the body of a kick or a tom."""
    return np.sin(glide_phase(t, start_hz, end_hz, tau_s))


def partials(t: np.ndarray, freqs_hz: Sequence[float] | np.ndarray, amps: Sequence[float] | np.ndarray | None = None,
             taus_s: Sequence[float] | np.ndarray | None = None, phases: Sequence[float] | np.ndarray | None = None,
             attack_s: float = 0.0005) -> np.ndarray:
    """``sum_k amps[k] sin(2 pi freqs_hz[k] t + phases[k]) envelope(t, taus_s[k])``.

    Amplitudes default to 1, phases to 0; without ``taus_s`` the partials do not decay (the caller
    envelopes the sum). Membrane and shell modes, bells, pings and shimmer are all this.
    """
    out = np.zeros(t.size)
    for k, f in enumerate(freqs_hz):
        x = np.sin(2 * np.pi * f * t + (0.0 if phases is None else phases[k]))
        if amps is not None:
            x = amps[k] * x
        if taus_s is not None:
            x = x * envelope(t, taus_s[k], attack_s)
        out += x
    return out


def square_bank(t: np.ndarray, freqs_hz: Sequence[float] | np.ndarray, phases: Sequence[float] | np.ndarray
                ) -> np.ndarray:
    """The average of square waves ``sign(sin(2 pi f t + phase))`` at inharmonic frequencies: the
    metallic ring of an analogue hat or cymbal (band-filter it and add noise to taste)."""
    out = np.zeros(t.size)
    for f, p in zip(freqs_hz, phases):
        out += np.sign(np.sin(2 * np.pi * f * t + p))
    return out / len(freqs_hz)


def finish(x: np.ndarray, peak: float = 0.9, *, fade_s: float = 0.01) -> np.ndarray:
    """A one-shot as float32: the last ``fade_s`` seconds faded out linearly (so it ends at silence;
    0 for none), then scaled so that its peak is ``peak`` (a silent one stays silent)."""
    x = np.array(x, dtype=np.float64)
    fade = min(x.size, n_samples(fade_s))
    if fade > 0:
        x[-fade:] *= np.linspace(1.0, 0.0, fade)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / m) if m > 0 else x).astype(np.float32)
