"""The Inverse Drum Machine: composition of encoder, heads, synthesiser and sequencer."""
from __future__ import annotations

import torch
from torch import nn

from ..progress import ProgressCallback
from .config import IDMConfig
from .encoder import ConvNeXt, KitClassifier, LogMel, TrackGains, TranscriptionHead
from .sequencer import sequence
from .synth import OneShotSynth


class IDM(nn.Module):
    """The IDM network. Methods state tensor shapes; B batch, K classes, M model frames, L one-shot.

    Example:
        >>> model = IDM(IDMConfig())
        >>> out = model.encode(torch.zeros(1, 44100))
        >>> tuple(out["onset_logits"].shape)
        (1, 9, 186)
    """

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        self.config = cfg
        self.log_mel = LogMel(cfg)
        self.backbone = ConvNeXt(cfg)
        self.transcription = TranscriptionHead(cfg)
        self.kit_classifier = KitClassifier(cfg)
        self.track_gains = TrackGains(cfg)
        self.synth = OneShotSynth(cfg)

    # ------------------------------------------------------------------ encoder side
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frame-wise outputs: ``x [B, T]`` -> log_mel ``[B, n_mels, F]``, z ``[B, M, D]``,
        onset_logits and velocity ``[B, K, M]``."""
        log_mel = self.log_mel(x)
        z = self.backbone(log_mel)
        logits, velocity = self.transcription(z)
        return {"log_mel": log_mel, "z": z, "onset_logits": logits, "velocity": velocity}

    def global_heads(self, z_mean: torch.Tensor, z_norm_mean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clip-level outputs from time means: kit logits/embedding ``[B, n_kits]``, gains ``[B, K]``.

        Args:
            z_mean: mean over frames of z ``[B, D]`` (track gains).
            z_norm_mean: mean over frames of LayerNorm(z) ``[B, D]`` (kit classifier).
        """
        kit_logits = self.kit_classifier.head(z_norm_mean)
        return {
            "kit_logits": kit_logits,
            "kit_embedding": torch.softmax(kit_logits, dim=-1),
            "track_gains": self.track_gains(z_mean),
        }

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x [B, T]`` (mono, model rate) -> features plus clip-level heads."""
        out = self.features(x)
        z = out["z"]
        out.update(self.global_heads(z.mean(1), self.kit_classifier.norm(z).mean(1)))
        return out

    # ------------------------------------------------------------------ decoder side
    def conditioning(self, kit_embedding: torch.Tensor) -> torch.Tensor:
        """``[B, n_kits]`` -> ``[B, K, K + n_kits]``: one-hot class next to the kit embedding."""
        b, k = kit_embedding.shape[0], self.config.n_classes
        eye = torch.eye(k, device=kit_embedding.device, dtype=kit_embedding.dtype)
        return torch.cat([eye.expand(b, k, k), kit_embedding[:, None, :].expand(b, k, -1)], dim=-1)

    def synthesize(self, kit_embedding: torch.Tensor, noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None,
                   progress: ProgressCallback | None = None) -> torch.Tensor:
        """One-shots ``[B, K, L]`` from the kit embedding and noise ``[B, K, L]`` (drawn if None);
        ``progress(fraction, message)`` is called after each synthesiser block and may raise to stop."""
        b, k, n = kit_embedding.shape[0], self.config.n_classes, self.config.one_shot_len
        if noise is None:
            noise = torch.randn(b, k, n, generator=generator, device=kit_embedding.device)
        cond = self.conditioning(kit_embedding).reshape(b * k, -1)
        shots = self.synth(noise.reshape(b * k, -1), cond, groups=b, progress=progress)
        return shots.reshape(b, k, -1)

    def sequence(self, activations: torch.Tensor, one_shots: torch.Tensor, track_gains: torch.Tensor,
                 n_samples: int | None = None) -> torch.Tensor:
        """Synthetic stems ``[B, K, n_samples]`` from activations ``[B, K, M]`` (onset x velocity)."""
        return sequence(activations, one_shots, track_gains, self.config.hop, n_samples)

    def forward(self, x: torch.Tensor, onsets: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Training pass with ground-truth sequencing: binary ``onsets [B, K, M]`` x predicted velocity.

        Returns the encoder outputs plus ``one_shots [B, K, L]``, ``stems [B, K, T]`` and
        ``mix [B, T]``.
        """
        out = self.encode(x)
        shots = self.synthesize(out["kit_embedding"], noise, generator)
        stems = self.sequence(onsets * out["velocity"], shots, out["track_gains"], x.shape[-1])
        out.update(one_shots=shots, stems=stems, mix=stems.sum(1))
        return out
