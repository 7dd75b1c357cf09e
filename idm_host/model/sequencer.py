"""The sequencer: activations at the model frame rate convolved with one-shots (a drum machine).

``track_k = a_up[k] * s_k`` where ``a_up`` is ``a`` with ``hop - 1`` zeros inserted after every frame,
truncated to the first ``hop * M`` samples; nothing wraps.
"""
from __future__ import annotations

import torch


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def zero_insert(a: torch.Tensor, hop: int) -> torch.Tensor:
    """``[..., M]`` -> ``[..., hop * M]`` with ``a[m]`` at index ``hop * m``."""
    out = a.new_zeros(a.shape[:-1] + (a.shape[-1] * hop,))
    out[..., ::hop] = a
    return out


def fft_convolve(signal: torch.Tensor, kernel: torch.Tensor, n_out: int) -> torch.Tensor:
    """Linear convolution along the last axis, first ``n_out`` samples; FFT padded to a power of 2."""
    n = next_pow2(signal.shape[-1] + kernel.shape[-1] - 1)
    spec = torch.fft.rfft(signal, n) * torch.fft.rfft(kernel, n)
    return torch.fft.irfft(spec, n)[..., :n_out]


def sequence(activations: torch.Tensor, one_shots: torch.Tensor, track_gains: torch.Tensor,
             hop: int, n_samples: int | None = None) -> torch.Tensor:
    """Synthetic stems.

    Args:
        activations: ``[B, K, M]`` onset x velocity per model frame.
        one_shots: ``[B, K, L]``.
        track_gains: ``[B, K]``.
        hop: samples per model frame.
        n_samples: trim to this many samples (default ``hop * M``).

    Returns:
        ``[B, K, n_samples]``.
    """
    up = zero_insert(activations, hop)
    n_out = up.shape[-1] if n_samples is None else min(n_samples, up.shape[-1])
    return fft_convolve(up, one_shots, n_out) * track_gains[..., None]
