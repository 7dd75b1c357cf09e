"""Evaluation of separation and transcription on a dataset folder.

A dataset is a folder of clips, each a folder with ``mix.wav``, ``stems/<CLASS>.wav`` (one per class)
and the reference onsets as ``onsets.json`` (:meth:`Transcription.to_dict` form) or ``onsets.mid``
(GM drum MIDI). ``dataset.json`` (written by :func:`~idm_host.train.data.render_dataset`) lists the
clips and classes; without it every sub-folder holding a ``mix.wav`` is a clip.

Metrics, per class and per 5-group (KD/SD/HH/TT/CY; stems summed, hits merged):

* **SDR** (dB), BSS Eval v4 windowing: 1 s windows, hop 1 s (a last partial window counts when at
  least 0.5 s long); per window ``10 log10(sum s^2 / sum (s - s_hat)^2)`` (the energy-ratio SDR, i.e.
  BSS Eval with the distortion filter fixed to identity, as in the MDX challenges); windows where the
  reference is silent (energy < :data:`SILENCE_ENERGY`) are skipped; median over windows per clip,
  then median over clips.
* **SI-SDR** (dB) per clip over the whole clip, median over clips (clips with a silent reference
  skipped).
* **Onsets**: precision, recall and F-measure with a 50 ms window (``mir_eval``'s matching, as
  ``mir_eval.onset.f_measure``), counts summed over all clips before dividing.

Values are clamped to [-:data:`SDR_CAP_DB`, +:data:`SDR_CAP_DB`]: an exact estimate scores
+100 dB (not inf), a silent estimate scores SDR 0 dB and SI-SDR -100 dB. A class with no reference
audio or hits in the whole dataset reports ``None``.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, load_audio
from ..classes import GROUPS, IDM_CLASSES, group_of
from ..errors import IdmError
from ..fsutil import atomic_write_text
from ..types import Transcription

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

SDR_CAP_DB = 100.0
WINDOW_S = 1.0
ONSET_WINDOW_S = 0.05
#: Reference energy (sum of squares) below which a window or clip counts as silent.
SILENCE_ENERGY = 1e-8
RESULTS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ClipData:
    """One reference clip: mono ``mixture (T,)``, ``stems (K, T)``, onsets, class order."""

    name: str
    mixture: np.ndarray
    stems: np.ndarray
    transcription: Transcription
    classes: tuple[str, ...]
    sample_rate: int


@dataclass(frozen=True)
class Prediction:
    """What a system predicted for a clip: mono ``stems (K, T)`` in ``classes`` order, and hits."""

    stems: np.ndarray
    transcription: Transcription
    classes: tuple[str, ...]


Predictor = Callable[[ClipData], Prediction]


# ------------------------------------------------------------------ metrics
def _db(num: float, den: float) -> float:
    if num <= 0.0:
        return -SDR_CAP_DB
    if den <= 0.0:
        return SDR_CAP_DB
    return float(np.clip(10.0 * math.log10(num / den), -SDR_CAP_DB, SDR_CAP_DB))


def window_sdr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE,
               window_s: float = WINDOW_S) -> np.ndarray:
    """Per-window SDR (dB) of mono signals; ``nan`` where the reference is silent."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise IdmError(f"reference {ref.shape} and estimate {est.shape} differ in length")
    w = int(round(window_s * sample_rate))
    out = []
    for a in range(0, ref.size, w):
        r, e = ref[a:a + w], est[a:a + w]
        if r.size < w // 2 and a > 0:
            break
        energy = float(np.dot(r, r))
        if energy < SILENCE_ENERGY:
            out.append(np.nan)
            continue
        err = r - e
        out.append(_db(energy, float(np.dot(err, err))))
    return np.array(out, dtype=np.float64)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR (dB) over the whole signal; ``nan`` for a silent reference."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    energy = float(np.dot(ref, ref))
    if energy < SILENCE_ENERGY:
        return float("nan")
    target = (float(np.dot(est, ref)) / energy) * ref
    noise = est - target
    return _db(float(np.dot(target, target)), float(np.dot(noise, noise)))


def match_onsets(reference: np.ndarray, estimate: np.ndarray, window_s: float = ONSET_WINDOW_S) -> int:
    """Number of matched onsets (``mir_eval.util.match_events``, as ``mir_eval.onset`` uses)."""
    import mir_eval

    if len(reference) == 0 or len(estimate) == 0:
        return 0
    return len(mir_eval.util.match_events(np.asarray(reference, float), np.asarray(estimate, float), window_s))


# ------------------------------------------------------------------ dataset reading
def dataset_clips(path: PathLike) -> tuple[list[Path], tuple[str, ...]]:
    """The clip folders of a dataset and its classes.

    Raises:
        IdmError: the folder is missing or holds no clip.
    """
    root = Path(path)
    if not root.is_dir():
        raise IdmError(f"{root}: dataset folder not found; render one with 'idm-host eval render'")
    manifest = root / "dataset.json"
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text())
            names = list(data["clips"])
            classes = tuple(data.get("classes", IDM_CLASSES))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IdmError(f"{manifest}: cannot read the dataset manifest ({exc}); render the dataset again") from exc
        clips = [root / n for n in names]
    else:
        clips = sorted(p for p in root.iterdir() if (p / "mix.wav").exists())
        classes = IDM_CLASSES
    if not clips:
        raise IdmError(f"{root}: holds no clip (a folder with mix.wav, stems/ and onsets.json)")
    return clips, classes


def load_clip(folder: Path, classes: Sequence[str]) -> ClipData:
    """Read one clip folder (mono at 44.1 kHz).

    Raises:
        IdmError: the mixture, a stem or the onsets are missing or unreadable, or lengths differ.
    """
    if not (folder / "mix.wav").exists():
        raise IdmError(f"{folder}: mix.wav is missing; each clip needs mix.wav, stems/<CLASS>.wav and onsets")
    mix = load_audio(folder / "mix.wav", sample_rate=MODEL_SAMPLE_RATE, mono=True).samples[0]
    stems = np.zeros((len(classes), mix.size), dtype=np.float32)
    for i, c in enumerate(classes):
        f = folder / "stems" / f"{c}.wav"
        if not f.exists():
            raise IdmError(f"{f}: stem missing; every class of the dataset needs a stem (silent if unused)")
        x = load_audio(f, sample_rate=MODEL_SAMPLE_RATE, mono=True).samples[0]
        if x.size != mix.size:
            raise IdmError(f"{f}: {x.size} frames but mix.wav has {mix.size}; stems must match the mixture")
        stems[i] = x
    if (folder / "onsets.json").exists():
        try:
            tr = Transcription.from_json((folder / "onsets.json").read_text())
        except IdmError as exc:
            raise IdmError(f"{folder / 'onsets.json'}: {exc}") from exc
    elif (folder / "onsets.mid").exists():
        from ..midi import read_midi

        tr = read_midi(folder / "onsets.mid")
    else:
        raise IdmError(f"{folder}: no onsets.json or onsets.mid; each clip needs reference onsets")
    hits = {c: tr.hits.get(c, ()) for c in classes}
    tr = Transcription(tuple(classes), hits, mix.size / MODEL_SAMPLE_RATE)  # type: ignore[arg-type]
    return ClipData(folder.name, mix, stems, tr, tuple(classes), MODEL_SAMPLE_RATE)


# ------------------------------------------------------------------ predictors
def oracle_predictor(clip: ClipData) -> Prediction:
    """The reference itself (a sanity check: SDR +100 dB, F 1.0)."""
    return Prediction(clip.stems.copy(), clip.transcription, clip.classes)


def silence_predictor(clip: ClipData) -> Prediction:
    """Silent stems and no hits (a floor: SDR 0 dB, SI-SDR -100 dB, F 0)."""
    return Prediction(np.zeros_like(clip.stems), Transcription(clip.classes, {}, None), clip.classes)


def model_predictor(separator: Any, *, masking: str = "wiener", alpha: float | None = None,
                    true_hits: bool = False) -> Predictor:
    """A predictor from an :class:`idm_host.engine.Separator` (mono stems; the model's own hits, or
    with ``true_hits`` the clip's reference hits, so that only the separation is measured)."""
    def predict(clip: ClipData) -> Prediction:
        analysis = separator.analyze(clip.mixture, clip.transcription if true_hits else None,
                                     sample_rate=clip.sample_rate, masking=masking, alpha=alpha)
        stems = analysis.stems.audio.mean(axis=1)
        return Prediction(stems.astype(np.float32), analysis.transcription, tuple(analysis.stems.classes))

    return predict


# ------------------------------------------------------------------ evaluation
def _merge_stems(stems: np.ndarray, classes: Sequence[str], groups: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(groups), stems.shape[-1]), dtype=np.float64)
    for i, c in enumerate(classes):
        g = group_of(c)
        if g in groups:
            out[list(groups).index(g)] += stems[i]
    return out


def _aligned(pred: Prediction, classes: Sequence[str], n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predicted stems in ``classes`` order (classes the prediction lacks are silent) and hit times."""
    stems = np.zeros((len(classes), n), dtype=np.float64)
    times: dict[str, np.ndarray] = {}
    for i, c in enumerate(classes):
        if c in pred.classes:
            x = pred.stems[pred.classes.index(c)]
            m = min(n, x.shape[-1])
            stems[i, :m] = x[:m]
        times[c] = pred.transcription.times(c) if c in pred.transcription.classes else np.zeros(0)
    return stems, times


class _Tally:
    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self.sdr: dict[str, list[float]] = {c: [] for c in names}
        self.si: dict[str, list[float]] = {c: [] for c in names}
        self.counts = {c: [0, 0, 0] for c in names}  # matched, n_ref, n_est

    def add(self, name: str, ref: np.ndarray, est: np.ndarray, ref_t: np.ndarray, est_t: np.ndarray,
            sample_rate: int) -> None:
        w = window_sdr(ref, est, sample_rate)
        if np.isfinite(w).any():
            self.sdr[name].append(float(np.nanmedian(w)))
        s = si_sdr(ref, est)
        if np.isfinite(s):
            self.si[name].append(s)
        c = self.counts[name]
        c[0] += match_onsets(ref_t, est_t)
        c[1] += len(ref_t)
        c[2] += len(est_t)

    def result(self) -> dict[str, dict[str, Any]]:
        out = {}
        for c in self.names:
            tp, n_ref, n_est = self.counts[c]
            if n_ref == 0 and n_est == 0:
                p = r = f = None
            else:
                p = tp / n_est if n_est else 0.0
                r = tp / n_ref if n_ref else None
                f = 0.0 if (not p or not r) else 2 * p * r / (p + r)
            out[c] = {
                "sdr_db": float(np.median(self.sdr[c])) if self.sdr[c] else None,
                "si_sdr_db": float(np.median(self.si[c])) if self.si[c] else None,
                "precision": p, "recall": r, "f_measure": f,
                "n_ref": n_ref, "n_est": n_est, "n_matched": tp, "n_clips_with_audio": len(self.sdr[c]),
            }
        return out


def evaluate(
    dataset: PathLike,
    predictor: Predictor,
    *,
    system: str = "",
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Score ``predictor`` on every clip of ``dataset`` (see the module docstring for the metrics).

    Returns:
        ``{"schema_version", "dataset", "system", "n_clips", "classes": {class: metrics},
        "groups": {group: metrics}, "clips": [names]}`` where metrics are ``sdr_db``, ``si_sdr_db``,
        ``precision``, ``recall``, ``f_measure`` and counts.

    Raises:
        IdmError: the dataset is missing or malformed.
    """
    clips, classes = dataset_clips(dataset)
    groups = tuple(g for g in GROUPS if any(group_of(c) == g for c in classes))
    per_class, per_group = _Tally(classes), _Tally(groups)
    for i, folder in enumerate(clips):
        clip = load_clip(folder, classes)
        pred = predictor(clip)
        est, est_times = _aligned(pred, classes, clip.mixture.size)
        ref = clip.stems.astype(np.float64)
        for k, c in enumerate(classes):
            per_class.add(c, ref[k], est[k], clip.transcription.times(c), est_times[c], clip.sample_rate)
        ref_g, est_g = _merge_stems(ref, classes, groups), _merge_stems(est, classes, groups)
        ref_tr = clip.transcription.merged(groups)
        est_tr = Transcription(classes, {c: tuple(pred.transcription.hits.get(c, ())) for c in classes}
                               ).merged(groups)
        for k, g in enumerate(groups):
            per_group.add(g, ref_g[k], est_g[k], ref_tr.times(g), est_tr.times(g), clip.sample_rate)
        if progress is not None:
            progress((i + 1) / len(clips), f"scored {clip.name}")
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "dataset": str(Path(dataset)),
        "system": system,
        "n_clips": len(clips),
        "metric_notes": {"sdr": f"median over {WINDOW_S:g} s windows, then over clips; capped at +-{SDR_CAP_DB:g} dB",
                         "onsets": f"{ONSET_WINDOW_S * 1000:g} ms window, counts summed over clips"},
        "classes": per_class.result(),
        "groups": per_group.result(),
        "clips": [c.name for c in clips],
    }


def format_table(results: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`evaluate`'s results (classes, then groups)."""
    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [f"{results.get('system') or 'system'} on {results['dataset']} ({results['n_clips']} clips)",
             f"{'class':<8} {'SDR dB':>8} {'SI-SDR':>8} {'P':>6} {'R':>6} {'F':>6} {'hits':>6}"]
    for section in ("classes", "groups"):
        if section == "groups":
            lines.append("-" * 54)
        for name, m in results[section].items():
            lines.append(f"{name:<8} {fmt(m['sdr_db'], '8.2f')} {fmt(m['si_sdr_db'], '8.2f')} "
                         f"{fmt(m['precision'], '6.3f')} {fmt(m['recall'], '6.3f')} {fmt(m['f_measure'], '6.3f')} "
                         f"{m['n_ref']:>6d}")
    return "\n".join(lines)


def write_results(path: PathLike, results: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write results as JSON, atomically."""
    return atomic_write_text(path, json.dumps(results, indent=1), overwrite=overwrite)
