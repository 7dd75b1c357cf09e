"""Pure signal functions (no networks): peak picking, hit placement and synthetic stems, Wiener masking.

Each is tested against a plain numpy reference in tests/unit/test_dsp.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from .types import Kit, Transcription

#: Peak-picking windows (model frames) and threshold, from the official model (IDM-SPEC.md 4.5).
PRE_MAX = 8
POST_MAX = 8
PRE_AVG = 17
POST_AVG = 17
WAIT = 10
DELTA = 0.2


def peak_pick(
    p: np.ndarray,
    *,
    pre_max: int = PRE_MAX,
    post_max: int = POST_MAX,
    pre_avg: int = PRE_AVG,
    post_avg: int = POST_AVG,
    wait: int = WAIT,
    delta: float = DELTA,
    official_frame_quirk: bool = False,
    frame_rate: float = 44100 / 256,
) -> np.ndarray:
    """Pick onsets from probabilities, librosa ``peak_pick`` semantics.

    Frame ``n`` is a peak when ``p[n] == max(p[n-pre_max : n+post_max])`` and
    ``p[n] >= mean(p[n-pre_avg : n+post_avg]) + delta`` (windows clipped at the edges, end exclusive);
    scanning left to right, a peak closer than ``wait + 1`` frames to the previous one is dropped.

    Args:
        p: ``[K, M]`` (or ``[M]``) probabilities in 0..1.
        official_frame_quirk: reproduce the official code's float round trip
            ``floor((n / frame_rate) * frame_rate)``, which moves some peaks one frame early. Off by
            default: idm-host places every peak on its own frame.

    Returns:
        ``uint8`` array of ``p``'s shape, 1 at picked frames.
    """
    p = np.asarray(p, dtype=np.float64)
    squeeze = p.ndim == 1
    p2 = p[None, :] if squeeze else p
    k, m = p2.shape
    out = np.zeros((k, m), dtype=np.uint8)
    if m == 0:
        return out[0] if squeeze else out
    # moving max over [n - pre_max, n + post_max) (clipped)
    padded = np.pad(p2, ((0, 0), (pre_max, post_max)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max, axis=1)[:, : m]
    mov_max = win.max(axis=2)
    # moving mean over [n - pre_avg, n + post_avg) (clipped)
    csum = np.concatenate([np.zeros((k, 1)), np.cumsum(p2, axis=1)], axis=1)
    idx = np.arange(m)
    lo = np.clip(idx - pre_avg, 0, m)
    hi = np.clip(idx + post_avg, 0, m)
    mov_avg = (csum[:, hi] - csum[:, lo]) / (hi - lo)
    candidates = (p2 == mov_max) & (p2 >= mov_avg + delta) & (p2 > 0)
    for c in range(k):
        last = -np.inf
        for n in np.flatnonzero(candidates[c]):
            if n > last + wait:
                last = float(n)
                frame = int(np.floor((n / frame_rate) * frame_rate)) if official_frame_quirk else int(n)
                out[c, frame] = 1
    return out[0] if squeeze else out


def place_hits(
    positions: np.ndarray,
    amplitudes: np.ndarray,
    one_shot: np.ndarray,
    n_samples: int,
    *,
    start: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Sum ``amplitude * one_shot`` started at each sample position, in the window ``[start, start+n)``.

    The same as convolving an impulse train with ``one_shot`` (truncated, nothing wraps), computed
    sparsely: cost is proportional to the number of hits times the audible one-shot length.

    Args:
        positions: int sample positions (absolute).
        amplitudes: scale per hit.
        one_shot: ``[L]``.
        n_samples: output length.
        start: absolute sample position of the output's first sample.
        out: optional ``[n_samples]`` buffer to add into.
    """
    if out is None:
        out = np.zeros(n_samples, dtype=np.float32)
    length = one_shot.shape[-1]
    end = start + n_samples
    for pos, amp in zip(np.asarray(positions, dtype=np.int64), np.asarray(amplitudes, dtype=np.float32)):
        if pos >= end or pos + length <= start or amp == 0:
            continue
        a = max(pos, start)
        b = min(pos + length, end)
        out[a - start : b - start] += amp * one_shot[a - pos : b - pos]
    return out


def hit_arrays(tr: "Transcription", kit: "Kit", classes: Sequence[str], sample_rate: int
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class of ``classes``: the hits' sample positions ``round(time_s * sample_rate)`` (int64,
    sorted, stable) and amplitudes ``velocity * kit.velocity_scale * kit.gain(class)`` (float32)."""
    out = []
    for c in classes:
        hits = tr.hits.get(c, ())
        pos = np.array([int(round(h.time_s * sample_rate)) for h in hits], dtype=np.int64)
        amp = np.array([h.velocity for h in hits], dtype=np.float32)
        amp *= np.float32(kit.velocity_scale * kit.gain(c))
        order = np.argsort(pos, kind="stable")
        out.append((pos[order], amp[order]))
    return out


def synth_block(hits: list[tuple[np.ndarray, np.ndarray]], one_shots: np.ndarray, start: int, n: int
                ) -> tuple[np.ndarray, list[int]]:
    """Synthetic stems ``[K, n]`` for samples ``[start, start + n)`` from :func:`hit_arrays`' hits
    and one-shots ``[K, L]``, and the indices of the classes that sound there (the others are zero)."""
    out = np.zeros((len(hits), n), dtype=np.float32)
    length = one_shots.shape[1]
    active = []
    for ci, (pos, amp) in enumerate(hits):
        a = np.searchsorted(pos, start - length, side="right")
        b = np.searchsorted(pos, start + n, side="left")
        if b > a:
            place_hits(pos[a:b], amp[a:b], one_shots[ci], n, start=start, out=out[ci])
            if out[ci].any():
                active.append(ci)
    return out, active


def wiener_masks(stem_mags: torch.Tensor, alpha: float = 1.0, eps: float = 1e-12) -> torch.Tensor:
    """``|S_k|^alpha / (sum_j |S_j|^alpha + eps)`` over axis 0 of ``[K, ...]`` magnitudes."""
    powered = stem_mags if alpha == 1.0 else stem_mags.pow(alpha)
    return powered / (powered.sum(0, keepdim=True) + eps)


class WienerFilter:
    """Soft masks from synthetic stems applied to the real mixture (STFT 1024/256, Hann, centred).

    ``apply(mix [C, T], stems [K, T])`` -> ``[K, C, T]``. Signals are right-padded to a multiple of the
    hop first, as the official model does.
    """

    def __init__(self, n_fft: int = 1024, hop: int = 256, device: str | torch.device = "cpu"):
        if n_fft % hop:  # apply's overlap-add adds n_fft / hop whole hops per frame
            raise ValueError(f"n_fft {n_fft} must be a multiple of the hop {hop}")
        self.n_fft = n_fft
        self.hop = hop
        self.window = torch.hann_window(n_fft, periodic=True, device=device)

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        pad = (-x.shape[-1]) % self.hop
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
        mode = "reflect" if x.shape[-1] > self.n_fft // 2 else "constant"
        return torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, pad_mode=mode,
                          return_complex=True)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)

    #: frames masked and inverted at a time: the masked spectra of one chunk (stems x channels x
    #: bins x frames) stay in the CPU's cache instead of passing through memory several times
    chunk_frames = 24

    def istft_chunks(self, chunk: Callable[[int, int], torch.Tensor], rows: int, n_frames: int, n: int
                     ) -> torch.Tensor:
        """``rows`` signals ``[rows, n]`` from their spectra, ``chunk(f0, f1)`` giving frames ``f0..f1`` of
        all of them as complex ``[rows, f1 - f0, bins]`` (frame-major), asked for in order, :attr:`chunk_frames`
        at a time: the same as :meth:`istft` (inverse FFT, window, overlap-add, division by the summed
        squared window) within float32 rounding, without holding every row's whole spectrum, and
        much faster than ``torch.istft`` on the CPU."""
        hop, n_fft = self.hop, self.n_fft
        per_hop = n_fft // hop
        win = self.window
        acc = None
        for f0 in range(0, n_frames, self.chunk_frames):
            f1 = min(n_frames, f0 + self.chunk_frames)
            frames = torch.fft.irfft(chunk(f0, f1), n=n_fft, dim=-1)  # [rows, L, n_fft]
            if acc is None:
                acc = torch.zeros((rows, n_frames + per_hop - 1, hop), dtype=frames.dtype, device=frames.device)
                win = win.to(frames.dtype)
            frames *= win
            for j in range(per_hop):
                acc[:, f0 + j:f1 + j] += frames[:, :, j * hop:(j + 1) * hop]
        if acc is None:  # no frames
            return torch.zeros((rows, n), dtype=win.dtype, device=win.device)
        env = torch.zeros((n_frames + per_hop - 1, hop), dtype=acc.dtype, device=acc.device)
        w2 = (win * win).reshape(per_hop, hop)
        for j in range(per_hop):
            env[j:n_frames + j] += w2[j]
        start = n_fft // 2
        return acc.reshape(rows, -1)[:, start:start + n] / env.reshape(-1)[start:start + n]

    def apply(self, mix: torch.Tensor, stems: torch.Tensor, alpha: float = 1.0,
              active: list[int] | None = None) -> torch.Tensor:
        """Masked stems ``[K, C, T]`` of ``mix [C, T]`` from synthetic ``stems [K, T]``.

        The same as ``istft(wiener_masks(|stft(stems)|, alpha) * stft(mix))`` (torch's iSTFT:
        inverse FFT, window, overlap-add, division by the summed squared window), computed a chunk of
        frames at a time with real arithmetic: the masks multiply the real and imaginary parts, and
        for ``alpha == 2`` the power is ``re**2 + im**2`` without a square root. Equal to the
        one-pass form within float32 rounding (tests/unit/test_dsp.py).

        Args:
            active: indices of the stems that are not all zero. The others have zero masks, so they
                are neither transformed nor inverted (their output is zero); by default every stem
                is treated as active.
        """
        n = mix.shape[-1]
        k_all = stems.shape[0]
        idx = list(range(k_all)) if active is None else list(active)
        out = torch.zeros((k_all, mix.shape[0], n), dtype=mix.dtype, device=mix.device)
        if not idx:
            return out
        # frame-major spectra ([..., frames, bins], transposed once per call): a chunk of frames is then
        # contiguous, and the masked products come out in the layout the inverse FFT reads, with no
        # transposing copy per chunk (half the time of masking in the bins-major layout torch.stft gives)
        spec = self.stft(stems[idx]).transpose(1, 2).contiguous()  # [A, N, F]
        mix_spec = self.stft(mix).transpose(1, 2).contiguous()  # [C, N, F]
        a, c, n_frames = spec.shape[0], mix_spec.shape[0], spec.shape[1]

        def masked(f0: int, f1: int) -> torch.Tensor:
            if alpha == 2.0:
                re, im = torch.view_as_real(spec[:, f0:f1]).unbind(-1)
                p = re * re + im * im
            else:
                p = spec[:, f0:f1].abs()
                if alpha != 1.0:
                    p = p.pow(alpha)
            p /= p.sum(0, keepdim=True) + 1e-12  # the masks [A, L, F]
            return (p[:, None] * mix_spec[None, :, f0:f1]).reshape(a * c, f1 - f0, -1)  # complex

        y = self.istft_chunks(masked, a * c, n_frames, n)
        out[idx] = y.reshape(a, c, n)
        return out
