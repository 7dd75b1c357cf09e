"""The IDM encoder: log-mel front end, 2-D ConvNeXt over (mel, time), and its three heads.

Shapes: ``x [B, T]`` -> log-mel ``[B, n_mels, F]`` (F = ceil(T/hop) + 1) -> frame features
``z [B, M, latent]`` (M = F + 4 per downsampling layer) -> onset logits and velocities ``[B, K, M]``,
kit logits ``[B, n_kits]``, track gains ``[B, K]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import IDMConfig


def exp_sigmoid(u: torch.Tensor) -> torch.Tensor:
    """``2 * sigmoid(u) ** ln(10) + 1e-7``: a positive output in (1e-7, 2]."""
    return 2.0 * torch.sigmoid(u) ** math.log(10.0) + 1e-7


def htk_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular HTK-scale mel filters, unnormalised: ``[n_freqs, n_mels]``."""

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    f_pts = mel_to_hz(m_pts)
    widths = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).to(torch.float32)


class LogMel(nn.Module):
    """Right-pad to a multiple of ``hop``, power mel spectrogram (centred, reflect), natural log."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        self.n_fft = cfg.n_fft
        self.hop = cfg.hop
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)
        fb = htk_mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.f_max)
        self.register_buffer("filterbank", fb, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T]`` -> ``[B, n_mels, ceil(T/hop) + 1]``."""
        pad = (-x.shape[-1]) % self.hop
        if pad:
            x = F.pad(x, (0, pad))
        # reflect padding needs more than n_fft/2 samples; tiny inputs fall back to zeros
        mode = "reflect" if x.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=True, pad_mode=mode, return_complex=True
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(1, 2), self.filterbank).transpose(1, 2)
        return torch.log(mel + 1e-6)


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, H, W]``."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 -> LayerNorm -> 4x pointwise MLP (GELU) -> layer scale -> residual."""

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, 4 * dim)
        self.project = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x).permute(0, 2, 3, 1)
        y = self.project(F.gelu(self.expand(self.norm(y))))
        return x + (self.layer_scale * y).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """ConvNeXt over (mel, time) that downsamples mel only; each downsampling adds 4 frames in time."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        dims, k = cfg.dims, cfg.kernel_size
        self.stem = nn.Conv2d(1, dims[0], k, stride=(4, 1), padding=(0, k // 2))
        self.stem_norm = ChannelNorm(dims[0])
        self.down_norms = nn.ModuleList(ChannelNorm(dims[i]) for i in range(len(dims) - 1))
        self.downs = nn.ModuleList(
            nn.Conv2d(dims[i], dims[i + 1], 3, stride=(2, 1), padding=(0, 3)) for i in range(len(dims) - 1)
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(d, k) for _ in range(n))) for d, n in zip(dims, cfg.depths)
        )
        self.out_norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, F]`` -> ``z [B, M, latent]``."""
        x = self.stem_norm(self.stem(log_mel[:, None]))
        x = self.stages[0](x)
        for norm, down, stage in zip(self.down_norms, self.downs, self.stages[1:]):
            x = stage(down(norm(x)))
        return self.out_norm(x.mean(2).transpose(1, 2))


class TranscriptionHead(nn.Module):
    """``z [B, M, D]`` -> onset logits and exp-sigmoid velocities, each ``[B, K, M]``."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        d = cfg.latent
        self.conv = nn.Conv1d(d, d, cfg.head_kernel, padding=cfg.head_kernel // 2)
        self.onset = nn.Linear(d, cfg.n_classes)
        self.velocity = nn.Linear(d, cfg.n_classes)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.conv(z.transpose(1, 2))).transpose(1, 2)
        return self.onset(h).transpose(1, 2), exp_sigmoid(self.velocity(h)).transpose(1, 2)


class KitClassifier(nn.Module):
    """``z [B, M, D]`` -> kit logits ``[B, n_kits]`` (LayerNorm, mean over time, 2-layer MLP)."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        d = cfg.latent
        self.norm = nn.LayerNorm(d, eps=1e-5)
        self.hidden = nn.Linear(d, d)
        self.out = nn.Linear(d, cfg.n_kits)

    def pooled(self, z: torch.Tensor) -> torch.Tensor:
        """The time-summed normalised features ``[B, D]`` (sums let chunked runs add up)."""
        return self.norm(z).sum(1)

    def head(self, pooled_mean: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(pooled_mean)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(z).mean(1))


class TrackGains(nn.Module):
    """One 3-layer MLP per class on the time-mean of z: ``[B, D]`` -> gains ``[B, K]`` in (0, 2].

    The K MLPs are held as stacked weights ``[K, out, in]`` and run as one batched product.
    """

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        k, d, h = cfg.n_classes, cfg.latent, cfg.gain_hidden
        self.w1 = nn.Parameter(torch.empty(k, h, d))
        self.b1 = nn.Parameter(torch.zeros(k, h))
        self.w2 = nn.Parameter(torch.empty(k, h, h))
        self.b2 = nn.Parameter(torch.zeros(k, h))
        self.w3 = nn.Parameter(torch.empty(k, 1, h))
        self.b3 = nn.Parameter(torch.zeros(k, 1))
        for w in (self.w1, self.w2, self.w3):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)

    def forward(self, zbar: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(torch.einsum("khd,bd->bkh", self.w1, zbar) + self.b1, 0.01)
        h = F.leaky_relu(torch.einsum("kgh,bkh->bkg", self.w2, h) + self.b2, 0.01)
        return exp_sigmoid((torch.einsum("koh,bkh->bko", self.w3, h) + self.b3)[..., 0])
