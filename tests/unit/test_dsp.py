"""dsp functions against plain numpy references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from idm_host.dsp import WienerFilter, peak_pick, place_hits, wiener_masks


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


def _numpy_wiener(mix: np.ndarray, stems: np.ndarray, alpha: float, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Plain numpy reference: pad to the hop, reflect-pad by n_fft/2, Hann frames, rfft, masks
    |S_k|^alpha / sum, irfft, window, overlap-add, divide by the summed squared window, trim."""
    n = mix.shape[-1]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)

    def stft(x):
        x = np.pad(x, [(0, 0), (0, (-n) % hop)])
        x = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
        idx = np.arange(0, x.shape[-1] - n_fft + 1, hop)[:, None] + np.arange(n_fft)
        return np.fft.rfft(x[:, idx] * w, axis=-1)  # [B, frames, bins]

    s, xm = stft(stems.astype(np.float64)), stft(mix.astype(np.float64))
    p = np.abs(s) ** alpha
    m = p / (p.sum(0, keepdims=True) + 1e-12)
    frames = np.fft.irfft(m[:, None] * xm[None], n=n_fft, axis=-1) * w  # [K, C, frames, n_fft]
    total = (frames.shape[2] - 1) * hop + n_fft
    y, env = np.zeros(frames.shape[:2] + (total,)), np.zeros(total)
    for f in range(frames.shape[2]):
        y[..., f * hop:f * hop + n_fft] += frames[:, :, f]
        env[f * hop:f * hop + n_fft] += w * w
    keep = slice(n_fft // 2, n_fft // 2 + n)  # the centre padding off: the envelope is > 0 there
    return y[..., keep] / env[keep]


def _one_pass(wf: WienerFilter, mix: torch.Tensor, stems: torch.Tensor, alpha: float) -> torch.Tensor:
    """The masks in one pass through torch's STFT/iSTFT (the form WienerFilter.apply replaced)."""
    masks = wiener_masks(wf.stft(stems).abs(), alpha)  # [K, F, N]
    spec = wf.stft(mix)  # [C, F, N]
    k, c = masks.shape[0], spec.shape[0]
    return wf.istft((masks[:, None] * spec[None]).reshape(k * c, *spec.shape[1:]), mix.shape[-1]).reshape(k, c, -1)


@pytest.mark.parametrize("n, alpha", [(20000, 1.0), (20000, 2.0), (1500, 2.0), (700, 0.5)])
def test_wiener_filter_equals_a_plain_numpy_stft_mask_istft(n, alpha):
    """The chunked real-arithmetic form (WienerFilter.apply) against float64 numpy, and against the
    one-pass torch form. Tolerance: float32 (eps 1.2e-7) through a 1024-point FFT and its inverse
    (about 2 * log2(1024) roundings, each relative to the mixture's scale) and the mask division:
    3e-6 of the mixture's peak is about 25 eps, several times the error seen."""
    rng = np.random.default_rng(7)
    mix = rng.standard_normal((2, n)).astype(np.float32)
    stems = (rng.standard_normal((4, n)) * rng.uniform(0.01, 1.0, (4, 1))).astype(np.float32)
    wf = WienerFilter()
    wf.chunk_frames = 7  # chunk edges inside the signal, not at its ends
    got = wf.apply(torch.from_numpy(mix), torch.from_numpy(stems), alpha).numpy()
    ref = _numpy_wiener(mix, stems, alpha)
    tol = 3e-6 * float(np.abs(mix).max())
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
    one_pass = _one_pass(wf, torch.from_numpy(mix), torch.from_numpy(stems), alpha).numpy()
    np.testing.assert_allclose(got, one_pass, rtol=0, atol=tol)
    # a model change must show: masks from other stems give another result
    other = wf.apply(torch.from_numpy(mix), torch.from_numpy(stems[::-1].copy()), alpha).numpy()
    assert np.abs(other - ref).max() > 1000 * tol


def test_wiener_of_silent_stems_is_silent():
    mix = torch.ones(1, 5000)
    out = WienerFilter().apply(mix, torch.zeros(2, 5000))
    assert float(out.abs().max()) == 0.0


@pytest.mark.parametrize("n", [20000, 1500, 700])
def test_chunked_inverse_equals_torch_istft(n):
    """WienerFilter.istft_chunks (both maskers' inverse) against torch.istft on masked spectra of
    real signals, chunk edges inside the signal; same float32 tolerance as above."""
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((3, n)).astype(np.float32))
    wf = WienerFilter()
    wf.chunk_frames = 5
    spec = wf.stft(x)  # [3, F, N]
    spec = spec * torch.from_numpy(rng.uniform(0, 1, spec.shape).astype(np.float32))
    frame_major = spec.transpose(1, 2).contiguous()
    asked = []

    def chunk(f0, f1):
        asked.append((f0, f1))
        return frame_major[:, f0:f1]

    got = wf.istft_chunks(chunk, 3, spec.shape[-1], n).numpy()
    ref = wf.istft(spec, n).numpy()
    assert got.shape == ref.shape == (3, n)
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-6 * float(np.abs(x.numpy()).max()))
    assert asked[0][0] == 0 and asked[-1][1] == spec.shape[-1]
    assert all(a[1] == b[0] for a, b in zip(asked, asked[1:]))  # in order, each frame once
