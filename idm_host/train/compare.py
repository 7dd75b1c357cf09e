"""Systems side by side on the same validation clips, in one run.

For every validation dataset (one per kit, rendered by ``idm-host eval render``: stems and hits
known) each system is scored with :func:`~idm_host.train.evaluate.evaluate` (per class and group
P/R/F at 50 ms, stems SDR) plus velocity agreement (median predicted/true ratio and correlation
over matched hits). Systems: any :class:`~idm_host.engine.Separator` (our transcriber, the IDM
head of the default model, the official weights), the true hits through our stems (the ceiling of
the separation), and the peer transcriber ADTOF (:mod:`.peer`; groups only, no velocities; stems
cut by our engine from its hits).

:func:`regressions` lists every (kit, class) where a system's F falls below a baseline's: a model
with any such class does not ship (:func:`require_no_regression` raises).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..classes import group_of
from ..errors import IdmError
from ..types import Hit, Transcription
from .evaluate import ClipData, Prediction, dataset_clips, evaluate, load_clip
from .peer import PEER_GROUPS, run_adtof
from .transcriber_loop import score_hits

#: Where a peer's group hit lands among the 9 classes when our engine cuts its stems.
PEER_CLASS = {"KD": "KD", "SD": "SD", "HH": "HH_CHH", "TT": "TT_LMT", "CY": "CY_CR"}
PEER_VELOCITY = 0.7


def _hits(tr: Transcription) -> dict[str, list[tuple[float, float]]]:
    return {c: [(h.time_s, h.velocity) for h in tr.hits[c]] for c in tr.classes}


class _Recorder:
    """Wraps a predictor and keeps (reference hits, predicted hits) per clip for velocity metrics."""

    def __init__(self, predict: Callable[[ClipData], Prediction]):
        self.predict = predict
        self.pairs: list[tuple[dict, dict]] = []

    def __call__(self, clip: ClipData) -> Prediction:
        pred = self.predict(clip)
        self.pairs.append((_hits(clip.transcription), _hits(pred.transcription)))
        return pred


def separator_predictor(separator: Any, *, use_true_hits: bool = False, masking: str = "wiener"
                        ) -> Callable[[ClipData], Prediction]:
    def predict(clip: ClipData) -> Prediction:
        tr = clip.transcription if use_true_hits else None
        a = separator.analyze(clip.mixture, tr, sample_rate=clip.sample_rate, masking=masking)
        return Prediction(a.stems.audio.mean(axis=1).astype(np.float32), a.transcription, tuple(a.stems.classes))

    return predict


def peer_predictor(separator: Any, answers: Mapping[str, Mapping[str, Sequence[float]]]
                   ) -> Callable[[ClipData], Prediction]:
    """Stems cut by ``separator`` from the peer's hits (``answers`` per clip name)."""
    def predict(clip: ClipData) -> Prediction:
        got = answers[clip.name]
        hits: dict[str, list[Hit]] = {c: [] for c in separator.classes}
        for g in PEER_GROUPS:
            hits[PEER_CLASS[g]] = [Hit(float(t), PEER_VELOCITY) for t in got.get(g, ()) if t >= 0]
        tr = Transcription(separator.classes, {c: tuple(v) for c, v in hits.items()},
                           clip.mixture.size / clip.sample_rate)
        a = separator.analyze(clip.mixture, tr, sample_rate=clip.sample_rate)
        return Prediction(a.stems.audio.mean(axis=1).astype(np.float32), a.transcription, tuple(a.stems.classes))

    return predict


def _summary(results: Mapping[str, Any], pairs: list, classes: Sequence[str], peer: bool) -> dict[str, Any]:
    vel = score_hits(pairs, classes)
    out: dict[str, Any] = {}
    for section in ("classes", "groups"):
        for name, m in results[section].items():
            if peer and section == "classes":
                continue
            row = {"P": m["precision"], "R": m["recall"], "F": m["f_measure"], "sdr_db": m["sdr_db"],
                   "n_ref": m["n_ref"]}
            if not peer and name in vel:
                row.update({k: vel[name][k] for k in ("velocity_ratio", "velocity_corr") if k in vel[name]})
            out[name] = row
    return out


def stem_level_velocities(clip: ClipData, window_s: float = 0.05) -> dict[str, list[tuple[float, float]]]:
    """The clip's true hits, each with the peak amplitude of its own class's true stem over the
    ``window_s`` after it (up to the class's next hit), over the mix's peak, as its velocity: what a
    reading of the drum's level alone (no timbre, no bleed) says about how hard it was hit. Its
    correlation with the true velocities tells how much of a velocity the rendered level carries."""
    sr = clip.sample_rate
    peak = float(np.abs(clip.mixture).max()) or 1.0
    out: dict[str, list[tuple[float, float]]] = {}
    for ci, c in enumerate(clip.classes):
        hits = clip.transcription.hits.get(c, ())
        stem = clip.stems[ci]
        rows = []
        for i, h in enumerate(hits):
            a = int(round(h.time_s * sr))
            b = a + int(window_s * sr)
            if i + 1 < len(hits):
                b = min(b, int(round(hits[i + 1].time_s * sr)))
            seg = stem[a:max(b, a + 1)]
            rows.append((h.time_s, float(np.abs(seg).max() / peak) if seg.size else 0.0))
        out[c] = rows
    return out


def compare(datasets: Mapping[str, str | Path], systems: Mapping[str, Any], *, stems_separator: Any = None,
            peer: bool = True, true_hits: bool = True, progress: Callable[[str], None] | None = None
            ) -> dict[str, Any]:
    """Score ``systems`` (name -> Separator) on each dataset (kit name -> folder), side by side.

    Returns ``{kit: {system: {class or group: {P, R, F, sdr_db, velocity_ratio, velocity_corr}}}}``
    plus ``"peer_error"`` when the peer could not run (the other systems are still scored).
    """
    out: dict[str, Any] = {}
    stems_sep = stems_separator or next(iter(systems.values()))
    for kit, folder in datasets.items():
        row: dict[str, Any] = {}
        if true_hits or peer:
            clips, classes = dataset_clips(folder)
            data = [load_clip(c, classes) for c in clips]
        for name, sep in systems.items():
            rec = _Recorder(separator_predictor(sep))
            res = evaluate(folder, rec, system=name)
            row[name] = _summary(res, rec.pairs, res["classes"].keys(), peer=False)
            if progress:
                progress(f"{kit}: {name} done")
        if true_hits:
            rec = _Recorder(separator_predictor(stems_sep, use_true_hits=True))
            res = evaluate(folder, rec, system="true hits")
            row["true hits"] = _summary(res, rec.pairs, res["classes"].keys(), peer=False)
            level = score_hits([(_hits(d.transcription), stem_level_velocities(d)) for d in data], classes)
            row["stem level"] = {c: {"velocity_corr": level[c]["velocity_corr"]} for c in level
                                 if "velocity_corr" in level[c]}
        if peer:
            try:
                answers, timing = run_adtof([d.mixture for d in data])
            except IdmError as exc:
                out["peer_error"] = str(exc)
            else:
                by_name = {d.name: a for d, a in zip(data, answers)}
                rec = _Recorder(peer_predictor(stems_sep, by_name))
                res = evaluate(folder, rec, system="ADTOF")
                row["ADTOF"] = _summary(res, rec.pairs, res["classes"].keys(), peer=True)
                row["ADTOF"]["_timing"] = timing
            if progress:
                progress(f"{kit}: ADTOF done")
        out[kit] = row
    return out


def compare_recorded(clips: Sequence[Any], systems: Mapping[str, Any], *, peer: bool = True) -> dict[str, Any]:
    """Onset figures only (the stems of a recorded mix are not defined) on
    :func:`~idm_host.train.transcriber_loop.validation_clips`' clips, per kit and system."""
    out: dict[str, Any] = {}
    kits = sorted({c.kit for c in clips})
    answers = None
    if peer:
        try:
            answers, _ = run_adtof([c.audio for c in clips])
        except IdmError as exc:
            out["peer_error"] = str(exc)
    for kit in kits:
        idx = [i for i, c in enumerate(clips) if c.kit == kit]
        row: dict[str, Any] = {}
        for name, sep in systems.items():
            pairs = []
            for i in idx:
                tr = sep.transcribe(clips[i].audio, sample_rate=44100)
                pairs.append((clips[i].hits, _hits(tr)))
            classes = tuple(sep.classes)
            row[name] = score_hits(pairs, classes)
        if answers is not None:
            pairs = []
            for i in idx:
                ref = {g: sorted(h for c, hs in clips[i].hits.items() if group_of(c) == g for h in hs)
                       for g in PEER_GROUPS}
                est = {g: [(t, float("nan")) for t in answers[i][g]] for g in PEER_GROUPS}
                pairs.append((ref, est))
            row["ADTOF"] = {g: v for g, v in score_hits(pairs, PEER_GROUPS).items()}
        out[kit] = row
    return out


def regressions(results: Mapping[str, Any], system: str, baseline: str, *, tolerance: float = 0.0
                ) -> list[tuple[str, str, float, float]]:
    """``(kit, class, F of system, F of baseline)`` wherever ``system`` is below ``baseline``."""
    bad = []
    for kit, row in results.items():
        if not isinstance(row, Mapping) or system not in row or baseline not in row:
            continue
        for name, m in row[baseline].items():
            if name.startswith("_") or m.get("F") is None or name not in row[system]:
                continue
            f = row[system][name].get("F")
            if f is not None and f < m["F"] - tolerance:
                bad.append((kit, name, float(f), float(m["F"])))
    return bad


def require_no_regression(results: Mapping[str, Any], system: str, baseline: str, *, tolerance: float = 0.0) -> None:
    """Raise :class:`IdmError` naming every class of every kit where ``system`` is below ``baseline``."""
    bad = regressions(results, system, baseline, tolerance=tolerance)
    if bad:
        lines = ", ".join(f"{k}/{c} {f:.3f} < {b:.3f}" for k, c, f, b in bad)
        raise IdmError(f"{system} falls below {baseline} on {len(bad)} class(es): {lines}; it must not ship")


def table(results: Mapping[str, Any], names: Sequence[str]) -> str:
    """Markdown: per kit, F (and SDR) per system for ``names`` (classes or groups)."""
    lines = []
    for kit, row in results.items():
        if not isinstance(row, Mapping):
            continue
        lines += [f"**{kit}** (F / SDR dB)", "", "| system | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for sysname, m in row.items():
            if not isinstance(m, Mapping) or not any(isinstance(m.get(n), Mapping) and m[n].get("F") is not None
                                                     for n in names):
                continue  # velocities only (the stem level) or nothing of these names
            cells = []
            for n in names:
                v = m.get(n)
                if not v or v.get("F") is None:
                    cells.append("-")
                else:
                    sdr = v.get("sdr_db")
                    cells.append(f"{v['F']:.2f}" + (f" / {sdr:.1f}" if sdr is not None else ""))
            lines.append(f"| {sysname} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


#: Hits per second of :func:`solo_report`'s patterns: a slow pulse, eighths and sixteenths at ~100 BPM.
SOLO_RATES = (2.0, 4.0, 7.0)


def solo_report(transcribe: Callable[[np.ndarray], Transcription], kits: Sequence[Any], *,
                rates: Sequence[float] = SOLO_RATES, seconds: float = 6.0, seed: int = 5) -> dict[str, Any]:
    """Each class of each kit played alone: does a transcriber hear that drum, and nothing else?

    Per kit and class, the class's instruments (every note of the kit that maps to it, taken in turn)
    are played alone at each of ``rates`` hits per second for ``seconds`` (dry, velocities .5-1, 5 ms
    timing jitter), and ``transcribe`` (mono 44.1 kHz float32 -> :class:`Transcription`) runs on the
    sum. Returns ``{kit: {class: {"recall": R of the class at 50 ms, "false_per_min": other classes'
    hits per minute, "worst": the class that fires most, with its hits per minute}}}``. Hits in a
    groove tell a network where the other drums are; a drum played alone (a hi-hat counting in, a
    kick on the beat) shows whether it hears the drum or the groove (MODEL_CARD.md, session 13)."""
    from .kits import PATTERN_NOTES
    from .transcriber_loop import _match

    sr = 44100
    out: dict[str, Any] = {}
    for kit in kits:
        rng = np.random.default_rng(seed)
        per: dict[str, Any] = {}
        for c in kit.classes:
            notes = [n for n in sorted(kit.instruments) if PATTERN_NOTES.get(int(n)) == c]
            if not notes:
                continue
            true_n = found = 0
            false: dict[str, int] = {}
            minutes = 0.0
            for r in rates:
                grid = np.arange(0.5, seconds, 1.0 / r)
                ts = grid + rng.normal(0.0, 0.005, size=grid.size)
                x = np.zeros(int((seconds + 1.5) * sr), dtype=np.float32)
                for i, t in enumerate(ts):
                    inst = kit.instruments[notes[i % len(notes)]][0]
                    v = float(rng.uniform(0.5, 1.0))
                    s = inst.pick(v, rng) * np.float32(v)
                    a = int(round(t * sr))
                    b = min(x.size, a + s.size)
                    x[a:b] += s[: b - a]
                tr = transcribe(x)
                got = np.array([h.time_s for h in tr.hits.get(c, ())])
                true_n += len(ts)
                found += len(_match(ts, got))
                for o in tr.classes:
                    if o != c and tr.hits[o]:
                        false[o] = false.get(o, 0) + len(tr.hits[o])
                minutes += x.size / sr / 60.0
            worst = max(false, key=lambda o: false[o]) if false else None
            per[c] = {"recall": round(found / max(true_n, 1), 3),
                      "false_per_min": round(sum(false.values()) / minutes, 1),
                      "worst": None if worst is None else [worst, round(false[worst] / minutes, 1)]}
        out[kit.name] = per
    return out
