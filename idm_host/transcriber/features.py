"""The transcriber's input: a log-frequency magnitude spectrogram at 100 frames/s and its rise.

44.1 kHz mono -> STFT (2048-sample Hann window, hop 441 = 10 ms, centred) -> magnitudes summed
through triangular filters spaced 12 per octave from 30 Hz to 17 kHz (filters that would fall on
the same FFT bins at low frequency are merged, which leaves :data:`N_BANDS` bands) -> ``log1p``.
The second channel is the positive first difference along time (energy rising: onsets).

Frame ``f`` is centred on sample ``f * HOP``; a hit at ``t`` seconds belongs to frame
``round(t * FRAME_RATE)``.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 441
FRAME_RATE = SAMPLE_RATE / HOP  # 100.0
F_MIN = 30.0
F_MAX = 17000.0
BANDS_PER_OCTAVE = 12


@functools.lru_cache(maxsize=4)
def filterbank(n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, f_min: float = F_MIN, f_max: float = F_MAX,
               bands_per_octave: int = BANDS_PER_OCTAVE) -> np.ndarray:
    """Triangular log-spaced filters ``[n_fft // 2 + 1, bands]``, each normalised to unit area.

    Centre frequencies are ``f_min * 2 ** (i / bands_per_octave)``; each is rounded to its FFT bin
    and duplicates are dropped, so no two filters are the same at low frequency.
    """
    n_bins = n_fft // 2 + 1
    bin_hz = sample_rate / n_fft
    n = int(np.floor(bands_per_octave * np.log2(f_max / f_min))) + 1
    centres = f_min * 2.0 ** (np.arange(n) / bands_per_octave)
    bins = np.unique(np.round(centres / bin_hz).astype(np.int64))
    bins = bins[(bins > 0) & (bins < n_bins - 1)]
    fb = np.zeros((n_bins, len(bins) - 2), dtype=np.float32)
    for i in range(len(bins) - 2):
        lo, mid, hi = bins[i], bins[i + 1], bins[i + 2]
        fb[lo:mid + 1, i] = np.linspace(0.0, 1.0, mid - lo + 1)
        fb[mid:hi + 1, i] = np.linspace(1.0, 0.0, hi - mid + 1)
        if mid - lo == 0 or hi - mid == 0:  # pragma: no cover - unique bins prevent it
            fb[mid, i] = 1.0
        fb[:, i] /= fb[:, i].sum()
    return fb


N_BANDS: int = filterbank().shape[1]


def n_frames(n_samples: int) -> int:
    """Frames of a centred STFT of ``n_samples``: ``n_samples // HOP + 1``."""
    return int(n_samples) // HOP + 1


def spectrogram(x: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` float32 audio -> ``[B, 2, frames, N_BANDS]`` features (log bands, positive rise)."""
    if x.dim() == 1:
        x = x[None]
    window = torch.hann_window(N_FFT, dtype=x.dtype, device=x.device)
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    mag = spec.abs().transpose(1, 2)  # [B, frames, bins]
    fb = torch.from_numpy(filterbank()).to(x.device, x.dtype)
    bands = torch.log1p(mag @ fb * 10.0)
    rise = torch.relu(bands[:, 1:] - bands[:, :-1])
    rise = torch.cat([torch.zeros_like(bands[:, :1]), rise], dim=1)
    return torch.stack([bands, rise], dim=1)
