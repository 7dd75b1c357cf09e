"""Training and evaluation data: mixtures, per-class stems and onset targets rendered from kit x pattern.

Rendering is deterministic for a given seed. Augmentation is applied to every stem with the same
random settings and the mixture is the sum of the augmented stems, so stems, mixture and targets
always agree:

1. per-class level: each class's stem is scaled by a random gain (+-``class_gain_db``);
2. compression: a pedalboard ``Compressor`` per stem (same settings on every stem);
3. room: a pedalboard ``Reverb`` (linear and time-invariant, so reverberating each stem and
   summing equals reverberating the mixture; only the mixture is processed when stems are not kept);
4. level: the mixture is peak-normalised to ``peak``, then, with probability ``gain_prob``,
   multiplied by a gain drawn from ``gain_range`` (IDM-SPEC section 8: 0.8, [0.3, 1.0]).

Onset targets are binary ``[K, M]`` with a 1 at frame ``floor(t * 44100 / 256)`` (M = ceil(T/256) + 13,
the model's frame count) for every hit in the clip; hits whose class the kit lacks are not played
and not targeted.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, save_audio
from ..classes import IDM_CLASSES, group_of
from ..errors import IdmError
from ..fsutil import atomic_write_text
from ..levels import db_to_gain
from ..types import Hit, Transcription
from .kits import KitError, PATTERN_NOTES, SampledKit, load_kit, list_sf2_presets
from .patterns import STYLES, Pattern, PatternSource

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

HOP = 256
FRAME_RATE = MODEL_SAMPLE_RATE / HOP  # 172.265625 frames per second
#: Hits up to this long before a clip's start are rendered, so their tails ring into the clip.
PRE_ROLL_S = 2.0
DATA_SCHEMA_VERSION = 1
DATASET_SCHEMA_VERSION = 1

#: Kits and pattern sets this project keeps for independent evaluation: never trained or validated on.
HELD_OUT_MARKERS: tuple[str, ...] = (
    "avldrums", "bja_pacific", "colomboacousticdrumkit", "the black pearl", "gmrockkit",
    "hydrogen/data/demo_songs", "musescore", "/mma/", "mma-grooves",
)


def n_model_frames(n_samples: int, hop: int = HOP) -> int:
    """The model's frame count M for ``n_samples`` (IDM-SPEC section 1): ceil(T/hop) + 13."""
    return -(-int(n_samples) // hop) + 13


def onset_frame(time_s: float | np.ndarray, frame_rate: float = FRAME_RATE) -> np.ndarray:
    """``floor(t * frame_rate)``: the model frame of an onset."""
    return np.floor(np.asarray(time_s, dtype=np.float64) * frame_rate).astype(np.int64)


def class_index(symbol: str, classes: Sequence[str]) -> int | None:
    """Where a note's class lands in ``classes``: itself, or its 5-group (for group-level models)."""
    if symbol in classes:
        return list(classes).index(symbol)
    g = group_of(symbol)
    return list(classes).index(g) if g in classes else None


def playable_hits(pattern: Pattern, kit: SampledKit, classes: Sequence[str], end_s: float
                  ) -> Iterator[tuple[float, int, int, float]]:
    """``(time_s, class index, kit note, velocity)`` of each hit of ``pattern`` that starts before
    ``end_s``, has a class in ``classes`` (:func:`class_index`) and a note ``kit`` can play
    (``kit.resolve_note``), in the pattern's order; the other hits are passed over."""
    for t, note, vel in zip(pattern.times_s, pattern.notes, pattern.velocities):
        symbol = PATTERN_NOTES.get(int(note))
        if symbol is None or t >= end_s:
            continue
        ci = class_index(symbol, classes)
        kit_note = kit.resolve_note(int(note))
        if ci is None or kit_note is None:
            continue
        yield t, ci, kit_note, vel


@dataclass(frozen=True)
class Augment:
    """Augmentation settings (see the module docstring); probabilities are per clip."""

    gain_prob: float = 0.8
    gain_range: tuple[float, float] = (0.3, 1.0)
    peak: float = 0.9
    class_gain_db: float = 3.0
    compress_prob: float = 0.3
    compress_threshold_db: tuple[float, float] = (-30.0, -12.0)
    compress_ratio: tuple[float, float] = (2.0, 6.0)
    room_prob: float = 0.3
    room_size: tuple[float, float] = (0.05, 0.5)
    room_wet: tuple[float, float] = (0.03, 0.2)

    @classmethod
    def none(cls) -> "Augment":
        """No augmentation at all (but still peak-normalised to ``peak``)."""
        return cls(gain_prob=0.0, class_gain_db=0.0, compress_prob=0.0, room_prob=0.0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Augment":
        if data is None:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise IdmError(f"augment settings have unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Clip:
    """One rendered example.

    Attributes:
        mixture: float32 ``(T,)``.
        stems: float32 ``(K, T)`` (summing to ``mixture``), or ``None`` when not requested.
        onsets: float32 ``(K, M)`` binary targets.
        velocities: float32 ``(K, M)``: the hit velocity at each onset frame, else 0.
        transcription: the hits in the clip (times relative to its start).
        classes: the K class symbols.
        kit_id: index of the kit among the training kits (the kit classifier's target).
        meta: kit, pattern and augmentation details.
    """

    mixture: np.ndarray
    stems: np.ndarray | None
    onsets: np.ndarray
    velocities: np.ndarray
    transcription: Transcription
    classes: tuple[str, ...]
    kit_id: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def _reverb(x: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    from pedalboard import Reverb

    plugin = Reverb(**settings)
    return plugin.process(np.ascontiguousarray(x, dtype=np.float32), MODEL_SAMPLE_RATE, reset=True)


def _compress(x: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    from pedalboard import Compressor

    plugin = Compressor(**settings)
    return plugin.process(np.ascontiguousarray(x, dtype=np.float32), MODEL_SAMPLE_RATE, reset=True)


def render_clip(
    kit: SampledKit,
    pattern: Pattern,
    *,
    classes: Sequence[str] = IDM_CLASSES,
    rng: np.random.Generator,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    augment: Augment | None = None,
    kit_id: int = 0,
    with_stems: bool = False,
) -> Clip:
    """Render ``pattern`` on ``kit``; the clip starts ``offset_s`` into the pattern.

    Hits before ``offset_s`` are played (their tails sound in the clip) but not targeted.

    Args:
        kit: the kit; one instrument per note is chosen at random (:meth:`SampledKit.variant`).
        pattern: the hits.
        classes: the model's classes, in order (9 symbols, or 5-group symbols).
        rng: random generator (variant choice, round robin, augmentation).
        offset_s: where the clip starts in the pattern (s).
        duration_s: clip length (s); default ``pattern.duration_s - offset_s``.
        augment: augmentation; ``None`` means :meth:`Augment.none`.
        kit_id: the kit classifier's target.
        with_stems: also return per-class stems.

    Raises:
        IdmError: the clip would be empty (non-positive duration).
    """
    augment = augment or Augment.none()
    classes = tuple(classes)
    if duration_s is None:
        duration_s = pattern.duration_s - offset_s
    n = int(round(duration_s * MODEL_SAMPLE_RATE))
    if n <= 0:
        raise IdmError(f"clip duration {duration_s} s is not positive; choose a longer clip")
    k = len(classes)
    m = n_model_frames(n)
    played = kit.variant(rng)
    stems = np.zeros((k, n), dtype=np.float32)
    onsets = np.zeros((k, m), dtype=np.float32)
    velocities = np.zeros((k, m), dtype=np.float32)
    hits: dict[str, list[Hit]] = {c: [] for c in classes}
    start = int(round(offset_s * MODEL_SAMPLE_RATE))
    for t, ci, kit_note, vel in playable_hits(pattern, played, classes, offset_s + duration_s):
        x = played.instruments[kit_note][0].pick(float(vel), rng)
        pos = int(round(t * MODEL_SAMPLE_RATE)) - start
        a, b = max(pos, 0), min(pos + x.size, n)
        if b <= a:
            continue
        stems[ci, a:b] += x[a - pos: b - pos]
        rel = t - offset_s
        if rel >= 0:
            f = min(int(onset_frame(rel)), m - 1)
            onsets[ci, f] = 1.0
            velocities[ci, f] = max(velocities[ci, f], float(vel))
            hits[classes[ci]].append(Hit(float(rel), float(vel)))
    meta: dict[str, Any] = {"kit": kit.name, "style": pattern.style, "tempo_bpm": pattern.tempo_bpm,
                            "pattern_source": pattern.source, "offset_s": round(float(offset_s), 6)}
    # 1. per-class level
    if augment.class_gain_db > 0:
        db = rng.uniform(-augment.class_gain_db, augment.class_gain_db, size=k)
        stems *= db_to_gain(db).astype(np.float32)[:, None]
    # 2. compression, same settings per stem
    if rng.random() < augment.compress_prob:
        comp = {"threshold_db": float(rng.uniform(*augment.compress_threshold_db)),
                "ratio": float(rng.uniform(*augment.compress_ratio)),
                "attack_ms": float(rng.uniform(1.0, 20.0)), "release_ms": float(rng.uniform(50.0, 300.0))}
        active = np.flatnonzero(np.abs(stems).max(axis=1) > 0)
        for i in active:
            stems[i] = _compress(stems[i][None, :], comp)[0]
        meta["compressor"] = comp
    # 3. room
    room = None
    if rng.random() < augment.room_prob:
        wet = float(rng.uniform(*augment.room_wet))
        room = {"room_size": float(rng.uniform(*augment.room_size)), "damping": float(rng.uniform(0.3, 0.8)),
                "wet_level": wet, "dry_level": 1.0 - wet, "width": 0.0}
        meta["room"] = room
    if room is not None and with_stems:
        active = np.flatnonzero(np.abs(stems).max(axis=1) > 0)
        for i in active:
            stems[i] = _reverb(stems[i][None, :], room)[0]
    mixture = stems.sum(axis=0, dtype=np.float32)
    if room is not None and not with_stems:
        mixture = _reverb(mixture[None, :], room)[0]
    # 4. level
    peak = float(np.max(np.abs(mixture))) if n else 0.0
    scale = augment.peak / peak if peak > 1e-9 else 1.0
    if rng.random() < augment.gain_prob:
        g = float(rng.uniform(*augment.gain_range))
        scale *= g
        meta["gain"] = round(g, 6)
    mixture = (mixture * np.float32(scale)).astype(np.float32)
    if with_stems:
        stems *= np.float32(scale)
    tr = Transcription(classes, hits, duration_s)  # type: ignore[arg-type]
    return Clip(mixture, stems if with_stems else None, onsets, velocities, tr, classes, kit_id, meta)


def worker_rng(seed: int) -> np.random.Generator:
    """The random generator of this DataLoader worker's stream: seeded by ``(seed, worker id)``."""
    worker = 0
    try:
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
    except ImportError:  # pragma: no cover
        pass
    return np.random.default_rng([seed, worker])


class ClipStream:
    """An endless, seeded stream of training clips (random kit x random pattern window).

    Iterating twice gives the same clips. Under a torch ``DataLoader`` with workers, each worker
    draws its own stream (seed + worker id).

    Args:
        kits: the training kits; a clip's ``kit_id`` is its kit's index here.
        patterns: where pattern windows come from.
        classes: model classes.
        duration_s: clip length (s); 6.0 in the paper's recipe.
        seed: base seed.
        augment: augmentation settings.
        kit_ids: the kit-classifier target of each kit (default: its index).
    """

    def __init__(self, kits: Sequence[SampledKit], patterns: PatternSource, *, classes: Sequence[str] = IDM_CLASSES,
                 duration_s: float = 6.0, seed: int = 0, augment: Augment | None = None,
                 kit_ids: Sequence[int] | None = None, with_stems: bool = False):
        if not kits:
            raise KitError("no training kit given; list at least one kit in the data config")
        self.kits = list(kits)
        self.patterns = patterns
        self.classes = tuple(classes)
        self.duration_s = float(duration_s)
        self.seed = int(seed)
        self.augment = augment if augment is not None else Augment()
        self.kit_ids = list(kit_ids) if kit_ids is not None else list(range(len(kits)))
        self.with_stems = with_stems

    def clip(self, rng: np.random.Generator) -> Clip:
        i = int(rng.integers(len(self.kits)))
        pattern = self.patterns.sample(rng, self.duration_s, pre_roll_s=PRE_ROLL_S)
        return render_clip(self.kits[i], pattern, classes=self.classes, rng=rng, offset_s=PRE_ROLL_S,
                           duration_s=self.duration_s, augment=self.augment, kit_id=self.kit_ids[i],
                           with_stems=self.with_stems)

    def __iter__(self) -> Iterator[Clip]:
        rng = worker_rng(self.seed)
        while True:
            yield self.clip(rng)


# ------------------------------------------------------------------ data config
@dataclass(frozen=True)
class KitSpec:
    """One kit entry of a data config: ``{"path": ..., "kind": ..., "preset": ..., "name": ..., "weight": ...}``.

    ``weight`` (default 1) is the kit's share of the transcriber's training examples relative to the
    other kits (``train-transcriber``; a multi-sampled acoustic kit can be drawn more often than one
    of eight presets of the same SoundFont)."""

    path: str
    kind: str | None = None
    preset: int | str | None = None
    name: str | None = None
    weight: float | None = None

    def load(self) -> SampledKit:
        return load_kit(self.path, kind=self.kind, preset=self.preset)

    @property
    def label(self) -> str:
        return self.name or (f"{Path(self.path).stem}:{self.preset}" if self.preset is not None else Path(self.path).name)


def _check_not_held_out(path: str, what: str, config: Path) -> None:
    low = str(Path(path).expanduser().resolve()).lower()
    for marker in HELD_OUT_MARKERS:
        if marker in low:
            raise IdmError(
                f"{config}: {what} {path} is one of the kits/patterns this project keeps for independent "
                f"evaluation ({marker.strip('/')}); remove it from the training data, or set "
                "\"allow_held_out\": true if this is your own run and you accept the overlap"
            )


def _expand_kit(entry: Mapping[str, Any] | str, config: Path) -> list[KitSpec]:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, Mapping) or "path" not in entry:
        raise IdmError(f"{config}: a kit entry {entry!r} has no \"path\"; write {{\"path\": \"...\"}}")
    unknown = set(entry) - {"path", "kind", "preset", "name", "weight"}
    if unknown:
        raise IdmError(f"{config}: kit entry has unknown keys {sorted(unknown)}; use path, kind, preset, name, weight")
    weight = entry.get("weight")
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < float(weight) < 1e6:
            raise IdmError(f"{config}: kit {entry['path']}: \"weight\" must be a positive number, not {weight!r}")
        weight = float(weight)
    path = str(Path(str(entry["path"])).expanduser() if Path(str(entry["path"])).is_absolute()
               else (config.parent / str(entry["path"])).resolve())
    preset = entry.get("preset")
    if preset == "all":  # every drum preset of a SoundFont
        return [KitSpec(path, "sf2", p.program, f"{Path(path).stem}:{p.name}", weight) for p in list_sf2_presets(path)]
    return [KitSpec(path, entry.get("kind"), preset, entry.get("name"), weight)]


@dataclass(frozen=True)
class DataConfig:
    """What ``idm-host train --data CONFIG.json`` trains on.

    JSON keys (``schema_version`` 1): ``kits`` (training kits: paths or
    ``{"path", "kind", "preset", "name", "weight"}``; ``"preset": "all"`` expands every drum preset of an SF2),
    ``validation_kits`` (same form; never trained on), ``patterns`` (``{"midi": [files or folders],
    "generator_weight": 0.5, "styles": [...]}``), ``classes`` (default: the 9 IDM classes),
    ``crop_s`` (6.0), ``augment`` (:class:`Augment` fields), ``seed``, ``validation_clips`` (16),
    ``allow_held_out`` (false).
    """

    kits: tuple[KitSpec, ...]
    validation_kits: tuple[KitSpec, ...] = ()
    midi: tuple[str, ...] = ()
    generator_weight: float = 0.5
    styles: tuple[str, ...] = STYLES
    classes: tuple[str, ...] = IDM_CLASSES
    crop_s: float = 6.0
    augment: Augment = field(default_factory=Augment)
    seed: int = 1964
    validation_clips: int = 16
    source: Path | None = None

    @property
    def kit_names(self) -> tuple[str, ...]:
        return tuple(k.label for k in self.kits)

    @property
    def kit_weights(self) -> tuple[float, ...] | None:
        """The training kits' relative weights, or None when no entry sets one (all drawn equally)."""
        if all(k.weight is None for k in self.kits):
            return None
        return tuple(1.0 if k.weight is None else k.weight for k in self.kits)

    @classmethod
    def load(cls, path: PathLike) -> "DataConfig":
        """Read and validate a data config file.

        Raises:
            IdmError: the file is missing, not JSON, malformed, newer than this version, or names a
                held-out kit (see :data:`HELD_OUT_MARKERS`).
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IdmError(f"{p}: data config not found; see docs/TRAINING.md for the format") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise IdmError(f"{p}: cannot read the data config ({exc}); it must be JSON (docs/TRAINING.md)") from exc
        return cls.from_dict(data, p)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: Path | None = None) -> "DataConfig":
        where = source or Path("<data config>")
        if not isinstance(data, Mapping):
            raise IdmError(f"{where}: the data config must be a JSON object")
        version = int(data.get("schema_version", DATA_SCHEMA_VERSION))
        if version > DATA_SCHEMA_VERSION:
            raise IdmError(f"{where}: schema_version {version} is newer than this idm-host reads ({DATA_SCHEMA_VERSION}); update idm-host")
        known = {"schema_version", "kits", "validation_kits", "patterns", "classes", "crop_s", "augment", "seed",
                 "validation_clips", "allow_held_out"}
        unknown = set(data) - known
        if unknown:
            raise IdmError(f"{where}: unknown keys {sorted(unknown)}; known keys: {', '.join(sorted(known))}")
        if not data.get("kits"):
            raise IdmError(f"{where}: \"kits\" is empty; list at least one training kit")
        base = where if source is not None else Path.cwd() / "x"
        kits = tuple(s for e in data["kits"] for s in _expand_kit(e, base))
        val = tuple(s for e in data.get("validation_kits", []) for s in _expand_kit(e, base))
        patterns = data.get("patterns", {}) or {}
        if not isinstance(patterns, Mapping):
            raise IdmError(f"{where}: \"patterns\" must be an object like {{\"midi\": [...], \"generator_weight\": 0.5}}")
        midi = tuple(str(Path(m) if Path(m).is_absolute() else (base.parent / m).resolve())
                     for m in patterns.get("midi", []))
        overlap = {k.label for k in kits} & {k.label for k in val} | (
            {(k.path, k.preset) for k in kits} & {(k.path, k.preset) for k in val})
        if overlap:
            raise IdmError(f"{where}: validation kits {sorted(map(str, overlap))} are also training kits; keep them apart")
        if not data.get("allow_held_out", False):
            for k in kits + val:
                _check_not_held_out(k.path, "kit", where)
            for m in midi:
                _check_not_held_out(m, "pattern source", where)
        styles = tuple(patterns.get("styles", STYLES))
        bad = set(styles) - set(STYLES)
        if bad:
            raise IdmError(f"{where}: unknown groove styles {sorted(bad)}; use some of {', '.join(STYLES)}")
        try:
            return cls(kits, val, midi, float(patterns.get("generator_weight", 0.5)), styles,
                       tuple(data.get("classes", IDM_CLASSES)), float(data.get("crop_s", 6.0)),
                       Augment.from_dict(data.get("augment")), int(data.get("seed", 1964)),
                       int(data.get("validation_clips", 16)), source)
        except (TypeError, ValueError) as exc:
            raise IdmError(f"{where}: a value has the wrong type ({exc}); see docs/TRAINING.md") from exc

    def to_dict(self) -> dict[str, Any]:
        def kit(k: KitSpec) -> dict[str, Any]:
            return {key: v for key, v in asdict(k).items() if v is not None}

        return {"schema_version": DATA_SCHEMA_VERSION, "kits": [kit(k) for k in self.kits],
                "validation_kits": [kit(k) for k in self.validation_kits],
                "patterns": {"midi": list(self.midi), "generator_weight": self.generator_weight,
                             "styles": list(self.styles)},
                "classes": list(self.classes), "crop_s": self.crop_s, "augment": self.augment.to_dict(),
                "seed": self.seed, "validation_clips": self.validation_clips}


# ------------------------------------------------------------------ datasets on disk
def render_dataset(
    out_dir: PathLike,
    kits: Sequence[SampledKit],
    patterns: PatternSource,
    *,
    n_clips: int,
    duration_s: float = 6.0,
    classes: Sequence[str] = IDM_CLASSES,
    seed: int = 0,
    augment: Augment | None = None,
    overwrite: bool = False,
    progress=None,
) -> Path:
    """Write an evaluation dataset: ``clip-NNNN/{mix.wav, stems/<CLASS>.wav, onsets.json}`` plus
    ``dataset.json``. Audio is 32-bit float WAV, so the stems sum to the mixture exactly.

    Clips cycle through ``kits`` (clip i uses kit ``i % len(kits)``).

    Raises:
        IdmError: ``out_dir`` exists and is not empty (without ``overwrite``), or bad arguments.
    """
    out = Path(out_dir)
    if n_clips <= 0:
        raise IdmError(f"n_clips must be at least 1, got {n_clips}")
    if not kits:
        raise KitError("no kit given; pass at least one --kit")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise IdmError(f"{out}: already exists and is not empty; choose a new folder or allow overwriting")
    out.mkdir(parents=True, exist_ok=True)
    augment = augment if augment is not None else Augment.none()
    classes = tuple(classes)
    names = []
    for i in range(n_clips):
        rng = np.random.default_rng([seed, i])
        kit = kits[i % len(kits)]
        pattern = patterns.sample(rng, duration_s, pre_roll_s=PRE_ROLL_S)
        clip = render_clip(kit, pattern, classes=classes, rng=rng, offset_s=PRE_ROLL_S, duration_s=duration_s,
                           augment=augment, kit_id=i % len(kits), with_stems=True)
        name = f"clip-{i:04d}"
        write_clip(out / name, clip, overwrite=overwrite)
        names.append(name)
        if progress is not None:
            progress((i + 1) / n_clips, f"rendered {name}")
    manifest = {"schema_version": DATASET_SCHEMA_VERSION, "sample_rate": MODEL_SAMPLE_RATE, "classes": list(classes),
                "clips": names, "kits": [k.name for k in kits], "seed": seed, "duration_s": duration_s,
                "augment": augment.to_dict()}
    atomic_write_text(out / "dataset.json", json.dumps(manifest, indent=1), overwrite=True)
    return out


def write_clip(folder: Path, clip: Clip, *, overwrite: bool = False) -> Path:
    """One dataset clip: ``mix.wav``, ``stems/<CLASS>.wav`` (float WAV) and ``onsets.json``."""
    if clip.stems is None:
        raise IdmError("write_clip needs a clip rendered with with_stems=True")
    folder.mkdir(parents=True, exist_ok=True)
    save_audio(folder / "mix.wav", clip.mixture, MODEL_SAMPLE_RATE, bit_depth=32, overwrite=overwrite)
    for c, stem in zip(clip.classes, clip.stems):
        save_audio(folder / "stems" / f"{c}.wav", stem, MODEL_SAMPLE_RATE, bit_depth=32, overwrite=overwrite)
    d = clip.transcription.to_dict()
    d["meta"] = clip.meta
    atomic_write_text(folder / "onsets.json", json.dumps(d, indent=1, default=str), overwrite=overwrite)
    return folder
