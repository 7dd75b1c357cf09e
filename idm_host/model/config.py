"""The IDM model's hyper-parameters (IDM-SPEC.md), as a plain dataclass that round-trips to JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from ..classes import IDM_CLASSES
from ..errors import ModelError

#: Kit names of the official checkpoint, in kit-id order.
OFFICIAL_KITS: tuple[str, ...] = ("brooklyn", "heavy", "east_bay", "retro_rock", "socal", "portland")


@dataclass(frozen=True)
class IDMConfig:
    """Everything needed to rebuild an IDM network.

    Attributes (units in names): ``sample_rate`` Hz; ``hop`` samples per model frame; ``one_shot_s``
    one-shot length in seconds; ``envelope_scale`` the envelope's maximum decay per second / 2.
    """

    classes: tuple[str, ...] = IDM_CLASSES
    kits: tuple[str, ...] = OFFICIAL_KITS
    sample_rate: int = 44100
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 22050.0
    dims: tuple[int, ...] = (4, 8, 16, 32)
    depths: tuple[int, ...] = (3, 3, 9, 3)
    kernel_size: int = 7
    head_kernel: int = 7
    synth_channels: int = 48
    synth_kernel: int = 15
    synth_blocks: int = 12
    dilation_base: int = 2
    one_shot_s: float = 1.0
    envelope_scale: float = 20.0
    gain_hidden: int = 8
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_kits(self) -> int:
        return len(self.kits)

    @property
    def latent(self) -> int:
        return self.dims[-1]

    @property
    def one_shot_len(self) -> int:
        return int(round(self.one_shot_s * self.sample_rate))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def embedding_size(self) -> int:
        """Size of the synthesiser's conditioning vector: one-hot class + kit embedding."""
        return self.n_classes + self.n_kits

    def n_model_frames(self, n_samples: int) -> int:
        """M for an input of ``n_samples``: ceil(T / hop) + 1 mel frames, plus 4 per downsampling."""
        return -(-n_samples // self.hop) + 1 + 4 * (len(self.dims) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "IDMConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"model config has unknown keys {sorted(unknown)}; is it from a newer idm-host?")
        kw = {}
        for k, v in data.items():
            kw[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)
