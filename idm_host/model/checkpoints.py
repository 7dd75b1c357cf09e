"""Weights: the project's own format, and the converter from the official Lightning checkpoint.

Our format is a torch file holding only plain types and tensors, read with ``weights_only=True``::

    {"format": "idm-host-weights", "format_version": 1, "config": {...}, "classes": [...],
     "sample_rate": 44100, "state_dict": {...}, "source": {...}}

The model is rebuilt from ``config``; no class is ever pickled.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ModelError
from ..fsutil import atomic_write_bytes
from .config import IDMConfig, OFFICIAL_KITS
from .idm import IDM

FORMAT = "idm-host-weights"
FORMAT_VERSION = 1

#: sha256 of the official ``idm-44-train-kits`` checkpoint (pretrained/idm-44-train-kits/...).
OFFICIAL_SHA256 = "5856a9bee7c6d503842795756d238dc8470f6f3e010e9e4f33ede0362850cb4c"

_IGNORED_OFFICIAL = {
    "conditioning_vector",
    "encoder.transform.mel_transform.spectrogram.window",
    "encoder.transform.mel_transform.mel_scale.fb",
}

# (official key regex, our key template); groups are substituted into the template.
_RENAMES: list[tuple[str, str]] = [
    (r"encoder\.backbone\.downsample_layers\.0\.0\.(weight|bias)", "backbone.stem.{0}"),
    (r"encoder\.backbone\.downsample_layers\.0\.1\.(weight|bias)", "backbone.stem_norm.{0}"),
    (r"encoder\.backbone\.downsample_layers\.([123])\.0\.(weight|bias)", "backbone.down_norms.{0-1}.{1}"),
    (r"encoder\.backbone\.downsample_layers\.([123])\.1\.(weight|bias)", "backbone.downs.{0-1}.{1}"),
    (r"encoder\.backbone\.stages\.(\d+)\.(\d+)\.gamma", "backbone.stages.{0}.{1}.layer_scale"),
    (r"encoder\.backbone\.stages\.(\d+)\.(\d+)\.dwconv\.(weight|bias)", "backbone.stages.{0}.{1}.depthwise.{2}"),
    (r"encoder\.backbone\.stages\.(\d+)\.(\d+)\.norm\.(weight|bias)", "backbone.stages.{0}.{1}.norm.{2}"),
    (r"encoder\.backbone\.stages\.(\d+)\.(\d+)\.pwconv1\.(weight|bias)", "backbone.stages.{0}.{1}.expand.{2}"),
    (r"encoder\.backbone\.stages\.(\d+)\.(\d+)\.pwconv2\.(weight|bias)", "backbone.stages.{0}.{1}.project.{2}"),
    (r"encoder\.backbone\.norm\.(weight|bias)", "backbone.out_norm.{0}"),
    (r"encoder\.pooling\.norm\.(weight|bias)", "kit_classifier.norm.{0}"),
    (r"encoder\.pooling\.classifier\.0\.(weight|bias)", "kit_classifier.hidden.{0}"),
    (r"encoder\.pooling\.classifier\.2\.(weight|bias)", "kit_classifier.out.{0}"),
    (r"encoder\.transcription_head\.conv\.(weight|bias)", "transcription.conv.{0}"),
    (r"encoder\.transcription_head\.onset_mlp\.(weight|bias)", "transcription.onset.{0}"),
    (r"encoder\.transcription_head\.velocity_mlp\.(weight|bias)", "transcription.velocity.{0}"),
    (r"decoder\.sample_synth\.scale", "synth.envelope_scale"),
    (r"decoder\.sample_synth\.tcn\.in_projection\.(weight|bias)", "synth.inp.{0}"),
    (r"decoder\.sample_synth\.tcn\.out_projection\.(weight|bias)", "synth.out.{0}"),
    (r"decoder\.sample_synth\.tcn\.net\.(\d+)\.net\.2\.(weight|bias)", "synth.blocks.{0}.conv.{1}"),
    (r"decoder\.sample_synth\.tcn\.net\.(\d+)\.film\.net\.(weight|bias)", "synth.blocks.{0}.film.{1}"),
    (r"decoder\.sample_synth\.tcn\.net\.(\d+)\.residual\.(weight|bias)", "synth.blocks.{0}.residual.{1}"),
    (r"decoder\.sample_synth\.emb_to_gain_latent\.0\.(weight|bias)", "synth.env_hidden.{0}"),
    (r"decoder\.sample_synth\.emb_to_gain_latent\.2\.(weight|bias)", "synth.env_out.{0}"),
]
_GAIN_KEY = re.compile(
    r"decoder\.processors\.latent_to_params\.latent_mlps\.gain\.(\d+)\.(\d)\.0\.(weight|bias)"
)


def _rename(key: str) -> str | None:
    for pattern, template in _RENAMES:
        m = re.fullmatch(pattern, key)
        if m:
            groups = m.groups()
            out = template
            for i, g in enumerate(groups):
                if "{%d-1}" % i in out:
                    out = out.replace("{%d-1}" % i, str(int(g) - 1))
                out = out.replace("{%d}" % i, g)
            return out
    return None


def convert_official_state_dict(official: Mapping[str, torch.Tensor], cfg: IDMConfig | None = None
                                ) -> dict[str, torch.Tensor]:
    """Map the official checkpoint's ``state_dict`` onto :class:`IDM`'s parameter names.

    Raises:
        ModelError: keys are missing, unknown, or of the wrong shape.
    """
    cfg = cfg or IDMConfig()
    ours: dict[str, torch.Tensor] = {}
    gains: dict[tuple[int, int, str], torch.Tensor] = {}
    unknown = []
    for key, value in official.items():
        if key in _IGNORED_OFFICIAL:
            continue
        m = _GAIN_KEY.fullmatch(key)
        if m:
            gains[(int(m.group(1)), int(m.group(2)), m.group(3))] = value
            continue
        new = _rename(key)
        if new is None:
            unknown.append(key)
        else:
            ours[new] = value
    if unknown:
        raise ModelError(f"official checkpoint has unexpected keys {unknown[:5]}; is it an IDM checkpoint?")
    k = cfg.n_classes
    try:
        for layer in range(3):
            ours[f"track_gains.w{layer + 1}"] = torch.stack([gains[(c, layer, "weight")] for c in range(k)])
            ours[f"track_gains.b{layer + 1}"] = torch.stack([gains[(c, layer, "bias")] for c in range(k)])
    except KeyError as exc:
        raise ModelError(f"official checkpoint lacks track-gain weights {exc}") from exc
    reference = IDM(cfg).state_dict()
    missing = sorted(set(reference) - set(ours))
    if missing:
        raise ModelError(f"official checkpoint lacks weights for {missing[:5]}")
    for name, tensor in ours.items():
        if name not in reference:
            raise ModelError(f"converted weight {name} has no place in the model")
        if tuple(tensor.shape) != tuple(reference[name].shape):
            raise ModelError(
                f"official weight for {name} has shape {tuple(tensor.shape)}, expected {tuple(reference[name].shape)}"
            )
    return {name: ours[name].to(torch.float32).contiguous() for name in reference}


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the official Lightning checkpoint's ``state_dict`` (``weights_only=True``)."""
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: cannot read as a torch checkpoint ({exc})") from exc
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return state


def weights_blob(model: IDM, *, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    cfg = model.config
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "classes": list(cfg.classes),
        "kits": list(cfg.kits),
        "sample_rate": cfg.sample_rate,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "source": dict(source or {}),
    }


def save_weights(model: IDM, path: str | Path, *, source: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> Path:
    """Write ``model`` in the project's weight format, atomically."""
    buf = io.BytesIO()
    torch.save(weights_blob(model, source=source), buf)
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)


def load_weights(path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[IDM, dict[str, Any]]:
    """Rebuild a model from the project's weight format. Returns ``(model in eval mode, metadata)``.

    Raises:
        ModelError: the file is missing, unreadable, of another format, or from a newer idm-host.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: model file not found")
    try:
        blob = torch.load(str(p), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ModelError(f"{p}: cannot read model weights ({exc}); the file may be corrupt") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        if isinstance(blob, dict) and "state_dict" in blob and "format" not in blob:
            raise ModelError(
                f"{p}: this is an official IDM checkpoint, not idm-host weights; "
                "install it with `idm-host models import PATH`"
            )
        raise ModelError(f"{p}: not an idm-host weights file")
    if int(blob.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{p}: weights format {blob['format_version']} is newer than this idm-host; update it")
    cfg = IDMConfig.from_dict(blob["config"])
    model = IDM(cfg)
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{p}: weights do not fit the model described in the file ({exc})") from exc
    model.eval()
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return model, meta


def convert_official(path: str | Path) -> IDM:
    """Build an :class:`IDM` from the official checkpoint file."""
    cfg = IDMConfig(kits=OFFICIAL_KITS)
    model = IDM(cfg)
    model.load_state_dict(convert_official_state_dict(read_official_checkpoint(path), cfg), strict=True)
    return model.eval()
