"""drumsynth's primitives against plain numpy references and their stated units."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host import drumsynth as ds
from idm_host.audio import MODEL_SAMPLE_RATE

SR = ds.SAMPLE_RATE


def onepole_highpass_loop(x: np.ndarray, pole: float) -> np.ndarray:
    """The recursion written out, ``y[n] = pole (y[n-1] + x[n] - x[n-1])`` (the demo loop's first form)."""
    y = np.empty(x.size)
    prev_x = prev_y = 0.0
    for i, v in enumerate(x.astype(np.float64)):
        prev_y = pole * (prev_y + v - prev_x)
        prev_x = v
        y[i] = prev_y
    return y


def onepole_lowpass_loop(x: np.ndarray, pole: float) -> np.ndarray:
    y = np.empty(x.size)
    prev = 0.0
    for i, v in enumerate(x.astype(np.float64)):
        prev = (1.0 - pole) * v + pole * prev
        y[i] = prev
    return y


def test_the_rate_is_the_models():
    assert SR == MODEL_SAMPLE_RATE


def test_time_axis_and_lengths():
    assert ds.n_samples(0.7) == 30870 and ds.n_samples(0.0) == 0  # rounded, not truncated (0.7 * 44100 < 30870)
    t = ds.time_axis(0.5)
    assert t.size == SR // 2 and t[0] == 0.0 and t[1] == pytest.approx(1 / SR)


def test_envelope_is_a_time_constant_after_a_linear_attack():
    t = ds.time_axis(1.0)
    e = ds.envelope(t, 0.1, attack_s=0.0)
    assert e[0] == 1.0 and e[ds.n_samples(0.1)] == pytest.approx(np.exp(-1.0), rel=1e-4)
    ramped = ds.envelope(t, 0.1, attack_s=0.001)
    assert ramped[0] == 0.0 and ramped[22] == pytest.approx(22 / 44.1 * np.exp(-22 / SR / 0.1))
    np.testing.assert_array_equal(ramped[45:], e[45:])  # untouched after the attack


@pytest.mark.parametrize("pole", [0.5, 0.6, 0.7, 0.95])
def test_onepole_filters_are_the_recursions(pole):
    x = np.random.default_rng(0).standard_normal(3000)
    cutoff = ds.pole_hz(pole)
    np.testing.assert_allclose(ds.highpass(x, cutoff), onepole_highpass_loop(x, pole), atol=1e-12)
    np.testing.assert_allclose(ds.lowpass(x, cutoff), onepole_lowpass_loop(x, pole), atol=1e-12)
    np.testing.assert_allclose(ds.highpass(x, cutoff) + ds.lowpass(x, cutoff), x, atol=1e-12)  # complements


def test_band_passes_its_band_and_cuts_outside():
    t = ds.time_axis(1.0)

    def gain(f: float) -> float:
        x = np.sin(2 * np.pi * f * t)
        return float(np.std(ds.band(x, 1000.0, 4000.0)) / np.std(x))

    assert gain(2000.0) == pytest.approx(1.0, abs=0.02)
    assert gain(1000.0) == pytest.approx(2 ** -0.5, abs=0.02) and gain(4000.0) == pytest.approx(2 ** -0.5, abs=0.02)
    # 4th order, 24 dB per octave: two octaves out, 1/256
    assert gain(250.0) == pytest.approx(1 / 256, rel=0.02) and gain(16000.0) == pytest.approx(1 / 256, rel=0.02)


def test_glide_falls_from_start_to_end():
    t = ds.time_axis(1.0)
    f = ds.glide(t, 160.0, 50.0, 0.03)
    assert f[0] == pytest.approx(160.0) and f[-1] == pytest.approx(50.0, abs=1e-6)
    assert f[ds.n_samples(0.03)] == pytest.approx(50.0 + 110.0 / np.e, rel=1e-3)
    phase = ds.glide_phase(t, 160.0, 50.0, 0.03)
    np.testing.assert_allclose(np.diff(phase) * SR / (2 * np.pi), f[1:], rtol=1e-9)
    np.testing.assert_array_equal(ds.sweep(t, 160.0, 50.0, 0.03), np.sin(phase))


def test_partials_and_square_bank():
    t = ds.time_axis(0.2)
    ref = 0.5 * np.sin(2 * np.pi * 300 * t + 1.0) * ds.envelope(t, 0.05) + 0.25 * np.sin(2 * np.pi * 700 * t + 2.0) \
        * ds.envelope(t, 0.02)
    got = ds.partials(t, (300.0, 700.0), (0.5, 0.25), (0.05, 0.02), (1.0, 2.0))
    np.testing.assert_allclose(got, ref, atol=1e-12)
    bank = ds.square_bank(t, (205.3, 304.4, 369.6), (0.5, 1.0, 2.0))
    assert set(np.round(np.unique(bank) * 3).astype(int)) <= {-3, -1, 1, 3}  # the mean of three +-1 waves


def test_finish_fades_and_sets_the_peak():
    x = np.random.default_rng(1).standard_normal(10000)
    y = ds.finish(x, 0.7)
    assert y.dtype == np.float32 and y.size == x.size
    assert np.abs(y).max() == pytest.approx(0.7) and y[-1] == 0.0
    raw = ds.finish(x, 0.5, fade_s=0.0)
    np.testing.assert_allclose(raw, x * 0.5 / np.abs(x).max(), rtol=1e-6)
    assert not ds.finish(np.zeros(100)).any()
