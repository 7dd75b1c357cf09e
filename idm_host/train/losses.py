"""The IDM training objective (IDM-SPEC.md section 8).

``total = MR-STFT(mix_hat, mix) + 10 * BCEWithLogits(onset_logits, onset_targets) + CE(kit_logits, kit_id)``

The multi-resolution STFT loss averages four resolutions (fft, hop, win) = (2048, 512, 2048),
(1024, 256, 1024), (512, 128, 512), (256, 64, 256); each is spectral convergence
``||Y - X||_F / ||Y||_F`` (over the whole batch) + mean ``|log X - log Y|`` + mean ``|X - Y|``, with
magnitudes ``sqrt(max(re^2 + im^2, 1e-8))`` of a periodic-Hann, centred (reflect-padded) STFT.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: (n_fft, hop, win) of the four resolutions.
RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((2048, 512, 2048), (1024, 256, 1024), (512, 128, 512), (256, 64, 256))
MAG_EPS = 1e-8
ONSET_WEIGHT = 10.0
KIT_WEIGHT = 1.0


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """``x [B, T]`` -> ``[B, n_fft // 2 + 1, frames]``: ``sqrt(max(|X|^2, 1e-8))``."""
    window = torch.hann_window(win, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.sqrt(torch.clamp(spec.real ** 2 + spec.imag ** 2, min=MAG_EPS))


class STFTLoss(nn.Module):
    """One resolution: spectral convergence + log-magnitude L1 + linear-magnitude L1."""

    def __init__(self, n_fft: int, hop: int, win: int):
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop, win

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = stft_magnitude(estimate, self.n_fft, self.hop, self.win)
        y = stft_magnitude(target, self.n_fft, self.hop, self.win)
        sc = torch.linalg.vector_norm(y - x) / torch.linalg.vector_norm(y)
        log_mag = F.l1_loss(torch.log(x), torch.log(y))
        lin_mag = F.l1_loss(x, y)
        return sc + log_mag + lin_mag


class MultiResolutionSTFTLoss(nn.Module):
    """The mean of :class:`STFTLoss` over ``resolutions``; inputs ``[B, T]`` (or ``[B, 1, T]``).

    Example:
        >>> loss = MultiResolutionSTFTLoss()
        >>> x = torch.randn(2, 44100)
        >>> float(loss(x, x)) == 0.0
        True
    """

    def __init__(self, resolutions: Sequence[tuple[int, int, int]] = RESOLUTIONS):
        super().__init__()
        self.losses = nn.ModuleList(STFTLoss(*r) for r in resolutions)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if estimate.dim() == 3:
            estimate, target = estimate.flatten(0, 1), target.flatten(0, 1)
        if estimate.shape != target.shape:
            raise ValueError(f"estimate {tuple(estimate.shape)} and target {tuple(target.shape)} differ in shape")
        return sum(l(estimate, target) for l in self.losses) / len(self.losses)


@dataclass
class LossTerms:
    """The loss and its parts (the parts detached, for logging)."""

    total: torch.Tensor
    reconstruction: float
    onset: float
    kit: float

    def as_dict(self) -> dict[str, float]:
        return {"loss": float(self.total.detach()), "reconstruction": self.reconstruction,
                "onset_bce": self.onset, "kit_ce": self.kit}


class IDMLoss(nn.Module):
    """``MR-STFT + 10 * onset BCE + kit CE``.

    Inputs: ``mix_hat``, ``mix`` ``[B, T]``; ``onset_logits``, ``onset_targets`` ``[B, K, M]``
    (targets binary); ``kit_logits [B, n_kits]``; ``kit_ids [B]`` (long). ``kit_ids`` may be ``None``
    (no kit supervision, e.g. a single user kit), which drops the CE term.
    """

    def __init__(self, onset_weight: float = ONSET_WEIGHT, kit_weight: float = KIT_WEIGHT,
                 resolutions: Sequence[tuple[int, int, int]] = RESOLUTIONS):
        super().__init__()
        self.mrstft = MultiResolutionSTFTLoss(resolutions)
        self.onset_weight = onset_weight
        self.kit_weight = kit_weight

    def forward(self, mix_hat: torch.Tensor, mix: torch.Tensor, onset_logits: torch.Tensor,
                onset_targets: torch.Tensor, kit_logits: torch.Tensor | None = None,
                kit_ids: torch.Tensor | None = None) -> LossTerms:
        if onset_logits.shape != onset_targets.shape:
            raise ValueError(f"onset logits {tuple(onset_logits.shape)} and targets {tuple(onset_targets.shape)} differ")
        rec = self.mrstft(mix_hat, mix)
        bce = F.binary_cross_entropy_with_logits(onset_logits, onset_targets)
        total = rec + self.onset_weight * bce
        ce_value = 0.0
        if kit_logits is not None and kit_ids is not None and self.kit_weight:
            ce = F.cross_entropy(kit_logits, kit_ids)
            total = total + self.kit_weight * ce
            ce_value = float(ce.detach())
        return LossTerms(total, float(rec.detach()), float(bce.detach()), ce_value)
