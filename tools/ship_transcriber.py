"""Ship a trained transcriber as the default: refit its calibration on the validation clips and
copy it into idm_host/models/default/ (transcriber.pt + transcriber.json).

    .venv/bin/python tools/ship_transcriber.py runs/tr1/best.pt [--data train/transcriber.json]

The thresholds and velocity maps are fitted on the run's validation clips (seed 777: the same
clips the run selected its checkpoint on; the figures in MODEL_CARD.md come from other seeds).
A candidate must first get the bundled loop's hits in every repeat of the loop tiled 20 times
(`tiling_differences`, the shipped network's test); `--force` ships one that does not.
`--groups TT,CY` lets a group's classes share the peaks of their summed probability (fitted).
`--blend W` blends the default IDM model's onset head into the network's probabilities
(W x network + (1 - W) x head, every class), fitted and checked as the engine runs it.
`--dry-run` fits and checks a candidate the same way and prints the result without writing anything.
Shipping drops any ship gate: `python -m bench.bench_transcription --record-gate` measures the
shipped weights against the official ones and records it (the engine uses the network by default
only with a passed gate for those very weights and thresholds).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _known(flag: str, names, classes) -> bool:
    """Whether every class ``flag`` names is one of ``classes``; if not, says which on stderr."""
    unknown = sorted(set(names) - set(classes))
    if unknown:
        print(f"{flag}: {', '.join(unknown)} not among {', '.join(classes)}", file=sys.stderr)
    return not unknown


def main(argv=None) -> int:
    from idm_host.audio import load_audio
    from idm_host.classes import GROUPS
    from idm_host.models import DEFAULT_DIR
    from idm_host.train.tiling import tiling_differences
    from idm_host.train.data import DataConfig
    from idm_host.train.transcriber_loop import evaluate_transcriber, selection_score, validation_clips
    from idm_host.transcriber import Calibration, Transcriber, save_transcriber

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--data", default=str(ROOT / "train" / "transcriber.json"))
    ap.add_argument("--window", type=float, default=None, metavar="S",
                    help="inference window (s) the thresholds are fitted in and the engine runs (default: the "
                         "weights' sidecar's, else idm_host.transcriber.WINDOW_S)")
    ap.add_argument("--context", type=float, default=None, metavar="S",
                    help="context (s) on either side of each window (default: as for --window, CONTEXT_S)")
    ap.add_argument("--blend", type=float, default=None, metavar="W",
                    help="blend the default IDM model's head into every class's onset probability: W x the "
                         "network's + (1 - W) x the head's (1: the network alone; default: the weights' "
                         "sidecar's, else none); the engine blends only with that very model")
    ap.add_argument("--blend-classes", default=None, metavar="C1,C2,...",
                    help="the classes --blend applies to (default: all; the others keep the network's alone)")
    ap.add_argument("--level-classes", default=None, metavar="C1,C2,...",
                    help="the classes whose velocities may take the recording's band levels (a level map, "
                         "fitted where it helps on the validation clips; default: all; '' for none)")
    ap.add_argument("--groups", default="", metavar="G1,G2,...",
                    help="drum groups (TT, CY, ...) whose classes may share the peaks of their summed probability, "
                         "each peak going to the most probable class (fitted where it helps; default: none)")
    ap.add_argument("--force", action="store_true", help="ship even where the tiled-loop check finds differences")
    ap.add_argument("--dry-run", action="store_true",
                    help="fit and check as for shipping, print the result, write nothing")
    a = ap.parse_args(argv)
    src = Path(a.weights)
    meta = json.loads(src.with_suffix(".json").read_text())
    model = Transcriber.load(src)
    model.calibration = model.calibration.with_window(a.window, a.context)  # checked as a sidecar's
    separator = None
    if a.blend is not None or model.calibration.blend:
        from idm_host.engine import Separator

        separator = Separator("default", transcriber=None)
        if a.blend is not None:
            names = model.classes if a.blend_classes is None else [c.strip() for c in a.blend_classes.split(",")]
            if not _known("--blend-classes", names, model.classes):
                return 2
            blend = {c: a.blend for c in names} if a.blend != 1.0 else {}  # outside 0..1: with_blend's error
            model.calibration = model.calibration.with_blend(blend, separator.model_sha256)
    loop = load_audio(ROOT / "examples" / "drum-loop.flac", sample_rate=44100).mono()
    cfg = DataConfig.load(a.data)
    clips = validation_clips([k.load() for k in cfg.validation_kits], classes=model.classes)
    heads = None
    if separator is not None and model.calibration.uses_head(separator.model_sha256):
        heads = [separator.onset_head(c.audio, sample_rate=44100) for c in clips]
    elif model.calibration.blend:
        print(f"{src}: its blend is for another IDM model than the default one; pass --blend", file=sys.stderr)
        return 1
    level_classes = None if a.level_classes is None else [c.strip() for c in a.level_classes.split(",") if c.strip()]
    if not _known("--level-classes", level_classes or (), model.classes):
        return 2
    groups = [g.strip() for g in a.groups.split(",") if g.strip()]
    if not _known("--groups", groups, GROUPS):
        return 2
    rep = evaluate_transcriber(model, clips, fit=True, heads=heads, level_classes=level_classes, groups=groups)
    score = selection_score(rep["results"], model.classes)
    extra = {k: v for k, v in meta.items() if k not in ("format", "sha256", "classes", "calibration", "gate")}
    extra["validation_refit"] = {"score": score, "results": rep["results"]}
    # the shipped thresholds are the refitted ones: check the tiled loop with those
    refit = Transcriber(model.network, Calibration.from_dict(rep["calibration"]), name=model.name)
    diff = tiling_differences(refit, loop, repeats=20, margin=0.05, separator=separator)
    if diff:
        print(f"{src}: the loop tiled 20 times gets other hits than the loop alone ({len(diff)}):", file=sys.stderr)
        for line in diff[:12]:
            print("  " + line, file=sys.stderr)
        if not a.force and not a.dry_run:
            print("not shipped (--force ships it anyway)", file=sys.stderr)
            return 1
    if a.dry_run:
        print(json.dumps({"dry_run": True, "score": round(score, 4), "tiling_differences": len(diff),
                          "calibration": rep["calibration"]}, indent=1))
        return 1 if diff and not a.force else 0
    digest = save_transcriber(DEFAULT_DIR / "transcriber.pt", model.network, calibration=refit.calibration,
                              extra=extra)
    print(json.dumps({"sha256": digest, "score": round(score, 4), "calibration": rep["calibration"]}, indent=1))
    return 0


if __name__ == "__main__":
    from idm_host.errors import IdmError

    try:
        sys.exit(main())
    except IdmError as exc:  # a bad --window, unreadable weights or sidecar: one line
        print(f"ship_transcriber: error: {exc}", file=sys.stderr)
        sys.exit(1)
