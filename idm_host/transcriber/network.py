"""The transcription network: a small convolutional-recurrent net over the log-frequency spectrogram.

Convolution blocks (two 3x3 convolutions with batch norm and ReLU, then max-pooling by 3 along
frequency only, so time keeps its 10 ms resolution; two blocks in the shipped network, any number
in :class:`TranscriberConfig`) read local spectro-temporal patterns; a linear projection and two
bidirectional GRU layers read the rhythm around each frame; a linear head gives, per class and
frame, an onset logit, a velocity (0..1 after a sigmoid) and the onset's position inside the frame
(-0.5..0.5 frames after a scaled tanh), the last two only meaningful where an onset is.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn

from .features import N_BANDS


@dataclass(frozen=True)
class TranscriberConfig:
    """Sizes of :class:`CRNN`; stored with the weights so the network can be rebuilt."""

    classes: tuple[str, ...]
    n_bands: int = N_BANDS
    conv: tuple[int, ...] = (16, 32)
    proj: int = 128
    hidden: int = 96
    gru_layers: int = 2
    dropout: float = 0.15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TranscriberConfig":
        kw = dict(d)
        kw["classes"] = tuple(kw["classes"])
        if "conv" in kw:
            kw["conv"] = tuple(kw["conv"])
        return cls(**kw)


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.MaxPool2d((1, 3)), nn.Dropout(dropout),
    )


class CRNN(nn.Module):
    """``[B, 2, frames, bands]`` features -> ``dict(onset_logits, velocity, offset)``, each ``[B, K, frames]``."""

    def __init__(self, config: TranscriberConfig):
        super().__init__()
        self.config = config
        if not config.conv:
            raise ValueError("a transcriber needs at least one convolution block")
        chans = (2, *config.conv)
        self.conv = nn.Sequential(*(_block(a, b, config.dropout) for a, b in zip(chans, chans[1:])))
        bands_out = config.n_bands // 3 ** len(config.conv)
        if bands_out < 1:
            raise ValueError(f"{len(config.conv)} pooling blocks leave no band of {config.n_bands}")
        self.proj = nn.Sequential(nn.Linear(config.conv[-1] * bands_out, config.proj), nn.ReLU(),
                                  nn.Dropout(config.dropout))
        self.gru = nn.GRU(config.proj, config.hidden, num_layers=config.gru_layers, batch_first=True,
                          bidirectional=True, dropout=config.dropout if config.gru_layers > 1 else 0.0)
        k = len(config.classes)
        self.head = nn.Linear(2 * config.hidden, 3 * k)

    #: frames either side of a frame that :meth:`frames` reads (3x3 convolutions, two per block)
    @property
    def receptive_frames(self) -> int:
        return 2 * len(self.config.conv)

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.sequence(self.frames(feats))

    def frames(self, feats: torch.Tensor) -> torch.Tensor:
        """The frame-local front end: ``[B, 2, T, bands]`` features -> ``[B, T, proj]``. Frame ``t``
        depends on features ``t - receptive_frames .. t + receptive_frames`` only."""
        h = self.conv(feats)  # [B, C, T, F']
        b, c, t, f = h.shape
        return self.proj(h.permute(0, 2, 1, 3).reshape(b, t, c * f))

    def sequence(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """The recurrent layers and the heads: ``[B, T, proj]`` -> the outputs of :meth:`forward`."""
        h, _ = self.gru(h)
        out = self.head(h).transpose(1, 2)  # [B, 3K, T]
        k = len(self.config.classes)
        return {
            "onset_logits": out[:, :k],
            "velocity": torch.sigmoid(out[:, k:2 * k]),
            "offset": 0.5 * torch.tanh(out[:, 2 * k:]),
        }
