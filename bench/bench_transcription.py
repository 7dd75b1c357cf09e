"""Transcription side by side on the validation kits: our transcriber, the default model's IDM head,
the official weights and ADTOF (a published transcriber, run from ../shared/peers in its own venv).

Two sets, neither used for training nor for fitting the shipped thresholds (those come from the
training run's validation clips, seed 777):
- ``rendered``: per validation kit, 12 clips of 8 s rendered by ``render_dataset`` (seed 4242) with
  the room/compression augmentation per stem, so stems are known: onset P/R/F, velocities, SDR,
  plus the true hits through our stems;
- ``recorded``: per validation kit, 12 dry and 12 recorded clips (bleed, overheads, room, bus,
  residue; seed 778): onset figures only;
- ``tiled_loop``: the bundled loop tiled 20 times, the hits that differ from the loop alone's;
- ``solo``: each drum of each validation kit played alone (:func:`idm_host.train.compare.solo_report`):
  the drum's recall and the other classes' hits per minute.

    .venv/bin/python -m bench.bench_transcription [--transcriber PATH] [--out docs/model/transcriber-comparison.md]

Writes the full figures as JSON beside the markdown. ``IDM_HOST_PEER_PYTHON`` names ADTOF's Python.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAL_CONFIG = ROOT / "train" / "transcriber.json"


def _systems(transcriber: str | None):
    from idm_host.engine import Separator
    from idm_host.installs import import_official
    from idm_host.models import OFFICIAL_NAME, model_path

    systems = {"idm-host": Separator("default", transcriber=transcriber or "default"),
               "IDM head (old default)": Separator("default", transcriber=None)}
    try:
        model_path(OFFICIAL_NAME)
    except Exception:  # not installed: import from ../shared/reference when it is there
        ref = Path(os.environ.get("IDM_HOST_REFERENCE", ROOT.parent / "shared" / "reference"))
        ckpt = ref / "idm-44-train-kits.ckpt"
        if ckpt.is_file():
            import_official(ckpt)
    try:
        systems["official IDM"] = Separator(OFFICIAL_NAME, transcriber=None)
    except Exception as exc:  # the comparison still runs without it
        print(f"official weights unavailable: {exc}", file=sys.stderr)
    return systems


def measure(transcriber: str | None, out_md: Path, clips: int = 12) -> dict:
    import numpy as np

    from idm_host.train.compare import compare, compare_recorded, regressions, solo_report, table
    from idm_host.train.data import Augment, DataConfig, render_dataset
    from idm_host.train.patterns import PatternSource
    from idm_host.train.tiling import tiled_changes
    from idm_host.train.transcriber_loop import validation_clips

    cfg = DataConfig.load(VAL_CONFIG)
    kits = [k.load() for k in cfg.validation_kits]
    systems = _systems(transcriber)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="idm-bench-tr-") as tmp:
        datasets = {}
        for kit in kits:
            d = Path(tmp) / kit.name.replace(":", "_").replace(" ", "_")
            render_dataset(d, [kit], PatternSource(), n_clips=clips, duration_s=8.0, seed=4242,
                           augment=Augment(gain_prob=0.8, room_prob=0.5, compress_prob=0.5))
            datasets[kit.name] = d
        rendered = compare(datasets, systems, stems_separator=systems["idm-host"],
                           progress=lambda m: print(m, file=sys.stderr))
    rec_clips = validation_clips(kits, clips_per_condition=clips, seed=778)
    recorded = compare_recorded(rec_clips, {k: v for k, v in systems.items()})
    mono = {name: (lambda x, sep=sep: sep.transcribe(x[None], sample_rate=44100)) for name, sep in systems.items()}
    solo = {name: solo_report(f, kits) for name, f in mono.items()}
    # speed: the transcriber alone on 3 minutes of the bundled loop, process warm
    from idm_host.audio import load_audio

    loop = load_audio(ROOT / "examples" / "drum-loop.flac", sample_rate=44100)
    x = np.tile(loop.mono(), int(np.ceil(180 * 44100 / loop.samples.shape[1])))[: 180 * 44100]
    tiled = {name: tiled_changes(f, loop.mono()) for name, f in mono.items()}
    tr = systems["idm-host"].transcriber
    t = time.perf_counter()
    tr.transcribe(x)
    rtf = 180.0 / (time.perf_counter() - t)
    result = {"rendered": rendered, "recorded": recorded, "solo": solo, "tiled_loop": tiled, "transcriber_x_realtime_3min": round(rtf, 1),
              "wall_s": round(time.time() - t0, 1),
              "regressions_vs_official": regressions(rendered, "idm-host", "official IDM"),
              "head_regressions_vs_official": regressions(rendered, "IDM head (old default)", "official IDM")}
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    groups = ["KD", "SD", "HH", "TT", "CY"]
    classes = ["KD", "SD", "HH_CHH", "HH_OHH", "TT_HFT", "TT_LMT", "TT_HMT", "CY_CR", "CY_RD"]
    md = ["# Transcription side by side (validation kits)", "",
          f"`.venv/bin/python -m bench.bench_transcription` ({time.strftime('%Y-%m-%d')}; transcriber "
          f"{Path(transcriber).name if transcriber else 'shipped default'}; {rtf:.0f}x real time on 3 min).", "",
          "## Rendered clips (stems known; room/compression per stem): groups", "", table(rendered, groups),
          "## Rendered clips: the 9 classes", "", table(rendered, classes),
          "## Velocities (median predicted/true, correlation)", "",
          "In brackets: the correlation of the true velocities with each hit's own true stem's peak level (over the "
          "mix's peak; `stem_level_velocities`), what the drum's level alone says about its velocity on these clips "
          "(per-class gains, per-stem compression and room vary from clip to clip).", ""]
    for kit, row in rendered.items():
        if not isinstance(row, dict):
            continue
        cells = []
        for c in ("KD", "SD", "HH"):
            v = row["idm-host"].get(c, {})
            lv = row.get("stem level", {}).get(c, {}).get("velocity_corr", float("nan"))
            cells.append(f"{c} {v.get('velocity_ratio', float('nan')):.2f} / {v.get('velocity_corr', float('nan')):.2f}"
                         f" ({lv:.2f})")
        md.append(f"- {kit}: " + "; ".join(cells))
    md += ["", "## Recorded clips (bleed, overheads, room, bus, residue): onset F per group", ""]
    for kit, row in recorded.items():
        if not isinstance(row, dict):
            continue
        md += [f"**{kit}**", "", "| system | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
        for sysname, m in row.items():
            md.append(f"| {sysname} | " + " | ".join(f"{m[g]['F']:.2f}" if g in m else "-" for g in groups) + " |")
        md.append("")
    md += ["## Each drum played alone: recall / other classes' hits per minute", "",
           "Every instrument of a class alone at 2, 4 and 7 hits/s, dry (`solo_report`). A transcriber that hears "
           "the groove rather than the drum fires other classes here.", ""]
    for kit in next(iter(solo.values())):
        md += [f"**{kit}**", "", "| system | " + " | ".join(classes) + " | mean |", "|---|" + "---|" * (len(classes) + 1)]
        for sysname, rep in solo.items():
            cells = [rep[kit].get(c) for c in classes]
            got = [d for d in cells if d]
            md.append(f"| {sysname} | " + " | ".join(f"{d['recall']:.2f} / {d['false_per_min']:.0f}" if d else "-"
                                                   for d in cells)
                      + f" | {np.mean([d['recall'] for d in got]):.2f} / {np.mean([d['false_per_min'] for d in got]):.0f} |")
        md.append("")
    md += ["## The bundled loop tiled 20 times: hits that differ from the loop alone's", "",
           "Over the 20 repeats, within 15 ms (`tiled_changes`); per repeat the loop alone has "
           f"{sum(v['alone'] for v in next(iter(tiled.values())).values())} hits.", "",
           "| system | missing | added | classes that differ (alone / missing / added) |", "|---|---|---|---|"]
    for name, t in tiled.items():
        diff = ", ".join(f"{c} {v['alone']}/{v['missing']}/{v['added']}" for c, v in t.items() if v["missing"] or v["added"])
        md.append(f"| {name} | {sum(v['missing'] for v in t.values())} | {sum(v['added'] for v in t.values())} | "
                  f"{diff or 'none'} |")
    md.append("")
    for name, key in (("idm-host", "regressions_vs_official"), ("The IDM head (today's default)", "head_regressions_vs_official")):
        md += [f"Regressions of {name} against the official weights (kit, class, F, official F; "
               f"{len(result[key])}): "
               + (", ".join(f"{k}/{c} {f:.2f}<{b:.2f}" for k, c, f, b in result[key]) or "none"), ""]
    out_md.write_text("\n".join(md) + "\n")
    return result


def run() -> list[dict]:
    res = measure(None, ROOT / "docs" / "model" / "transcriber-comparison.md")
    rows = [{"name": "transcriber speed, 3 min mix", "value": res["transcriber_x_realtime_3min"], "unit": "x real time"}]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transcriber", default=None, help="weights to compare (default: the shipped one)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "model" / "transcriber-comparison.md"))
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--record-gate", action="store_true",
                    help="write the ship gate (passed when no class of any kit is below the official weights) "
                         "into the shipped transcriber's sidecar")
    a = ap.parse_args(argv)
    if a.record_gate and a.transcriber is not None:
        ap.error("--record-gate measures the shipped transcriber; leave out --transcriber")
    res = measure(a.transcriber, Path(a.out), a.clips)
    if a.record_gate:
        from idm_host.models import DEFAULT_DIR
        from idm_host.transcriber import record_gate

        if "official IDM" not in next(v for v in res["rendered"].values() if isinstance(v, dict)):
            print("no gate recorded: the official weights were not measured", file=sys.stderr)
            return 1
        gate = record_gate(DEFAULT_DIR / "transcriber.pt", res["regressions_vs_official"], against="official IDM",
                           measured_by=".venv/bin/python -m bench.bench_transcription --record-gate",
                           figures={"date": time.strftime("%Y-%m-%d"), "clips_per_kit": a.clips})
        print(f"ship gate {'passed' if gate['passed'] else 'failed'}: {len(gate['regressions'])} regression(s)",
              file=sys.stderr)
    print(json.dumps({"regressions": res["regressions_vs_official"], "x_realtime": res["transcriber_x_realtime_3min"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
