"""The training loop behind ``idm-host train`` (IDM-SPEC.md section 8, with the onset-target bug fixed).

Recipe: Adam (lr 5e-3, default betas), gradient-norm clipping 1.0, float32, 6 s crops, loss
``MR-STFT(mix_hat, mix) + 10 * BCE(onset logits, binary targets) + CE(kit logits, kit id)``. The
decoder sequences the **binary** ground-truth onsets times the predicted velocity (the released code
passed the binary targets through a sigmoid first, which inference never does).

Batches are a pure function of ``(seed, step)``, so a resumed run sees exactly the batches an
uninterrupted run would have seen.

A run folder holds::

    data.json          the data config used (resolved paths)
    checkpoint.pt      latest training state (weights, optimiser, step), for --resume
    model.pt           the model in idm-host's weight format: best validation loss (else the latest)
    last.pt            the latest model in idm-host's weight format
    losses.jsonl       one JSON line per logged step (and per validation)
    loss_curve.png     training (grey, smoothed: black) and validation (red) loss per step
    report.json        summary: steps, time, device, losses, data, model
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import struct
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import torch

from ..errors import Cancelled, IdmError, ModelError
from ..fsutil import atomic_write_bytes, atomic_write_text
from .data import Augment, Clip, ClipStream, DataConfig, PRE_ROLL_S, render_clip
from .kits import SampledKit
from .losses import IDMLoss
from .patterns import PatternSource

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
STATE_FORMAT = "idm-host-train-state"
STATE_FORMAT_VERSION = 1
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the data comes from a :class:`DataConfig`).

    Attributes:
        steps: total optimiser steps of the run (a resumed run continues up to this count).
        batch_size: clips per step (the checkpoint used 7).
        lr: Adam learning rate.
        clip_grad: gradient-norm clip.
        device: ``auto``, ``cpu`` or ``cuda``.
        log_every: steps between loss-log lines.
        validate_every: steps between validations (and checkpoints).
        max_minutes: stop (after a checkpoint) when the run has taken this long; ``None`` for no limit.
        init: a model name or weights path to start from (fine-tuning); ``None`` for a fresh model.
        seed: overrides the data config's seed when set.
        model_config: :class:`~idm_host.model.IDMConfig` overrides for a fresh model (e.g. a smaller
            synthesiser: ``{"synth_channels": 16}``); not allowed with ``init``.
        freeze_synth: fine-tune the encoder side (backbone, transcription head, track gains) against
            the ``init`` model's frozen drum machine: the kit classifier and the one-shot synthesiser
            are not trained, the one-shots come from the engine's seeded noise for the predicted kit
            (its arg-max) and are computed once per kit, so a step costs about one encoder pass
            instead of 63 one-shot syntheses. The model keeps the init model's kit list.
    """

    steps: int = 1000
    batch_size: int = 7
    lr: float = 5e-3
    clip_grad: float = 1.0
    device: str = "auto"
    log_every: int = 10
    validate_every: int = 200
    max_minutes: float | None = None
    init: str | None = None
    seed: int | None = None
    model_config: Mapping[str, Any] | None = None
    freeze_synth: bool = False


# ------------------------------------------------------------------ model set-up
def _load_any(name: str) -> Any:
    from ..models import model_path

    path = model_path(name)
    if path.suffix == ".ckpt":
        from ..model.checkpoints import OFFICIAL_SHA256, convert_official
        from ..audio import file_sha256

        if file_sha256(path) != OFFICIAL_SHA256:
            raise ModelError(f"{path}: not the official IDM checkpoint (sha256 mismatch); give idm-host weights")
        return convert_official(path)
    from ..model.checkpoints import load_weights

    return load_weights(path)[0]


def build_model(classes: Sequence[str], kits: Sequence[str], init: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """A model for ``classes`` and ``kits``: fresh, or initialised from the model ``init``.

    When the init model's classes or kits differ, every tensor whose shape still fits is copied and
    the overlapping part of the others (kit classifier output, FiLM inputs, per-class rows) is
    copied; the rest keeps its fresh initialisation.

    Returns:
        ``(model, info)`` with ``info["init"]`` describing what was loaded.
    """
    from ..model import IDM, IDMConfig

    classes, kits = tuple(classes), tuple(kits)
    if init is None:
        base_cfg = IDMConfig().to_dict()
        unknown = set(overrides or {}) - set(base_cfg) - {"classes", "kits"}
        if unknown:
            raise IdmError(f"model_config has unknown keys {sorted(unknown)}; known: {', '.join(sorted(base_cfg))}")
        cfg = IDMConfig.from_dict({**base_cfg, **dict(overrides or {}), "classes": list(classes), "kits": list(kits)})
        return IDM(cfg), {"init": None, "model_config": dict(overrides or {})}
    if overrides:
        raise IdmError("model_config applies to fresh models only; drop it when fine-tuning with --init")
    base = _load_any(init)
    cfg = IDMConfig.from_dict({**base.config.to_dict(), "classes": list(classes), "kits": list(kits)})
    model = IDM(cfg)
    if base.config.classes == classes and base.config.kits == kits:
        model.load_state_dict(base.state_dict())
        return model, {"init": init, "copied": "all"}
    own = model.state_dict()
    full, partial = 0, []
    for key, value in base.state_dict().items():
        if key not in own:
            continue
        target = own[key]
        if target.shape == value.shape:
            target.copy_(value)
            full += 1
        elif target.dim() == value.dim():
            idx = tuple(slice(0, min(a, b)) for a, b in zip(target.shape, value.shape))
            target[idx].copy_(value[idx])
            partial.append(key)
    model.load_state_dict(own)
    log.info("initialised from %s: %d tensors copied, %d partially (%s)", init, full, len(partial), ", ".join(partial))
    return model, {"init": init, "copied": full, "partially_copied": partial}


# ------------------------------------------------------------------ batches
def batch_for_step(stream: ClipStream, seed: int, step: int, batch_size: int) -> list[Clip]:
    """The clips of optimiser step ``step`` (a pure function of seed and step)."""
    rng = np.random.default_rng([seed, step])
    return [stream.clip(rng) for _ in range(batch_size)]


def to_tensors(clips: Sequence[Clip], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mixture [B, T], onsets [B, K, M], kit_ids [B])`` on ``device``."""
    x = torch.from_numpy(np.stack([c.mixture for c in clips])).to(device)
    onsets = torch.from_numpy(np.stack([c.onsets for c in clips])).to(device)
    kit_ids = torch.tensor([c.kit_id for c in clips], dtype=torch.long, device=device)
    return x, onsets, kit_ids


class FrozenDrumMachine:
    """One-shots of a frozen synthesiser, per predicted kit (arg-max of the kit embedding), computed
    once with the engine's seeded noise (seed 0), as the engine would for a saturated embedding."""

    def __init__(self, model: Any, seed: int = 0):
        self.model = model
        self.seed = seed
        self._shots: dict[int, torch.Tensor] = {}

    def one_shots(self, kit_embedding: torch.Tensor) -> torch.Tensor:
        """``[B, n_kits]`` -> ``[B, K, L]`` (no gradient)."""
        cfg = self.model.config
        out = []
        for kit in kit_embedding.detach().argmax(-1).tolist():
            if kit not in self._shots:
                gen = torch.Generator().manual_seed(self.seed)
                noise = torch.randn(cfg.n_classes, 1, cfg.one_shot_len, generator=gen)[:, 0]
                onehot = torch.zeros(1, cfg.n_kits)
                onehot[0, kit] = 1.0
                dev = kit_embedding.device
                with torch.no_grad():
                    self._shots[kit] = self.model.synthesize(onehot.to(dev), noise[None].to(dev))[0]
            out.append(self._shots[kit])
        return torch.stack(out)

    def forward(self, x: torch.Tensor, onsets: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model.encode(x)
        shots = self.one_shots(out["kit_embedding"])
        stems = self.model.sequence(onsets * out["velocity"], shots, out["track_gains"], x.shape[-1])
        out.update(one_shots=shots, stems=stems, mix=stems.sum(1))
        return out


def _forward(model: Any, x: torch.Tensor, onsets: torch.Tensor, generator: torch.Generator | None,
             frozen: FrozenDrumMachine | None) -> dict[str, torch.Tensor]:
    if frozen is not None:
        return frozen.forward(x, onsets)
    return model(x, onsets, generator=generator)


def train_step(model: Any, loss_fn: IDMLoss, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               onsets: torch.Tensor, kit_ids: torch.Tensor | None, *, clip_grad: float = 1.0,
               generator: torch.Generator | None = None,
               frozen: FrozenDrumMachine | None = None) -> dict[str, float]:
    """One optimiser step with ground-truth sequencing; returns the loss terms and the grad norm."""
    model.train()
    out = _forward(model, x, onsets, generator, frozen)
    terms = loss_fn(out["mix"], x, out["onset_logits"], onsets, out["kit_logits"], kit_ids)
    if not torch.isfinite(terms.total):
        raise IdmError(f"the loss became {float(terms.total)}; lower the learning rate (--lr) or check the data")
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip_grad)
    optimizer.step()
    d = terms.as_dict()
    d["grad_norm"] = float(grad_norm)
    return d


@torch.no_grad()
def evaluate_loss(model: Any, loss_fn: IDMLoss, clips: Sequence[Clip], device: torch.device,
                  batch_size: int = 4, frozen: FrozenDrumMachine | None = None) -> dict[str, float]:
    """Mean reconstruction + 10 x onset BCE over ``clips`` (no kit term: validation kits are unseen).

    The one-shot noise is seeded, so the value is deterministic for given weights.
    """
    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    sums = {"loss": 0.0, "reconstruction": 0.0, "onset_bce": 0.0}
    for i in range(0, len(clips), batch_size):
        chunk = clips[i:i + batch_size]
        x, onsets, _ = to_tensors(chunk, device)
        out = _forward(model, x, onsets, gen, frozen)
        terms = loss_fn(out["mix"], x, out["onset_logits"], onsets)
        for k, v in (("loss", float(terms.total)), ("reconstruction", terms.reconstruction), ("onset_bce", terms.onset)):
            sums[k] += v * len(chunk)
    return {k: v / max(len(clips), 1) for k, v in sums.items()}


def validation_clips(kits: Sequence[SampledKit], patterns: PatternSource, classes: Sequence[str], n: int,
                     duration_s: float, seed: int) -> list[Clip]:
    """A fixed validation set: ``n`` clips cycling through ``kits``, no augmentation but peak 0.9."""
    out = []
    for i in range(n if kits else 0):
        rng = np.random.default_rng([seed, 10_000_000 + i])
        pattern = patterns.sample(rng, duration_s, pre_roll_s=PRE_ROLL_S)
        out.append(render_clip(kits[i % len(kits)], pattern, classes=classes, rng=rng, offset_s=PRE_ROLL_S,
                               duration_s=duration_s, augment=Augment.none()))
    return out


# ------------------------------------------------------------------ state on disk
def save_state(path: Path, model: Any, optimizer: torch.optim.Optimizer, step: int, extra: Mapping[str, Any]) -> None:
    from ..model.checkpoints import weights_blob

    blob = {"format": STATE_FORMAT, "format_version": STATE_FORMAT_VERSION, "step": int(step),
            "weights": weights_blob(model), "optimizer": optimizer.state_dict(), "extra": json.dumps(dict(extra))}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue(), overwrite=True)


def load_state(path: Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_state` (``weights_only``: no code is unpickled)."""
    if not path.exists():
        raise IdmError(f"{path}: no checkpoint to resume from; start the run without --resume")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise IdmError(f"{path}: cannot read the checkpoint ({exc}); the file may be damaged") from exc
    if not isinstance(blob, dict) or blob.get("format") != STATE_FORMAT:
        raise IdmError(f"{path}: not an idm-host training checkpoint")
    if int(blob.get("format_version", 0)) > STATE_FORMAT_VERSION:
        raise IdmError(f"{path}: checkpoint format is newer than this idm-host; update it")
    return blob


# ------------------------------------------------------------------ loss-curve PNG (no plotting library)
def _png(rgb: np.ndarray, text: Mapping[str, str] = {}) -> bytes:
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    for k, v in text.items():
        out += chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1", "replace"))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def loss_curve_png(train: Sequence[tuple[int, float]], val: Sequence[tuple[int, float]], *,
                   width: int = 640, height: int = 360) -> bytes:
    """A PNG of loss against step: raw training loss grey, its moving average black, validation red
    dots; log-scale y with a light grid line per power of ten. Axis ranges are in the PNG's tEXt chunks."""
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    pts = [(s, v) for s, v in list(train) + list(val) if v > 0 and math.isfinite(v)]
    margin = 20
    if not pts:
        return _png(img, {"Title": "idm-host loss curve (no data)"})
    s0, s1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lo, hi = math.log10(min(p[1] for p in pts)), math.log10(max(p[1] for p in pts))
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    if s1 == s0:
        s1 = s0 + 1

    def xy(step: float, value: float) -> tuple[int, int]:
        x = margin + (width - 2 * margin) * (step - s0) / (s1 - s0)
        y = height - margin - (height - 2 * margin) * (math.log10(value) - lo) / (hi - lo)
        return int(round(x)), int(round(y))

    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        _, y = xy(s0, 10.0 ** decade)
        if margin <= y < height - margin:
            img[y, margin:width - margin] = (225, 225, 225)
    img[height - margin, margin:width - margin] = 0
    img[margin:height - margin, margin] = 0

    def line(points: Sequence[tuple[int, int]], color: tuple[int, int, int]) -> None:
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            n = max(abs(xb - xa), abs(yb - ya), 1)
            for t in np.linspace(0.0, 1.0, n + 1):
                x, y = int(round(xa + (xb - xa) * t)), int(round(ya + (yb - ya) * t))
                if 0 <= x < width and 0 <= y < height:
                    img[y, x] = color

    tr = [(s, v) for s, v in train if v > 0 and math.isfinite(v)]
    line([xy(s, v) for s, v in tr], (170, 170, 170))
    if len(tr) > 2:
        k = max(1, len(tr) // 20)
        vals = np.convolve([v for _, v in tr], np.ones(k) / k, mode="valid")
        line([xy(tr[i + k // 2][0], float(v)) for i, v in enumerate(vals)], (0, 0, 0))
    for s, v in val:
        if v > 0 and math.isfinite(v):
            x, y = xy(s, v)
            img[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = (220, 30, 30)
    return _png(img, {"Title": "idm-host loss curve", "Steps": f"{s0}..{s1}",
                      "Loss range": f"{10 ** lo:.4g}..{10 ** hi:.4g} (log scale)",
                      "Legend": "grey: training loss; black: moving average; red: validation loss"})


# ------------------------------------------------------------------ the run
def train(
    data: DataConfig,
    run_dir: PathLike,
    options: TrainOptions = TrainOptions(),
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Train (or fine-tune, or resume) a model; see the module docstring for the run folder.

    Args:
        data: the data config (kits, validation kits, patterns, classes, augmentation).
        run_dir: the run folder.
        options: training options.
        resume: continue from ``run_dir/checkpoint.pt`` (its step count continues).
        overwrite: allow starting a new run in a folder that holds one.
        progress: ``progress(fraction, message)``; raising :class:`Cancelled` stops the run after a
            checkpoint.

    Returns:
        The report (also written to ``run_dir/report.json``).

    Raises:
        IdmError: bad data (e.g. a :class:`~idm_host.train.kits.KitError`), an existing run without
            ``resume``/``overwrite``, a missing checkpoint with ``resume``, or a diverging loss.
    """
    from ..engine import pick_device
    from ..model.checkpoints import save_weights

    run = Path(run_dir)
    state_path = run / "checkpoint.pt"
    if not resume and state_path.exists() and not overwrite:
        raise IdmError(f"{run}: already holds a training run; pass --resume to continue it or --overwrite to restart")
    if options.steps <= 0 or options.batch_size <= 0 or options.lr <= 0:
        raise IdmError("steps, batch size and learning rate must be positive")
    device = pick_device(options.device)
    seed = data.seed if options.seed is None else int(options.seed)
    torch.manual_seed(seed)

    t_load = time.perf_counter()
    kits = [spec.load() for spec in data.kits]
    val_kits = [spec.load() for spec in data.validation_kits]
    patterns = PatternSource(data.midi, generator_weight=data.generator_weight, styles=data.styles)
    stream = ClipStream(kits, patterns, classes=data.classes, duration_s=data.crop_s, seed=seed, augment=data.augment)
    val_set = validation_clips(val_kits, patterns, data.classes, data.validation_clips, data.crop_s, seed)
    load_s = time.perf_counter() - t_load

    history: list[dict[str, Any]] = []
    if resume:
        blob = load_state(state_path)
        from ..model import IDM, IDMConfig

        cfg = IDMConfig.from_dict(blob["weights"]["config"])
        if tuple(cfg.classes) != tuple(data.classes) or (tuple(cfg.kits) != data.kit_names and not options.freeze_synth):
            raise IdmError(f"{state_path}: the checkpoint's classes/kits differ from the data config's; "
                           "resume with the data config the run started with")
        model = IDM(cfg)
        model.load_state_dict(blob["weights"]["state_dict"])
        model.to(device)
        if options.freeze_synth:
            for name, param in model.named_parameters():
                param.requires_grad_(not name.startswith(("synth.", "kit_classifier.")))
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=options.lr)
        optimizer.load_state_dict(blob["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = options.lr
        start_step = int(blob["step"])
        init_info = json.loads(blob.get("extra", "{}")).get("init_info", {"init": None})
        log_path = run / "losses.jsonl"
        if log_path.exists():
            history = [json.loads(l) for l in log_path.read_text().splitlines() if l.strip()]
            history = [h for h in history if h["step"] <= start_step]
    elif options.freeze_synth:
        if options.init is None:
            raise IdmError("freeze_synth fine-tunes an existing model: give --init MODEL")
        model = _load_any(options.init)
        if tuple(model.config.classes) != tuple(data.classes):
            raise IdmError(f"--freeze-synth keeps the init model's classes {list(model.config.classes)}; "
                           "the data config's classes must be the same")
        init_info = {"init": options.init, "copied": "all", "frozen": ["synth", "kit_classifier"]}
        model.to(device)
        start_step = 0
    else:
        model, init_info = build_model(data.classes, data.kit_names, options.init, options.model_config)
        model.to(device)
        start_step = 0
    frozen = None
    if options.freeze_synth:
        for name, param in model.named_parameters():
            param.requires_grad_(not name.startswith(("synth.", "kit_classifier.")))
        frozen = FrozenDrumMachine(model)
    if not resume:
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=options.lr)
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "data.json", json.dumps(data.to_dict(), indent=1), overwrite=True)
    loss_fn = IDMLoss().to(device)
    # with a single training kit the kit classifier has nothing to learn
    use_kit_ce = len(kits) > 1 and not options.freeze_synth

    best_val = min((h["val_loss"] for h in history if "val_loss" in h), default=math.inf)
    best_step = next((h["step"] for h in history if h.get("val_loss") == best_val), None)
    t0 = time.perf_counter()
    step = start_step
    stop_reason = "steps"
    steps_done = 0

    def write_log() -> None:
        atomic_write_text(run / "losses.jsonl", "".join(json.dumps(h) + "\n" for h in history), overwrite=True)

    def checkpoint() -> None:
        extra = {"init_info": init_info, "options": asdict(options), "seed": seed}
        save_state(state_path, model, optimizer, step, extra)
        save_weights(model, run / "last.pt", source={"trained_by": "idm-host train", "step": step,
                                                     "kits": list(data.kit_names)}, overwrite=True)
        write_log()

    def validate() -> None:
        nonlocal best_val, best_step
        if not val_set:
            return
        v = evaluate_loss(model, loss_fn, val_set, device, frozen=frozen)
        history.append({"step": step, "val_loss": v["loss"], "val_reconstruction": v["reconstruction"],
                        "val_onset_bce": v["onset_bce"]})
        if v["loss"] < best_val:
            best_val, best_step = v["loss"], step
            save_weights(model, run / "model.pt", source={"trained_by": "idm-host train", "step": step,
                                                          "val_loss": v["loss"], "kits": list(data.kit_names)},
                         overwrite=True)

    if not resume and val_set:
        validate()
    try:
        while step < options.steps:
            clips = batch_for_step(stream, seed, step, options.batch_size)
            x, onsets, kit_ids = to_tensors(clips, device)
            gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)
            terms = train_step(model, loss_fn, optimizer, x, onsets, kit_ids if use_kit_ce else None,
                               clip_grad=options.clip_grad, generator=gen, frozen=frozen)
            step += 1
            steps_done += 1
            if step % options.log_every == 0 or step == options.steps or steps_done == 1:
                history.append({"step": step, "time_s": round(time.perf_counter() - t0, 3), **terms})
            if step % options.validate_every == 0 or step == options.steps:
                validate()
                checkpoint()
            if progress is not None:
                progress(step / options.steps, f"step {step}/{options.steps} loss {terms['loss']:.3f}")
            if options.max_minutes is not None and time.perf_counter() - t0 > 60 * options.max_minutes:
                stop_reason = "time limit"
                break
    except (Cancelled, KeyboardInterrupt):
        stop_reason = "cancelled"
        checkpoint()
        raise
    finally:
        if stop_reason != "cancelled":
            checkpoint()
        if not val_set or not (run / "model.pt").exists():
            save_weights(model, run / "model.pt", source={"trained_by": "idm-host train", "step": step,
                                                          "kits": list(data.kit_names)}, overwrite=True)
        train_pts = [(h["step"], h["loss"]) for h in history if "loss" in h]
        val_pts = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
        atomic_write_bytes(run / "loss_curve.png", loss_curve_png(train_pts, val_pts), overwrite=True)
    wall = time.perf_counter() - t0
    recent = [h["loss"] for h in history if "loss" in h][-20:]
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run_dir": str(run),
        "stopped_because": stop_reason,
        "step_start": start_step,
        "step": step,
        "steps_target": options.steps,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "wall_s": round(wall, 2),
        "data_load_s": round(load_s, 2),
        "s_per_step": round(wall / max(steps_done, 1), 4),
        "train_loss_recent_mean": float(np.mean(recent)) if recent else None,
        "first_train_loss": next((h["loss"] for h in history if "loss" in h), None),
        "best_val_loss": None if math.isinf(best_val) else best_val,
        "best_step": best_step,
        "options": asdict(options),
        "seed": seed,
        "init": init_info,
        "model": {"classes": list(data.classes), "kits": list(data.kit_names),
                  "parameters": int(sum(p.numel() for p in model.parameters()))},
        "data": {"kits": [k.summary() for k in kits], "validation_kits": [k.summary() for k in val_kits],
                 "midi_files": len(patterns.files), "generator_weight": patterns.generator_weight,
                 "crop_s": data.crop_s, "augment": data.augment.to_dict()},
    }
    atomic_write_text(run / "report.json", json.dumps(report, indent=1, default=str), overwrite=True)
    return report
