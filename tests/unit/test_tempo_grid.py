"""Tempo estimate and grid quantisation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from idm_host.errors import IdmError
from idm_host.tempo import Tempo, estimate_tempo, grid_step_s, grid_times, parse_grid, quantize, snap
from idm_host.types import Hit


def _pattern(bpm, offset, bars=8, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    b = 60.0 / bpm
    j = lambda: rng.normal(0, jitter) if jitter else 0.0  # noqa: E731
    kd = [offset + (4 * i + k) * b + j() for i in range(bars) for k in (0, 2.5)]
    sd = [offset + (4 * i + k) * b + j() for i in range(bars) for k in (1, 3)]
    hh = [offset + i * b / 2 + j() for i in range(bars * 8)]
    return {"KD": [Hit(max(t, 0), 0.9) for t in kd], "SD": [Hit(max(t, 0), 0.8) for t in sd],
            "HH_CHH": [Hit(max(t, 0), 0.5) for t in hh]}


@pytest.mark.parametrize("bpm, offset", [(90.0, 0.0), (100.0, 0.37), (120.0, 1.2), (128.0, 0.05), (140.0, 0.6)])
def test_estimate_bpm_and_downbeat(bpm, offset):
    t = estimate_tempo(_pattern(bpm, offset, jitter=0.003))
    assert t.bpm == pytest.approx(bpm, abs=0.5) and t.estimated
    bar = 4 * 60.0 / bpm
    d = (t.downbeat_s - offset) % bar
    assert min(d, bar - d) < 0.015


def test_estimate_with_few_hits():
    t = estimate_tempo({"KD": [Hit(0.5)]})
    assert t.bpm == 120.0 and t.downbeat_s == 0.5
    assert estimate_tempo({}).bpm == 120.0


def test_grids():
    t = Tempo(120.0)
    assert [grid_step_s(t, g) for g in ("1/4", "1/8", "1/16", "1/32")] == [0.5, 0.25, 0.125, 0.0625]
    assert grid_step_s(t, "1/8T") == pytest.approx(0.25 * 2 / 3)
    assert grid_step_s(t, "1/8", triplet=True) == pytest.approx(1 / 6)
    assert parse_grid("1/16t").label == "1/16T"
    for bad in ("1/3", "1/64", "quarter", "2/4"):
        with pytest.raises(IdmError, match="1/4, 1/8, 1/16 or 1/32"):
            parse_grid(bad)


def test_quantize_strength_and_swing():
    t = Tempo(120.0, downbeat_s=0.1)
    np.testing.assert_allclose(quantize([0.16, 0.33], t, "1/8"), [0.1, 0.35])
    np.testing.assert_allclose(quantize([0.16, 0.33], t, "1/8", strength=0.5), [0.13, 0.34])
    np.testing.assert_allclose(quantize([0.16], t, "1/8", strength=0.0), [0.16])
    # swing 2/3 on 1/8: odd eighths move to the triplet position (1/3 of a step later)
    np.testing.assert_allclose(grid_times(0.1, 1.1, t, "1/8", swing=2 / 3), [0.1, 0.35 + 0.25 / 3, 0.6, 0.85 + 0.25 / 3, 1.1])
    assert snap(0.42, t, "1/8", swing=2 / 3) == pytest.approx(0.35 + 0.25 / 3)
    assert snap(0.01, Tempo(120.0, 0.2), "1/4") == 0.0 or snap(0.01, Tempo(120.0, 0.2), "1/4") >= 0.0
    for bad in (dict(strength=1.5), dict(swing=1.0), dict(strength=float("nan"))):
        with pytest.raises(IdmError):
            quantize([0.1], t, "1/8", **bad)


def test_tempo_validation():
    for bad in (dict(bpm=0), dict(bpm=1000), dict(bpm=float("nan")), dict(downbeat_s=-1), dict(beats_per_bar=0)):
        with pytest.raises(IdmError):
            Tempo(**{"bpm": 120.0, **bad})
    assert Tempo.from_dict(Tempo(97.0, 0.5, 3, False).to_dict()) == Tempo(97.0, 0.5, 3, False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 60), min_size=1, max_size=20), st.floats(60, 200), st.floats(0, 2),
       st.sampled_from(["1/4", "1/8", "1/16", "1/32", "1/8T", "1/16T"]), st.floats(0, 0.9))
def test_full_quantize_lands_on_the_nearest_grid_point(times, bpm, downbeat, grid, swing):
    t = Tempo(bpm, downbeat)
    q = quantize(times, t, grid, swing=swing)
    step = grid_step_s(t, grid)
    for x, y in zip(times, q):
        pts = grid_times(x - 2 * step, x + 2 * step, t, grid, swing=swing)
        p = pts[np.argmin(np.abs(pts - x))]
        if p >= 0:
            assert abs(y - x) <= abs(p - x) + 1e-9  # the nearest point (either one on a tie)
            assert np.min(np.abs(pts - y)) < 1e-9
        else:
            assert y == 0.0  # clipped at the start of the audio
    np.testing.assert_allclose(quantize(q, t, grid, swing=swing), q, atol=1e-9)  # idempotent
