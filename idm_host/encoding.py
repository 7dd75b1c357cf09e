"""The encoder's outputs for one input (:class:`Encoded`) and what the engine reads from them.

* :func:`run_encoder`: the IDM encoder over a mono signal of any length, in overlapping chunks
  whose kept frames equal an unchunked run, plus the time-averaged heads (kit embedding, track gains);
* :func:`picked_transcription`: peak-picked hits on the model's frame grid;
* :func:`level_matched`: the track gains rescaled so that the transcription network's velocities
  (MIDI scale) play the one-shots at the level the IDM head would have.

:class:`idm_host.engine.Separator` drives these; the model is passed in, never imported here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .dsp import peak_pick
from .progress import ProgressCallback, Stage
from .types import MODEL_VELOCITY_SCALE, Hit, Transcription


@dataclass(frozen=True)
class Encoded:
    """The encoder's outputs for one input.

    Attributes:
        probabilities: onset probabilities ``[K, M]``.
        velocity: model velocities ``[K, M]`` in (0, 2].
        kit_logits: ``[n_kits]``.
        kit_embedding: softmax of the kit logits ``[n_kits]``.
        track_gains: ``[K]``.
        n_samples: input length at the model rate.
        input_gain: factor the model input was scaled by (peak normalisation), 1.0 if none.
    """

    probabilities: np.ndarray
    velocity: np.ndarray
    kit_logits: np.ndarray
    kit_embedding: np.ndarray
    track_gains: np.ndarray
    n_samples: int
    input_gain: float


def run_encoder(model: Any, x: np.ndarray, *, chunk: int, overlap: int, device: Any, normalize: bool = True,
                progress: ProgressCallback | None = None) -> Encoded:
    """Run ``model``'s encoder on the mono float32 signal ``x`` (model rate).

    Args:
        model: an :class:`idm_host.model.IDM` (on ``device``, in eval mode).
        chunk: chunk core length (samples, a multiple of the hop).
        overlap: samples borrowed on each side of a chunk (a multiple of the hop).
        normalize: peak-normalise the input first (recorded as ``Encoded.input_gain``).
    """
    import torch

    n = x.shape[0]
    gain = 1.0
    if normalize:
        peak = float(np.abs(x).max())
        if peak > 0:
            gain = 1.0 / peak
    cfg = model.config
    hop = cfg.hop
    m_total = cfg.n_model_frames(n)
    k = cfg.n_classes
    logits = np.zeros((k, m_total), dtype=np.float32)
    velocity = np.zeros((k, m_total), dtype=np.float32)
    z_sum = torch.zeros(cfg.latent, dtype=torch.float64)
    zn_sum = torch.zeros(cfg.latent, dtype=torch.float64)
    starts = list(range(0, n, chunk)) or [0]
    stage = Stage(progress)
    with torch.inference_mode():
        for i, start in enumerate(starts):
            end = min(n, start + chunk)
            seg_a = max(0, start - overlap)
            seg_b = min(n, end + overlap)
            seg = torch.from_numpy(np.ascontiguousarray(x[seg_a:seg_b]) * np.float32(gain))
            out = model.features(seg[None].to(device))
            off = seg_a // hop
            lo = start // hop
            hi = m_total if i == len(starts) - 1 else end // hop
            sl = slice(lo - off, hi - off)
            logits[:, lo:hi] = out["onset_logits"][0, :, sl].float().cpu().numpy()
            velocity[:, lo:hi] = out["velocity"][0, :, sl].float().cpu().numpy()
            z = out["z"][0, sl].double().cpu()
            z_sum += z.sum(0)
            zn_sum += model.kit_classifier.norm(out["z"][0, sl]).double().cpu().sum(0)
            stage((i + 1) / len(starts), "transcribing")
        heads = model.global_heads(
            (z_sum / m_total).float()[None].to(device), (zn_sum / m_total).float()[None].to(device)
        )
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    return Encoded(
        probabilities=probs,
        velocity=velocity,
        kit_logits=heads["kit_logits"][0].float().cpu().numpy(),
        kit_embedding=heads["kit_embedding"][0].float().cpu().numpy(),
        track_gains=heads["track_gains"][0].float().cpu().numpy(),
        n_samples=n,
        input_gain=gain,
    )


def picked_transcription(enc: Encoded, classes: Sequence[str], hop: int, sample_rate: int, *,
                         official_frame_quirk: bool = False) -> Transcription:
    """Peak-pick ``enc`` into a :class:`Transcription` (hits on their model frame, inside the audio only)."""
    picks = peak_pick(enc.probabilities, official_frame_quirk=official_frame_quirk)
    classes = tuple(classes)
    hits: dict[str, tuple[Hit, ...]] = {}
    for ci, c in enumerate(classes):
        frames = np.flatnonzero(picks[ci])
        frames = frames[frames * hop < enc.n_samples]
        hits[c] = tuple(
            Hit(float(f * hop / sample_rate), float(min(1.0, enc.velocity[ci, f] / MODEL_VELOCITY_SCALE)))
            for f in frames
        )
    return Transcription(classes, hits, enc.n_samples / sample_rate)


def level_matched(enc: Encoded, tr: Transcription, classes: Sequence[str], hop: int, sample_rate: int) -> Encoded:
    """``enc`` with its track gains rescaled so that ``tr``'s velocities (MIDI scale) play the
    one-shots at the level the IDM head would have: per class, the median of ``head velocity /
    (scale * v)`` over the hits the head also sees (onset probability >= 0.5 within 2 frames); a
    class with fewer than 3 such hits takes the median over all classes (0.4 when there is none)."""
    gains = enc.track_gains.astype(np.float32).copy()
    ratios_all: list[float] = []
    per: dict[int, list[float]] = {}
    m = enc.velocity.shape[1]
    for ci, c in enumerate(classes):
        for h in tr.hits.get(c, ()):
            f = int(round(h.time_s * sample_rate / hop))
            lo, hi = max(0, f - 2), min(m, f + 3)
            if lo >= hi or h.velocity <= 0:
                continue
            j = lo + int(np.argmax(enc.probabilities[ci, lo:hi]))
            if enc.probabilities[ci, j] >= 0.5:
                r = float(enc.velocity[ci, j]) / (MODEL_VELOCITY_SCALE * h.velocity)
                per.setdefault(ci, []).append(r)
                ratios_all.append(r)
    fallback = float(np.median(ratios_all)) if ratios_all else 0.4
    for ci in range(len(classes)):
        gains[ci] *= np.float32(np.median(per[ci]) if len(per.get(ci, ())) >= 3 else fallback)
    return dataclasses.replace(enc, track_gains=gains)
