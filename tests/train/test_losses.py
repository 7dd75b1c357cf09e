"""The MR-STFT loss and the IDM objective against an independent numpy implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from idm_host.train.losses import RESOLUTIONS, IDMLoss, MultiResolutionSTFTLoss, stft_magnitude


def np_stft_mag(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """Centred, reflect-padded STFT with a periodic Hann window (numpy only)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    if win < n_fft:
        left = (n_fft - win) // 2
        window = np.pad(window, (left, n_fft - win - left))
    xp = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    n_frames = 1 + (xp.size - n_fft) // hop
    frames = np.stack([xp[i * hop: i * hop + n_fft] * window for i in range(n_frames)], axis=1)
    spec = np.fft.rfft(frames, axis=0)
    return np.sqrt(np.maximum(spec.real ** 2 + spec.imag ** 2, 1e-8))


def np_mrstft(est: np.ndarray, ref: np.ndarray) -> float:
    total = 0.0
    for n_fft, hop, win in RESOLUTIONS:
        X = np.stack([np_stft_mag(e, n_fft, hop, win) for e in est])
        Y = np.stack([np_stft_mag(r, n_fft, hop, win) for r in ref])
        sc = np.linalg.norm(Y - X) / np.linalg.norm(Y)
        total += sc + np.mean(np.abs(np.log(X) - np.log(Y))) + np.mean(np.abs(X - Y))
    return total / len(RESOLUTIONS)


def test_stft_magnitude_matches_numpy():
    x = np.random.default_rng(0).standard_normal(5000)
    got = stft_magnitude(torch.from_numpy(x)[None], 512, 128, 512)[0].numpy()
    np.testing.assert_allclose(got, np_stft_mag(x, 512, 128, 512), rtol=1e-7, atol=1e-9)


def test_mrstft_matches_numpy_reference():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((2, 8000)) * np.exp(-np.arange(8000) / 3000)
    est = ref * 0.7 + 0.05 * rng.standard_normal((2, 8000))
    got = float(MultiResolutionSTFTLoss()(torch.from_numpy(est), torch.from_numpy(ref)))
    assert got == pytest.approx(np_mrstft(est, ref), rel=1e-9)
    assert got > 0.1
    assert float(MultiResolutionSTFTLoss()(torch.from_numpy(ref), torch.from_numpy(ref))) == 0.0


def test_idm_loss_terms():
    torch.manual_seed(0)
    mix = torch.randn(2, 4000, dtype=torch.float64)
    mix_hat = mix * 0.5
    logits = torch.randn(2, 9, 30, dtype=torch.float64)
    targets = (torch.rand(2, 9, 30) > 0.9).double()
    kit_logits = torch.randn(2, 3, dtype=torch.float64)
    kit_ids = torch.tensor([0, 2])
    terms = IDMLoss()(mix_hat, mix, logits, targets, kit_logits, kit_ids)
    p = 1 / (1 + np.exp(-logits.numpy()))
    bce = -np.mean(targets.numpy() * np.log(p) + (1 - targets.numpy()) * np.log(1 - p))
    kl = kit_logits.numpy()
    ce = np.mean([np.log(np.exp(kl[i]).sum()) - kl[i, kit_ids[i]] for i in range(2)])
    rec = np_mrstft(mix_hat.numpy(), mix.numpy())
    assert terms.onset == pytest.approx(bce, rel=1e-9)
    assert terms.kit == pytest.approx(ce, rel=1e-9)
    assert terms.reconstruction == pytest.approx(rec, rel=1e-9)
    assert float(terms.total) == pytest.approx(rec + 10 * bce + ce, rel=1e-9)
    no_kit = IDMLoss()(mix_hat, mix, logits, targets)
    assert float(no_kit.total) == pytest.approx(rec + 10 * bce, rel=1e-9) and no_kit.kit == 0.0
    with pytest.raises(ValueError, match="differ"):
        IDMLoss()(mix_hat, mix, logits, targets[:, :, :10])
