"""The dedicated transcription network: drum hits and velocities from a mix.

IDM's analysis-by-synthesis keeps the kit and the stems; the hits come from here. The network
(:mod:`.network`, a small CRNN over a log-frequency spectrogram, :mod:`.features`) is trained
supervised on rendered hits and velocities (``idm_host.train.transcriber_loop``). A
:class:`Transcriber` runs it on any length of audio in overlapping windows, picks peaks with a
per-class threshold, places each hit inside its 10 ms frame with the network's offset output, and
maps velocities through a per-class calibration; thresholds and calibration live in the model's
JSON sidecar.

Example:
    >>> tr = Transcriber.load("default")                  # doctest: +SKIP
    >>> hits = tr.transcribe(audio)  # a Transcription    # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..classes import GROUPS as GROUP_SYMBOLS, group_of
from ..errors import IdmError, ModelError
from ..progress import ProgressCallback, Stage
from ..types import Audio, Hit, Transcription
from .features import FRAME_RATE, HOP, SAMPLE_RATE, n_frames, spectrogram
from .levels import hit_levels, level_velocities
from .network import CRNN, TranscriberConfig

FORMAT = "idm-host-transcriber"
FORMAT_VERSION = 1
#: Inference window and the context kept on either side of it (s).
WINDOW_S = 20.0
CONTEXT_S = 3.0
#: Windows run through the network together (memory ~ 20 MB per window).
BATCH_WINDOWS = 8
#: The lowest velocity another transcriber's hit takes from the network (MIDI velocity 1: 0 is a note-off).
MIN_VELOCITY = 1.0 / 127.0
#: Two picks of one class are at least this far apart (frames of 10 ms).
MIN_GAP_FRAMES = 3
DEFAULT_THRESHOLD = 0.5

__all__ = ["Transcriber", "TranscriberConfig", "Calibration", "blend", "head_on_frames", "pick_peaks", "save_transcriber"]


@dataclass(frozen=True)
class Calibration:
    """Per-class decision thresholds and velocity maps (``v_out = clip(a * v + b, 0, 1)``), and the
    inference window they were fitted with (``window_s`` / ``context_s``; ``None``: the module's
    :data:`WINDOW_S` / :data:`CONTEXT_S`). Thresholds hold only for the window they were fitted
    with, so the window is part of the calibration (and of the ship gate's digest)."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    velocity: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    window_s: float | None = None
    context_s: float | None = None
    #: per class, the weight of the network's onset probability against the IDM head's (1: the
    #: network's alone); used only with the IDM model whose sha256 is ``head_sha256`` (see :func:`blend`)
    blend: Mapping[str, float] = field(default_factory=dict)
    head_sha256: str | None = None
    #: per class, ``(gamma, lam)``: how the recording's band levels reshape its velocities
    #: (:func:`.levels.level_velocities`; absent: the velocity head's alone)
    levels: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: per drum group (``"TT"``, ``"CY"``, ...), a threshold on the summed onset probability of the
    #: group's classes: the group's hits are its peaks, each given to the class most probable there
    #: (:meth:`Transcriber.picks`; absent: each class picked on its own threshold)
    groups: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, c: str) -> float:
        return float(self.thresholds.get(c, DEFAULT_THRESHOLD))

    def map_velocity(self, c: str, v: np.ndarray) -> np.ndarray:
        a, b = self.velocity.get(c, (1.0, 0.0))
        return np.clip(a * np.asarray(v, dtype=np.float64) + b, 0.0, 1.0)

    def window(self) -> tuple[float, float]:
        """``(window_s, context_s)`` the network runs in."""
        return (float(self.window_s if self.window_s is not None else WINDOW_S),
                float(self.context_s if self.context_s is not None else CONTEXT_S))

    def with_window(self, window_s: float | None = None, context_s: float | None = None) -> "Calibration":
        """This calibration run in another window (``None`` keeps this one's); checked as a sidecar's."""
        win = window_s if window_s is not None else self.window_s
        ctx = context_s if context_s is not None else self.context_s
        if win is None and ctx is None:
            return replace(self, window_s=None, context_s=None)
        win, ctx = _checked_window(win, ctx)
        return replace(self, window_s=win, context_s=ctx)

    def with_blend(self, blend: Mapping[str, float], head_sha256: str | None) -> "Calibration":
        """This calibration with the IDM head of the model ``head_sha256`` blended in (``{}``: none)."""
        b = {str(k): float(v) for k, v in blend.items()}
        bad = [k for k, v in b.items() if not 0.0 <= v <= 1.0]
        if bad:
            raise ModelError(f"transcriber blend for {bad[0]} is {b[bad[0]]}; blend weights lie in 0..1")
        if any(v < 1.0 for v in b.values()) and not head_sha256:
            raise ModelError("a transcriber blend needs the sha256 of the IDM model whose head it blends")
        return replace(self, blend=b, head_sha256=head_sha256 if b else None)

    def uses_head(self, model_sha256: str | None) -> bool:
        """Whether a separator of the IDM model ``model_sha256`` blends its head into the network's."""
        return bool(self.head_sha256) and self.head_sha256 == model_sha256 and any(
            v < 1.0 for v in self.blend.values())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"thresholds": {k: float(v) for k, v in self.thresholds.items()},
                             "velocity": {k: [float(a), float(b)] for k, (a, b) in self.velocity.items()}}
        if self.window_s is not None or self.context_s is not None:  # absent: older sidecars' digests hold
            d["window_s"], d["context_s"] = self.window()
        if self.blend:
            d["blend"] = {k: float(v) for k, v in self.blend.items()}
            d["head_sha256"] = self.head_sha256
        if self.levels:
            d["levels"] = {k: [float(g), float(lam)] for k, (g, lam) in self.levels.items()}
        if self.groups:
            d["groups"] = {k: float(v) for k, v in self.groups.items()}
        return d

    def with_groups(self, groups: Mapping[str, float]) -> "Calibration":
        """This calibration with group thresholds (``{}``: none): each named group (one of the 5
        groups' symbols) is picked on its classes' summed onset probability at that threshold, in (0, 1)."""
        out: dict[str, float] = {}
        for k, v in groups.items():
            try:
                t = float(v)
            except (TypeError, ValueError):
                raise ModelError(f"transcriber group threshold for {k}: {v!r} is not a number") from None
            if str(k) not in GROUP_SYMBOLS or not 0.0 < t < 1.0:
                raise ModelError(f"transcriber group threshold for {k} is {t}; groups are "
                                 f"{', '.join(GROUP_SYMBOLS)}, thresholds lie in (0, 1)")
            out[str(k)] = t
        return replace(self, groups=out)

    def with_levels(self, levels: Mapping[str, tuple[float, float]]) -> "Calibration":
        """This calibration with per-class ``(gamma, lam)`` level maps (:mod:`.levels`; ``{}``: none);
        gamma lies in (0, 4], lam in 0..1 (a lam of 0 is dropped: it changes nothing)."""
        out: dict[str, tuple[float, float]] = {}
        for k, v in levels.items():
            try:
                g, lam = (float(v[0]), float(v[1]))
            except (TypeError, ValueError, IndexError, KeyError):
                raise ModelError(f"transcriber levels for {k}: {v!r} is not a (gamma, lam) pair") from None
            if not (0.0 < g <= 4.0 and 0.0 <= lam <= 1.0):
                raise ModelError(f"transcriber levels for {k} are gamma {g}, lam {lam}; gamma lies in (0, 4], "
                                 "lam in 0..1")
            if lam > 0.0:
                out[str(k)] = (g, lam)
        return replace(self, levels=out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Calibration":
        d = d or {}
        thr = {str(k): float(v) for k, v in (d.get("thresholds") or {}).items()}
        vel = {str(k): (float(v[0]), float(v[1])) for k, v in (d.get("velocity") or {}).items()}
        for k, t in thr.items():
            if not 0.0 < t < 1.0:
                raise ModelError(f"transcriber threshold for {k} is {t}; thresholds lie in (0, 1)")
        try:
            blend = {str(k): float(v) for k, v in (d.get("blend") or {}).items()}
        except (TypeError, ValueError, AttributeError):
            raise ModelError(f"transcriber blend {d.get('blend')!r}: not a class -> weight table") from None
        head = d.get("head_sha256")
        levels = d.get("levels") or {}
        if not isinstance(levels, Mapping):
            raise ModelError(f"transcriber levels {levels!r}: not a class -> [gamma, lam] table")
        groups = d.get("groups") or {}
        if not isinstance(groups, Mapping):
            raise ModelError(f"transcriber groups {groups!r}: not a group -> threshold table")
        return cls(thr, vel).with_window(d.get("window_s"), d.get("context_s")).with_blend(
            blend, str(head) if head else None).with_levels(levels).with_groups(groups)


def _checked_window(window_s: Any, context_s: Any) -> tuple[float, float]:
    """``(window_s, context_s)`` as floats (``None``: :data:`WINDOW_S` / :data:`CONTEXT_S`), or
    :class:`ModelError` outside 0.5-600 s / 0-60 s."""
    try:
        win = float(window_s if window_s is not None else WINDOW_S)
        ctx = float(context_s if context_s is not None else CONTEXT_S)
    except (TypeError, ValueError):
        raise ModelError(f"transcriber window {window_s!r} / context {context_s!r}: not numbers") from None
    if not (0.5 <= win <= 600.0 and 0.0 <= ctx <= 60.0):
        raise ModelError(f"transcriber window {win} s / context {ctx} s: the window lies in 0.5-600 s, "
                         "the context in 0-60 s")
    return win, ctx


def pick_peaks(prob: np.ndarray, threshold: float, min_gap: int = MIN_GAP_FRAMES) -> np.ndarray:
    """Frames where ``prob`` is a local maximum (the first of a plateau) at or above ``threshold``,
    greedily keeping the higher of two picks closer than ``min_gap`` frames."""
    p = np.asarray(prob, dtype=np.float32)
    if p.size == 0:
        return np.zeros(0, dtype=np.int64)
    left = np.concatenate([[-np.inf], p[:-1]])
    right = np.concatenate([p[1:], [-np.inf]])
    cand = np.flatnonzero((p >= threshold) & (p > left) & (p >= right))
    if cand.size < 2:
        return cand.astype(np.int64)
    taken = np.zeros(p.size, dtype=bool)  # frames within min_gap of a kept pick
    keep: list[int] = []
    for f in cand[np.argsort(-p[cand], kind="stable")]:
        if not taken[f]:
            keep.append(int(f))
            taken[max(0, f - min_gap + 1):f + min_gap] = True
    return np.array(sorted(keep), dtype=np.int64)


class Transcriber:
    """A loaded transcription network with its calibration.

    Args:
        network: the :class:`~.network.CRNN`.
        calibration: thresholds and velocity maps.
        name: for messages and provenance.
        sha256: of the weights file, if loaded from one.
        device: torch device.
    """

    def __init__(self, network: CRNN, calibration: Calibration | None = None, *, name: str = "transcriber",
                 sha256: str = "", device: str | torch.device = "cpu"):
        self.network = network.to(device).eval()
        self.config = network.config
        self.classes: tuple[str, ...] = tuple(network.config.classes)
        self.calibration = calibration or Calibration()
        self.name = name
        self.sha256 = sha256
        self.device = torch.device(device)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
             calibration: Calibration | None = None) -> "Transcriber":
        """Load weights saved by :func:`save_transcriber`; the sidecar ``<path>.json`` (same stem)
        gives the calibration and the sha256 the weights must have."""
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: transcriber weights not found")
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        side = p.with_suffix(".json")
        meta: dict[str, Any] = {}
        if side.is_file():
            try:
                meta = json.loads(side.read_text())
            except (OSError, ValueError) as exc:
                raise ModelError(f"{side}: unreadable transcriber sidecar ({exc})") from exc
            if meta.get("sha256") and meta["sha256"] != digest:
                raise ModelError(f"{p}: sha256 {digest[:12]}... does not match its sidecar {side.name}; "
                                 "the weights were changed or damaged")
        import io

        try:
            blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise ModelError(f"{p}: not a transcriber weights file ({exc})") from exc
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ModelError(f"{p}: not an idm-host transcriber file")
        if int(blob.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(f"{p}: transcriber format {blob['format_version']} is newer than this idm-host "
                             f"reads ({FORMAT_VERSION}); upgrade idm-host")
        net = CRNN(TranscriberConfig.from_dict(blob["config"]))
        net.load_state_dict(blob["state_dict"])
        cal = calibration if calibration is not None else Calibration.from_dict(meta.get("calibration"))
        return cls(net, cal, name=p.stem, sha256=digest, device=device)

    # ------------------------------------------------------------------ inference
    def activations(self, x: np.ndarray, *, progress: ProgressCallback | None = None) -> dict[str, np.ndarray]:
        """Frame-wise outputs for mono 44.1 kHz ``x``: ``prob``, ``velocity``, ``offset``, each ``[K, T]``.

        Long inputs run in windows of the calibration's ``window_s`` (default :data:`WINDOW_S`) with
        ``context_s`` (:data:`CONTEXT_S`) of context on each side; each frame is taken from the
        window where it is farthest from an edge. Windows near the length the network trained on
        (6 s clips) make its frames depend less on audio far away (MODEL_CARD.md, session 8).
        """
        x = np.asarray(x, dtype=np.float32)
        n = x.shape[-1]
        t_total = n_frames(n)
        k = len(self.classes)
        out = {name: np.zeros((k, t_total), dtype=np.float32) for name in ("prob", "velocity", "offset")}
        window_s, context_s = self.calibration.window()
        win = int(round(window_s * FRAME_RATE))
        ctx = int(round(context_s * FRAME_RATE))
        starts = list(range(0, t_total, win)) or [0]
        stage = Stage(progress)
        # windows of equal length (win + 2 ctx frames, zero-padded at the file's ends) run through the
        # recurrent layers as one batch: their time steps are sequential, so batching windows is what
        # makes them fast. The frame-local front end (features, convolutions) runs once per group of
        # windows over the frames they span, not once per window: the context frames are computed once
        span = win + 2 * ctx
        margin = self.network.receptive_frames + 8  # frames a segment's edges reach (STFT centring, rise)
        xp = np.concatenate([np.zeros((ctx + margin) * HOP, dtype=np.float32), x,
                             np.zeros((span + margin + 1) * HOP, dtype=np.float32)])
        with torch.inference_mode():
            for b0 in range(0, len(starts), BATCH_WINDOWS):
                group = starts[b0:b0 + BATCH_WINDOWS]
                g0, g1 = group[0], group[-1] + span  # padded frames the group spans
                seg = xp[g0 * HOP: g0 * HOP + (g1 - g0 + 2 * margin - 1) * HOP + 1]
                front = self.network.frames(spectrogram(torch.from_numpy(seg[None]).to(self.device)))
                front = front[0, margin: margin + g1 - g0]
                res = self.network.sequence(torch.stack([front[f0 - g0: f0 - g0 + span] for f0 in group]))
                prob = torch.sigmoid(res["onset_logits"]).cpu().numpy()
                vel = res["velocity"].cpu().numpy()
                off = res["offset"].cpu().numpy()
                for j, f0 in enumerate(group):
                    f1 = min(t_total, f0 + win)
                    sl = slice(ctx, ctx + f1 - f0)
                    out["prob"][:, f0:f1] = prob[j, :, sl]
                    out["velocity"][:, f0:f1] = vel[j, :, sl]
                    out["offset"][:, f0:f1] = off[j, :, sl]
                stage(min(1.0, (b0 + len(group)) / len(starts)), "transcribing")
        return out

    def transcription_from(self, act: Mapping[str, np.ndarray], n_samples: int,
                           thresholds: Mapping[str, float] | None = None) -> Transcription:
        """Hits from :meth:`activations`: :meth:`picks`, placed inside their frame."""
        duration = n_samples / SAMPLE_RATE
        hits: dict[str, list[Hit]] = {}
        picked = self.picks(act["prob"], thresholds=thresholds)
        for ci, c in enumerate(self.classes):
            frames = picked[c][0]
            times = (frames + act["offset"][ci, frames]) / FRAME_RATE
            vel = self.calibration.map_velocity(c, act["velocity"][ci, frames])
            keep = (times >= 0) & (times < duration)
            hits[c] = [Hit(float(t), float(v)) for t, v in zip(times[keep], vel[keep])]
        return Transcription(self.classes, hits, duration)

    def picks(self, prob: np.ndarray, *, thresholds: Mapping[str, float] | None = None,
              shift: float = 0.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per class, the frames of its hits in onset probabilities ``prob [K, N]`` and the value
        each was decided on, its decision threshold lowered by ``shift``. A class picks the peaks
        of its own probability over its threshold (``thresholds`` overrides the calibration's); the
        classes of a group the calibration names (``groups``) share the peaks of their summed
        probability (at most 1) over the group's threshold, each peak going to the class most
        probable within a frame of it: a drum heard but split between two of its group's classes
        (a ride heard half as a crash, a tom between two sizes) is found, as the one it most sounds like."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for g, gt in self.calibration.groups.items():
            idx = self.group_members(g)
            if not idx:
                continue
            sub = prob[idx]
            total = np.minimum(sub.sum(axis=0), 1.0)
            frames = pick_peaks(total, gt - shift)
            n = sub.shape[1]
            near = np.max([sub[:, np.clip(frames + d, 0, n - 1)] for d in (-1, 0, 1)], axis=0)
            who = np.argmax(near, axis=0) if frames.size else np.zeros(0, dtype=np.int64)
            for j, i in enumerate(idx):
                f = frames[who == j]
                out[self.classes[i]] = (f, total[f])
        for ci, c in enumerate(self.classes):
            if c not in out:
                thr = thresholds[c] if thresholds is not None and c in thresholds else self.calibration.threshold(c)
                f = pick_peaks(prob[ci], thr - shift)
                out[c] = (f, prob[ci, f])
        return out

    def group_members(self, group: str) -> list[int]:
        """The indices of this network's classes in drum group ``group`` when there are two or more
        (a group :meth:`picks` can pick as one), else none."""
        idx = [i for i, c in enumerate(self.classes) if group_of(c) == group]
        return idx if len(idx) >= 2 else []

    def decision_threshold(self, c: str) -> float:
        """The threshold class ``c``'s hits are decided on: its group's when the calibration picks its
        group as one (:meth:`picks`), else its own."""
        g = group_of(c)
        if g in self.calibration.groups and self.group_members(g):
            return float(self.calibration.groups[g])
        return self.calibration.threshold(c)

    def transcribe(self, audio: Audio | np.ndarray, *, progress: ProgressCallback | None = None,
                   head: tuple[np.ndarray, int, int] | None = None) -> Transcription:
        """Hits of ``audio`` (an :class:`Audio` at 44.1 kHz, or a mono/``(channels, frames)`` array
        at 44.1 kHz); the mix is peak-normalised first, as in training. ``head``: the IDM head's
        ``(probabilities, hop, sample_rate)`` for this audio, blended in as the calibration says
        (the caller checks :meth:`Calibration.uses_head`)."""
        x = self.input_of(audio)
        return self.hits_from(self.activations(x, progress=progress), x, head=head)

    def input_of(self, audio: Audio | np.ndarray) -> np.ndarray:
        """What :meth:`activations` runs on for ``audio``: its mono mix at 44.1 kHz, peak-normalised."""
        x = audio.mono() if isinstance(audio, Audio) else np.asarray(audio, dtype=np.float32)
        if isinstance(audio, Audio) and audio.sample_rate != SAMPLE_RATE:
            raise IdmError(f"the transcriber needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz; resample first")
        if x.ndim == 2:
            x = x.mean(axis=0)
        return normalise(x)

    def hits_from(self, act: Mapping[str, np.ndarray], x: np.ndarray,
                  head: tuple[np.ndarray, int, int] | None = None) -> Transcription:
        """The hits of ``x`` (:meth:`input_of`) from its activations ``act``: :meth:`transcription_from`
        after blending in ``head``, velocities through the level maps (:meth:`with_levels`; see
        :meth:`transcribe`)."""
        return self.with_levels(x, self.transcription_from(self.blended(act, head), x.shape[-1]))

    def with_velocities(self, act: Mapping[str, np.ndarray], tr: Transcription, *, reach: int = 2) -> Transcription:
        """``tr``'s hits (found by another transcriber: the IDM head) with this network's calibrated
        velocities from :meth:`activations` ``act``: each hit takes the velocity of the frame within
        ``reach`` frames of it where the class's onset probability peaks (the velocity head learnt
        its values at onsets), at least :data:`MIN_VELOCITY` (a hit found stays audible). Times and
        the hits themselves are kept; classes this network lacks keep their velocities."""
        prob, vel = act["prob"], act["velocity"]
        n = prob.shape[1]
        hits: dict[str, tuple[Hit, ...]] = {}
        for c in tr.classes:
            if c not in self.classes or not tr.hits[c]:
                hits[c] = tuple(tr.hits[c])
                continue
            ci = self.classes.index(c)
            frames = np.array([min(n - 1, max(0, int(round(h.time_s * FRAME_RATE)))) for h in tr.hits[c]])
            best = frames.copy()
            for i, f in enumerate(frames):
                lo, hi = max(0, f - reach), min(n, f + reach + 1)
                best[i] = lo + int(np.argmax(prob[ci, lo:hi]))
            v = np.maximum(self.calibration.map_velocity(c, vel[ci, best]), MIN_VELOCITY)
            hits[c] = tuple(Hit(h.time_s, float(x)) for h, x in zip(tr.hits[c], v))
        return Transcription(tr.classes, hits, tr.duration_s)

    def with_levels(self, x: np.ndarray, tr: Transcription) -> Transcription:
        """``tr`` (hits of mono 44.1 kHz ``x``, this network's or another transcriber's) with each
        class's velocities reshaped by the hits' band levels in ``x`` as the calibration's
        ``levels`` say (:mod:`.levels`): the class's median velocity in this recording stays, the
        spread around it follows how loud each hit is. Times are kept; classes without a level map
        keep their velocities. Only ever applied to transcribed hits, never to a user's own."""
        if not self.calibration.levels:
            return tr
        hits: dict[str, tuple[Hit, ...]] = {}
        for c in tr.classes:
            gl = self.calibration.levels.get(c)
            if gl is None or not tr.hits[c]:
                hits[c] = tuple(tr.hits[c])
                continue
            times = [h.time_s for h in tr.hits[c]]
            v = level_velocities(np.array([h.velocity for h in tr.hits[c]]), hit_levels(x, times, c),
                                 gl[0], gl[1], MIN_VELOCITY)
            hits[c] = tuple(Hit(h.time_s, float(u)) for h, u in zip(tr.hits[c], v))
        return Transcription(tr.classes, hits, tr.duration_s)

    def blended(self, act: Mapping[str, np.ndarray], head: tuple[np.ndarray, int, int] | None
                ) -> Mapping[str, np.ndarray]:
        """``act`` with the IDM head's ``(probabilities, hop, sample_rate)`` blended in as the
        calibration says (:func:`blend`); ``act`` itself when ``head`` is ``None``."""
        if head is None:
            return act
        prob, hop, rate = head
        return blend(act, head_on_frames(prob, hop, rate, act["prob"].shape[1]), self.classes, self.calibration.blend)


def head_on_frames(probabilities: np.ndarray, hop: int, sample_rate: int, n_frames_out: int) -> np.ndarray:
    """The IDM head's onset probabilities ``[K, M]`` (model frames of ``hop`` samples at
    ``sample_rate``) on the network's 10 ms frames ``[K, n_frames_out]``: each frame takes the highest
    probability of the model frames nearest to it (side by side, 0 ms lag correlates best)."""
    p = np.asarray(probabilities, dtype=np.float32)
    out = np.zeros((p.shape[0], n_frames_out), dtype=np.float32)
    idx = np.floor(np.arange(p.shape[1]) * (hop * FRAME_RATE / sample_rate) + 0.5).astype(np.int64)
    ok = idx < n_frames_out
    for k in range(p.shape[0]):
        np.maximum.at(out[k], idx[ok], p[k, ok])
    return out


def blend(act: Mapping[str, np.ndarray], head: np.ndarray, classes: Sequence[str],
          weights: Mapping[str, float]) -> dict[str, np.ndarray]:
    """:meth:`Transcriber.activations` with each class's onset probability ``w * network + (1 - w) *
    head`` (``head`` from :func:`head_on_frames`; ``w`` from ``weights``, 1 where absent): two
    transcribers that err in different places, averaged. Velocities and offsets stay the network's."""
    w = np.array([float(weights.get(c, 1.0)) for c in classes], dtype=np.float32)[:, None]
    out = dict(act)
    out["prob"] = w * act["prob"] + (1.0 - w) * head[:, : act["prob"].shape[1]]
    return out


def normalise(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Peak-normalise to ``peak`` (silence stays silence)."""
    x = np.asarray(x, dtype=np.float32)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(m):
        raise IdmError("the audio holds NaN or infinite samples")
    return x * np.float32(peak / m) if m > 1e-9 else x


def save_transcriber(path: str | os.PathLike, network: CRNN, *, calibration: Calibration | None = None,
                     extra: Mapping[str, Any] | None = None, overwrite: bool = True) -> str:
    """Write ``path`` (weights) and its sidecar ``path.with_suffix('.json')`` atomically; returns the sha256."""
    import io

    from ..fsutil import atomic_write_bytes, atomic_write_text

    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "config": network.config.to_dict(),
                "state_dict": state}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    p = Path(path)
    atomic_write_bytes(p, data, overwrite=overwrite)
    meta = {"format": FORMAT, "sha256": digest, "classes": list(network.config.classes),
            "calibration": (calibration or Calibration()).to_dict(), **(dict(extra) if extra else {})}
    atomic_write_text(p.with_suffix(".json"), json.dumps(meta, indent=1) + "\n", overwrite=overwrite)
    return digest


def _calibration_digest(meta: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(meta.get("calibration") or {}, sort_keys=True).encode()).hexdigest()


def gate_passed(meta: Mapping[str, Any]) -> bool:
    """Whether a sidecar records a passed ship gate *for these weights and this calibration*: a gate
    measured before the weights or thresholds changed is stale and never counts."""
    gate = meta.get("gate")
    return (isinstance(gate, Mapping) and gate.get("passed") is True and bool(meta.get("sha256"))
            and gate.get("sha256") == meta.get("sha256")
            and gate.get("calibration_sha256") == _calibration_digest(meta))


def record_gate(path: str | os.PathLike, regressions: Sequence[Sequence[Any]], *, against: str,
                measured_by: str, figures: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the ship gate into the sidecar of the weights at ``path``: passed when ``regressions``
    (``(kit, class, F, baseline F)`` rows) is empty, bound to the weights' and calibration's hashes."""
    from ..fsutil import atomic_write_text

    side = Path(path).with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except (OSError, ValueError) as exc:
        raise ModelError(f"{side}: cannot read the weights or their sidecar ({exc}); ship the weights again") from exc
    if not isinstance(meta, dict) or meta.get("sha256") != digest:
        raise ModelError(f"{side}: its sha256 does not match {Path(path).name}; ship the weights again")
    gate = {"passed": not regressions, "against": against, "measured_by": measured_by,
            "sha256": digest, "calibration_sha256": _calibration_digest(meta),
            "regressions": [list(r) for r in regressions], **(dict(figures) if figures else {})}
    meta["gate"] = gate
    atomic_write_text(side, json.dumps(meta, indent=1) + "\n", overwrite=True)
    return gate
