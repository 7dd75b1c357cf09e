"""Training the transcription network: supervised on rendered hits, cheap steps, checkpoints, resume.

No drum machine is in the loss, so a step costs one CRNN forward/backward. One DataLoader worker
renders examples (:mod:`.transcriber_data`) and computes their features; the trainer keeps a pool
of recent examples and draws each batch from it (``new_per_step`` fresh examples join the pool
every step), so the renderer's speed does not bound the step rate.

Loss per step: onset BCE against targets widened to the neighbouring frames (0.5), velocity and
in-frame offset MSE at onset frames. Every ``validate_every`` steps the model is scored on the
validation kits (never trained on), per class F at 50 ms with a threshold sweep; the best model
by mean F over classes is saved with thresholds and velocity calibration fitted on that set.
``checkpoint.pt`` (model, optimiser, step, pool seed) is written atomically every few minutes;
``--resume`` continues a run exactly where it stopped (the data stream restarts at a new seed).
"""
from __future__ import annotations

import io
import json
import logging
import math
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..classes import IDM_CLASSES, group_of
from ..errors import IdmError
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..transcriber import Calibration, Transcriber, pick_peaks, save_transcriber
from ..transcriber.features import FRAME_RATE, spectrogram
from ..transcriber.network import CRNN, TranscriberConfig
from .kits import SampledKit
from .tiling import tiling_differences
from .transcriber_data import ExampleStream

log = logging.getLogger(__name__)

ONSET_WINDOW_S = 0.05
#: The per-class threshold sweep. Below 0.2 a class's probabilities are too poorly separated for a
#: pick to be stable (a loop's ride hits came and went with the audio around them at 0.05).
THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.2, 0.91, 0.05))
GROUPS = ("KD", "SD", "HH", "TT", "CY")

#: Hits per minute of each class in the training stream (``class_rates``, 400 x 6 s; MODEL_CARD.md).
#: The onset loss weighs a class's positive frames by sqrt(kick rate / class rate), in 1..3, so the
#: rare classes (open hat, mid/low toms, cymbals) are not drowned by kick, snare and closed hat; the
#: per-class threshold sweep then moves each class's operating point back where F is best.
STREAM_RATES = {"CY_CR": 26.0, "CY_RD": 40.0, "HH_CHH": 156.0, "HH_OHH": 13.0, "KD": 113.0, "SD": 101.0,
                "TT_HFT": 27.0, "TT_HMT": 14.0, "TT_LMT": 14.0}


def positive_weights(classes: Sequence[str], rates: Mapping[str, float] = STREAM_RATES) -> torch.Tensor:
    """Per-class weights of positive onset frames (shape (C, 1), broadcast over frames)."""
    ref = rates["KD"]
    w = [min(3.0, max(1.0, math.sqrt(ref / rates[c]))) if c in rates else 1.0 for c in classes]
    return torch.tensor(w, dtype=torch.float32)[:, None]


@dataclass
class TrainSettings:
    out: str
    steps: int = 100000
    max_minutes: float = 60.0
    batch: int = 12
    new_per_step: int = 4
    pool: int = 2500
    lr: float = 1e-3
    weight_decay: float = 1e-4
    duration_s: float = 6.0
    seed: int = 2026
    validate_every: int = 300
    checkpoint_minutes: float = 5.0
    threads: int = 2
    log_every: int = 20
    #: weigh rare classes' onset frames up (``positive_weights``); run tr1 trained 2,100 steps without
    balance_classes: bool = True
    #: validate and ship an exponential moving average of the weights (0 = the raw weights)
    ema_decay: float = 0.998
    #: examples in the pool before the first step (a resumed run starts with an empty pool)
    min_pool: int = 240
    #: sizes of a new network (``TranscriberConfig`` fields other than the classes: conv, proj,
    #: hidden, gru_layers, dropout); empty = the defaults. A resumed run rebuilds its checkpoint's.
    network: dict[str, Any] = field(default_factory=dict)
    #: inference window / context (s) validation runs the network in, and best.pt's calibration
    #: keeps (None: ``idm_host.transcriber.WINDOW_S`` / ``CONTEXT_S``)
    window_s: float | None = None
    context_s: float | None = None
    #: a loop (audio file) every validation also tiles ``tiling_repeats`` times: a candidate whose
    #: hits differ between the repeats and the loop alone (``tiling.tiling_differences``, the check
    #: the shipped network is held to) is logged but never becomes best.pt (None: no such check)
    tiling_loop: str | None = None
    tiling_repeats: int = 20


# ------------------------------------------------------------------ data
class _FeatureStream(torch.utils.data.IterableDataset):
    def __init__(self, stream: ExampleStream):
        self.stream = stream

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        torch.set_num_threads(1)
        for ex in self.stream:
            feats = spectrogram(torch.from_numpy(ex.audio)[None])[0]
            yield {"feats": feats.to(torch.float16), "onsets": torch.from_numpy(ex.onsets),
                   "velocity": torch.from_numpy(ex.velocity), "offset": torch.from_numpy(ex.offset)}


def _collate(items: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    return items


def widen(onsets: torch.Tensor) -> torch.Tensor:
    """Onset targets with 0.5 on the frames either side of each onset (1 stays 1)."""
    left = F.pad(onsets[..., 1:], (0, 1))
    right = F.pad(onsets[..., :-1], (1, 0))
    return torch.maximum(onsets, 0.5 * torch.maximum(left, right))


def loss_fn(out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
            pos_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    on = batch["onsets"]
    bce = F.binary_cross_entropy_with_logits(out["onset_logits"], widen(on), pos_weight=pos_weight)
    mask = on > 0.5
    n = mask.sum().clamp(min=1)
    vel = ((out["velocity"] - batch["velocity"]) ** 2 * mask).sum() / n
    off = ((out["offset"] - batch["offset"]) ** 2 * mask).sum() / n
    return {"loss": bce + 0.5 * vel + 0.5 * off, "bce": bce, "velocity": vel, "offset": off}


# ------------------------------------------------------------------ validation
@dataclass
class ValClip:
    kit: str
    condition: str
    audio: np.ndarray
    hits: dict[str, list[tuple[float, float]]]


def validation_clips(kits: Sequence[SampledKit], *, clips_per_condition: int = 12, duration_s: float = 8.0,
                     seed: int = 777, classes: Sequence[str] = IDM_CLASSES) -> list[ValClip]:
    """Fixed clips per validation kit: dry (levels only) and recorded (bleed, rooms, bus, residue)."""
    out = []
    for ki, kit in enumerate(kits):
        for condition, strength in (("dry", 0.0), ("recorded", 1.0)):
            s = ExampleStream([kit], classes=classes, duration_s=duration_s, procedural_p=0.0, kit_aug_prob=0.0,
                              record_strength=strength)
            rng = np.random.default_rng([seed, ki, int(strength)])
            for _ in range(clips_per_condition):
                ex = s.example(rng)
                out.append(ValClip(kit.name, condition, ex.audio, ex.hits))
    return out


def _match(ref: np.ndarray, est: np.ndarray, window: float = ONSET_WINDOW_S) -> list[tuple[int, int]]:
    import mir_eval

    if len(ref) == 0 or len(est) == 0:
        return []
    return list(mir_eval.util.match_events(np.asarray(ref, float), np.asarray(est, float), window))


def _prf(tp: int, n_ref: int, n_est: int) -> dict[str, float]:
    p = tp / n_est if n_est else (1.0 if n_ref == 0 else 0.0)
    r = tp / n_ref if n_ref else 1.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"P": round(p, 4), "R": round(r, 4), "F": round(f, 4), "n_ref": n_ref, "n_est": n_est}


def score_hits(pairs: Sequence[tuple[Mapping[str, Sequence[tuple[float, float]]],
                                     Mapping[str, Sequence[tuple[float, float]]]]],
               classes: Sequence[str]) -> dict[str, Any]:
    """P/R/F (50 ms, counts summed over clips) per class and per 5-group, and velocity agreement
    (median predicted/true ratio and Pearson correlation over matched hits).

    ``pairs``: per clip ``(reference hits, estimated hits)``, each ``{class: [(time_s, velocity)]}``.
    """
    res: dict[str, Any] = {}
    names = list(classes) + [g for g in GROUPS if g not in classes]
    for name in names:
        members = [c for c in classes if c == name or (name in GROUPS and group_of(c) == name and name not in classes)]
        if not members:
            continue
        tp = n_ref = n_est = 0
        ratios: list[float] = []
        vt: list[float] = []
        vp: list[float] = []
        for ref, est in pairs:
            r = sorted(h for c in members for h in ref.get(c, ()))
            e = sorted(h for c in members for h in est.get(c, ()))
            m = _match(np.array([h[0] for h in r]), np.array([h[0] for h in e]))
            tp += len(m)
            n_ref += len(r)
            n_est += len(e)
            for i, j in m:
                if r[i][1] > 0:
                    ratios.append(e[j][1] / r[i][1])
                vt.append(r[i][1])
                vp.append(e[j][1])
        row = _prf(tp, n_ref, n_est)
        if ratios:
            row["velocity_ratio"] = round(float(np.median(ratios)), 4)
        if len(vt) > 2 and np.std(vt) > 0 and np.std(vp) > 0:
            row["velocity_corr"] = round(float(np.corrcoef(vt, vp)[0, 1]), 4)
        res[name] = row
    return res


def _hits_dict(tr: Any) -> dict[str, list[tuple[float, float]]]:
    return {c: [(h.time_s, h.velocity) for h in tr.hits[c]] for c in tr.classes}


def evaluate_transcriber(model: Transcriber, clips: Sequence[ValClip], *, fit: bool = False,
                         heads: Sequence[tuple[np.ndarray, int, int]] | None = None,
                         level_classes: Sequence[str] | None = None, groups: Sequence[str] = ()) -> dict[str, Any]:
    """Score ``model`` on ``clips`` per kit and overall; with ``fit``, also sweep per-class thresholds
    and fit velocity maps on these clips and return them as ``calibration`` (scored with it; it keeps
    the model's inference window, the one the activations were computed in, and its blend).

    ``heads``: per clip, the IDM head's ``(probabilities, hop, sample_rate)``
    (:meth:`~idm_host.engine.Separator.onset_head`), blended in as the model's calibration says.
    ``level_classes``: the classes a fit may give a level map (:func:`fit_levels`; default all).
    ``groups``: the drum groups a fit may pick as one (:func:`fit_groups`; default none)."""
    from ..transcriber import normalise

    inputs = [normalise(c.audio) for c in clips]
    acts = [model.activations(x) for x in inputs]
    if heads is not None:
        acts = [dict(model.blended(a, h)) for a, h in zip(acts, heads)]
    cal = model.calibration
    if fit:
        thresholds = {}
        for ci, cname in enumerate(model.classes):
            best = (-1.0, 0.5)
            # greedy picking keeps the highest peaks first, so the picks at a higher threshold are
            # exactly the picks at the lowest one that reach it: pick once, filter per threshold
            picks = [pick_peaks(act["prob"][ci], THRESHOLDS[0]) for act in acts]
            for thr in THRESHOLDS:
                tp = n_ref = n_est = 0
                for clip, act, all_frames in zip(clips, acts, picks):
                    frames = all_frames[act["prob"][ci, all_frames] >= thr]
                    est = (frames + act["offset"][ci, frames]) / FRAME_RATE
                    ref = np.array([h[0] for h in clip.hits.get(cname, ())])
                    tp += len(_match(ref, est))
                    n_ref += len(ref)
                    n_est += len(est)
                f = _prf(tp, n_ref, n_est)["F"]
                if f > best[0] + 1e-9:
                    best = (f, thr)
            thresholds[cname] = best[1]
        raw = Transcriber(model.network, Calibration(thresholds, {}), name=model.name)
        vel: dict[str, tuple[float, float]] = {}
        for ci, cname in enumerate(model.classes):
            xs, ys = [], []
            for clip, act in zip(clips, acts):
                tr = raw.transcription_from(act, clip.audio.size)
                r = clip.hits.get(cname, [])
                e = [(h.time_s, h.velocity) for h in tr.hits[cname]]
                for i, j in _match(np.array([h[0] for h in r]), np.array([h[0] for h in e])):
                    xs.append(e[j][1])
                    ys.append(r[i][1])
            if len(xs) >= 10 and np.std(xs) > 1e-6:
                a, b = np.polyfit(xs, ys, 1)
                if 0.3 <= a <= 4.0:  # an untrained or degenerate head gets no map
                    vel[cname] = (float(a), float(b))
        # fitted under the model's inference window, which they keep
        cal = Calibration(thresholds, vel).with_window(model.calibration.window_s, model.calibration.context_s
                                                       ).with_blend(model.calibration.blend, model.calibration.head_sha256)
        cal = cal.with_groups(fit_groups(Transcriber(model.network, cal, name=model.name), clips, acts, groups))
        levels = fit_levels(Transcriber(model.network, cal, name=model.name), clips, inputs, acts)
        cal = cal.with_levels({c: v for c, v in levels.items() if level_classes is None or c in level_classes})
    scored = Transcriber(model.network, cal, name=model.name)
    pairs_by: dict[str, list] = {}
    for clip, x, act in zip(clips, inputs, acts):
        est = _hits_dict(scored.with_levels(x, scored.transcription_from(act, clip.audio.size)))
        for key in ("all", clip.kit, f"{clip.kit}/{clip.condition}"):
            pairs_by.setdefault(key, []).append((clip.hits, est))
    report = {key: score_hits(pairs, model.classes) for key, pairs in pairs_by.items()}
    out: dict[str, Any] = {"results": report}
    if fit:
        out["calibration"] = cal.to_dict()
    return out


#: What a group threshold must add to its group's figure (:func:`fit_groups`) to be kept.
GROUP_MIN_GAIN = 0.005


def fit_groups(model: Transcriber, clips: Sequence[ValClip], acts: Sequence[Mapping[str, np.ndarray]],
               groups: Sequence[str]) -> dict[str, float]:
    """Group thresholds (:attr:`Calibration.groups`) for ``model`` on ``clips`` (their activations
    ``acts``): per group of ``groups`` with two or more of the model's classes, the threshold of
    :data:`THRESHOLDS` with the best mean F over the group and its classes, averaged over the kits,
    kept where that beats picking each class on its own by :data:`GROUP_MIN_GAIN`."""
    chosen: dict[str, float] = {}
    kits = sorted({c.kit for c in clips})

    def figure(cal: Calibration, members: Sequence[str]) -> float:
        """Mean F over ``members`` and their group, averaged over the kits."""
        scored = Transcriber(model.network, cal, name=model.name)
        by: dict[str, list] = {k: [] for k in kits}
        for clip, act in zip(clips, acts):
            by[clip.kit].append((clip.hits, _hits_dict(scored.transcription_from(act, clip.audio.size))))
        rows = [score_hits(pairs, members) for pairs in by.values()]  # the members and their group
        return float(np.mean([np.mean([row["F"] for row in r.values()]) for r in rows]))

    for g in groups:
        members = [model.classes[i] for i in model.group_members(g)]
        if not members:
            continue
        best = (figure(model.calibration.with_groups(chosen), members) + GROUP_MIN_GAIN, None)
        for thr in THRESHOLDS:
            f = figure(model.calibration.with_groups({**chosen, g: thr}), members)
            if f > best[0] + 1e-9:
                best = (f, thr)
        if best[1] is not None:
            chosen[g] = float(best[1])
    return chosen


#: The level maps :func:`fit_levels` tries per class: gamma (velocity against level) and lam (the
#: share of the spread the levels give).
LEVEL_GAMMAS = (0.5, 0.75, 1.0, 1.25, 1.5)
LEVEL_LAMS = (0.25, 0.5, 0.75, 1.0)
#: A class takes a level map only with this many matched hits and a correlation this much higher.
LEVEL_MIN_HITS = 100
LEVEL_MIN_GAIN = 0.02


def fit_levels(model: Transcriber, clips: Sequence[ValClip], xs: Sequence[np.ndarray],
               acts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Per class, the ``(gamma, lam)`` of :func:`idm_host.transcriber.levels.level_velocities` that
    correlates the velocities of ``model``'s matched hits best with the true ones over ``clips``
    (each clip a recording of its own; ``xs`` their network inputs, ``acts`` their activations),
    where it beats the velocity head's alone by :data:`LEVEL_MIN_GAIN`."""
    from ..transcriber.levels import hit_levels

    trs = [model.transcription_from(act, clip.audio.size) for clip, act in zip(clips, acts)]
    out: dict[str, tuple[float, float]] = {}
    for c in model.classes:
        per_clip = []  # (velocities, levels, matched estimate indices, their true velocities)
        for clip, x, tr in zip(clips, xs, trs):
            est = tr.hits[c]
            ref = clip.hits.get(c, [])
            if not est or not ref:
                continue
            m = _match(np.array([h[0] for h in ref]), np.array([h.time_s for h in est]))
            if not m:
                continue
            per_clip.append((np.array([h.velocity for h in est]), hit_levels(x, [h.time_s for h in est], c),
                             np.array([j for _, j in m]), np.array([ref[i][1] for i, _ in m])))
        vt = np.concatenate([p[3] for p in per_clip]) if per_clip else np.zeros(0)
        if vt.size < LEVEL_MIN_HITS or np.std(vt) <= 0:
            continue
        base = _level_corr(per_clip, vt, 1.0, 0.0)
        best = max(((_level_corr(per_clip, vt, g, lam), g, lam) for g in LEVEL_GAMMAS for lam in LEVEL_LAMS),
                   key=lambda r: r[0])
        if best[0] >= base + LEVEL_MIN_GAIN:
            out[c] = (best[1], best[2])
    return out


def _level_corr(per_clip: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], true_v: np.ndarray,
                gamma: float, lam: float) -> float:
    """Correlation of the true velocities with the matched hits' under one level map."""
    from ..transcriber import MIN_VELOCITY
    from ..transcriber.levels import level_velocities

    vp = np.concatenate([level_velocities(v, lv, gamma, lam, MIN_VELOCITY)[j] for v, lv, j, _ in per_clip])
    return float(np.corrcoef(true_v, vp)[0, 1]) if np.std(vp) > 0 else -1.0


def selection_score(report: Mapping[str, Any], classes: Sequence[str]) -> float:
    """Mean F over the classes and the 5 groups, averaged over the validation kits (higher is better)."""
    kits = [k for k in report if k != "all" and "/" not in k]
    vals = []
    for k in kits:
        rows = report[k]
        vals.append(np.mean([rows[c]["F"] for c in list(classes) + list(GROUPS) if c in rows]))
    return float(np.mean(vals)) if vals else 0.0


# ------------------------------------------------------------------ training
class WeightAverage:
    """An exponential moving average of a network's parameters and float buffers (batch-norm
    statistics), warmed up as min(decay, (1 + n) / (10 + n)) over its first n updates, so its early
    values are not dominated by the weights it started from."""

    def __init__(self, net: torch.nn.Module, decay: float, state: Mapping[str, torch.Tensor] | None = None,
                 updates: int = 0):
        self.decay = decay
        self.updates = updates
        src = state if state is not None else net.state_dict()
        self.state = {k: v.detach().clone() for k, v in src.items()}

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)

    def network(self, config: TranscriberConfig) -> CRNN:
        net = CRNN(config)
        net.load_state_dict(self.state)
        return net.eval()


def _save_checkpoint(path: Path, net: CRNN, opt: torch.optim.Optimizer, step: int, best: float,
                     elapsed_s: float, settings: TrainSettings, ema: WeightAverage | None = None) -> None:
    buf = io.BytesIO()
    torch.save({"config": net.config.to_dict(), "model": net.state_dict(), "optim": opt.state_dict(), "step": step,
                "best": best, "elapsed_s": elapsed_s, "settings": asdict(settings),
                **({"ema": ema.state, "ema_updates": ema.updates} if ema is not None else {})}, buf)
    atomic_write_bytes(path, buf.getvalue(), overwrite=True)


def train(settings: TrainSettings, train_kits: Sequence[SampledKit], val_kits: Sequence[SampledKit], *,
          resume: bool = False, classes: Sequence[str] = IDM_CLASSES, provenance: Mapping[str, Any] | None = None,
          stream_kwargs: Mapping[str, Any] | None = None, overwrite: bool = False,
          init: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume) into ``settings.out``; returns the best validation report. ``init``: a new
    run starts from these transcriber weights (the optimiser starts afresh)."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    ckpt_path = out / "checkpoint.pt"
    step, best, elapsed_before = 0, -1.0, 0.0
    ck: dict[str, Any] = {}
    if not resume and not overwrite and (ckpt_path.exists() or (out / "best.pt").exists()):
        raise IdmError(f"{out}: already holds a transcriber run; pass --resume to continue it or --overwrite to "
                       "start again (its checkpoint and best model would be replaced)")
    if init is not None:
        if resume:
            raise IdmError("--init starts a new run; it cannot be combined with --resume")
        start = Transcriber.load(init)
        if tuple(start.classes) != tuple(classes):
            raise IdmError(f"{init}: classes {list(start.classes)} differ from the data config's {list(classes)}")
        if settings.network:
            raise IdmError("--init continues the sizes of the weights it starts from; the network sizes cannot be "
                           "changed with it")
        net = start.network
        log.info("starting from %s (sha256 %s)", init, start.sha256[:12])
    elif resume:
        if settings.network:
            raise IdmError("a resumed run continues the network in its checkpoint; network sizes apply to a new run")
        if not ckpt_path.is_file():
            raise IdmError(f"{ckpt_path}: nothing to resume; start without --resume")
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            config = TranscriberConfig.from_dict(ck["config"])
        except (RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as exc:
            raise IdmError(f"{ckpt_path}: not a readable transcriber checkpoint ({exc.__class__.__name__}: {exc}); "
                           "start again with --overwrite") from None
        if tuple(config.classes) != tuple(classes):
            raise IdmError(f"{ckpt_path}: classes {list(config.classes)} differ from the data config's "
                           f"{list(classes)}")
        net = CRNN(config)
        net.load_state_dict(ck["model"])
        step, best, elapsed_before = int(ck["step"]), float(ck["best"]), float(ck.get("elapsed_s", 0.0))
        log.info("resumed at step %d (best %.4f)", step, best)
    else:
        net = CRNN(TranscriberConfig.from_dict({**settings.network, "classes": tuple(classes)}))
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    if resume:
        opt.load_state_dict(ck["optim"])
    ema = None
    if settings.ema_decay > 0:
        ema = (WeightAverage(net, settings.ema_decay, ck["ema"], int(ck.get("ema_updates", 0))) if "ema" in ck
               else WeightAverage(net, settings.ema_decay))
    val = validation_clips(val_kits, classes=classes)
    stream = ExampleStream(train_kits, classes=classes, duration_s=settings.duration_s,
                           seed=settings.seed + 1000 * step, **dict(stream_kwargs or {}))
    loader = torch.utils.data.DataLoader(_FeatureStream(stream), batch_size=settings.new_per_step,
                                         collate_fn=_collate, num_workers=1, prefetch_factor=8,
                                         persistent_workers=True)
    it = iter(loader)
    pool: list[dict[str, torch.Tensor]] = []
    rng = np.random.default_rng(settings.seed + step)
    log_path = out / "log.jsonl"
    t0 = time.time()
    last_ckpt = t0
    running: dict[str, float] = {}
    best_report: dict[str, Any] = {}
    total_steps = step + settings.steps
    pos_weight = positive_weights(classes) if settings.balance_classes else None
    tiling_loop = None
    if settings.tiling_loop is not None:
        from ..audio import load_audio

        tiling_loop = load_audio(settings.tiling_loop, sample_rate=44100).mono()

    def lr_at(s: int) -> float:  # warm-up, then cosine to 10 % over the planned run
        warm = 200
        if s < warm:
            return settings.lr * (s + 1) / warm
        return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(total_steps, 1)))))

    def validate() -> None:
        nonlocal best, best_report
        net.eval()
        chosen = ema.network(net.config) if ema is not None else net
        model = Transcriber(chosen, Calibration().with_window(settings.window_s, settings.context_s),
                            name="candidate")
        rep = evaluate_transcriber(model, val, fit=True)
        score = selection_score(rep["results"], classes)
        row = {"step": step, "validation_score": round(score, 4), "elapsed_s": round(elapsed(), 1),
               "all": {k: v["F"] for k, v in rep["results"]["all"].items()}}
        diffs: list[str] = []
        if tiling_loop is not None:
            fitted = Transcriber(chosen, Calibration.from_dict(rep["calibration"]), name="candidate")
            diffs = tiling_differences(fitted, tiling_loop, repeats=settings.tiling_repeats)
            row["tiling_differences"] = len(diffs)
            rep["tiling_differences"] = diffs[:20]
        net.train()
        with open(log_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("step %d validation %.4f (best %.4f)%s %s", step, score, best,
                 f" tiling differences {len(diffs)}" if tiling_loop is not None else "", row["all"])
        if score > best and not diffs:
            best = score
            best_report = {"step": step, "score": score, **rep}
            save_transcriber(out / "best.pt", chosen, calibration=Calibration.from_dict(rep["calibration"]),
                             extra={"validation": best_report, "provenance": dict(provenance or {}),
                                    "settings": asdict(settings)})
            atomic_write_text(out / "best-report.json", json.dumps(best_report, indent=1) + "\n", overwrite=True)

    def elapsed() -> float:
        return elapsed_before + time.time() - t0

    net.train()
    while len(pool) < min(settings.min_pool, settings.pool):  # a first pool, so early batches are not repeats
        pool.extend(next(it))
    while step < total_steps and time.time() - t0 < settings.max_minutes * 60:
        pool.extend(next(it))
        if len(pool) > settings.pool:
            del pool[: len(pool) - settings.pool]
        idx = rng.choice(len(pool), size=min(settings.batch, len(pool)), replace=False)
        items = [pool[i] for i in idx]
        t_min = min(x["feats"].shape[1] for x in items)
        batch = {"feats": torch.stack([x["feats"][:, :t_min].float() for x in items])}
        for key in ("onsets", "velocity", "offset"):
            batch[key] = torch.stack([x[key][:, :t_min] for x in items])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        res = loss_fn(net(batch["feats"]), batch, pos_weight)
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if ema is not None:
            ema.update(net)
        step += 1
        for k, v in res.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if step % settings.log_every == 0:
            row = {"step": step, "elapsed_s": round(elapsed(), 1), "lr": lr_at(step),
                   **{k: round(v / settings.log_every, 5) for k, v in running.items()}}
            running = {}
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            log.info("%s", row)
        if step % settings.validate_every == 0:
            validate()
        if time.time() - last_ckpt > settings.checkpoint_minutes * 60:
            _save_checkpoint(ckpt_path, net, opt, step, best, elapsed(), settings, ema)
            last_ckpt = time.time()
    validate()
    _save_checkpoint(ckpt_path, net, opt, step, best, elapsed(), settings, ema)
    return best_report
