"""dsp functions against plain numpy references."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from idm_host.dsp import WienerFilter, peak_pick, place_hits


def peak_pick_reference(x, pre_max=8, post_max=8, pre_avg=17, post_avg=17, wait=10, delta=0.2):
    """A direct loop over the definition (IDM-SPEC.md 4.5)."""
    n = len(x)
    out = np.zeros(n, np.uint8)
    last = -np.inf
    for i in range(n):
        lo, hi = max(0, i - pre_max), min(n, i + post_max)
        alo, ahi = max(0, i - pre_avg), min(n, i + post_avg)
        if x[i] == x[lo:hi].max() and x[i] >= x[alo:ahi].mean() + delta and x[i] > 0 and i > last + wait:
            out[i] = 1
            last = i
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, width=32), min_size=1, max_size=300), st.integers(0, 3))
def test_peak_pick_matches_reference(values, seed):
    x = np.array(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if seed:  # sparse spikes, the common case
        x = np.where(rng.random(len(x)) < 0.05, rng.random(len(x)), 0.01)
    np.testing.assert_array_equal(peak_pick(x), peak_pick_reference(x))


def test_peak_pick_keeps_spikes_and_wait():
    x = np.zeros(100)
    x[[10, 15, 40]] = [0.9, 0.95, 0.8]
    got = np.flatnonzero(peak_pick(x))
    assert list(got) == [15, 40]  # 10 is not the window max of 15's neighbourhood


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.floats(0.01, 2)), max_size=20), st.integers(0, 2000),
       st.integers(1, 1500))
def test_place_hits_equals_convolution(hits, start, n):
    rng = np.random.default_rng(0)
    shot = rng.standard_normal(300).astype(np.float32)
    pos = np.array([h[0] for h in hits], dtype=np.int64)
    amp = np.array([h[1] for h in hits], dtype=np.float32)
    impulses = np.zeros(5000, np.float64)
    np.add.at(impulses, pos, amp)
    ref = np.convolve(impulses, shot.astype(np.float64))[start:start + n]
    got = place_hits(pos, amp, shot, n, start=start)
    np.testing.assert_allclose(got, np.pad(ref, (0, n - len(ref))), atol=1e-4)


def test_wiener_masks_sum_to_mixture_where_any_stem_sounds():
    rng = np.random.default_rng(1)
    mix = torch.from_numpy(rng.standard_normal((2, 20000)).astype(np.float32))
    stems = torch.from_numpy(rng.standard_normal((3, 20000)).astype(np.float32))
    out = WienerFilter().apply(mix, stems)
    assert out.shape == (3, 2, 20000)
    np.testing.assert_allclose(out.sum(0).numpy(), mix.numpy(), atol=1e-4)


def test_wiener_of_silent_stems_is_silent():
    mix = torch.ones(1, 5000)
    out = WienerFilter().apply(mix, torch.zeros(2, 5000))
    assert float(out.abs().max()) == 0.0
