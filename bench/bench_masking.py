"""Masking modes (issue 13): runtime per 10 s of audio, and peak memory of a 10-minute separate.

``python -m bench.run --only bench_masking`` (or ``python -m bench.bench_masking`` to print the rows
without touching BENCHMARKS.md) measures, on 10 s of the project's example loop (stereo, the model's
own hits): the fit of the adaptive templates and the masking of each mode, CPU seconds of this
process (the figure that does not depend on what else the machine runs) and wall seconds, best of 3;
and the peak memory (VmHWM) of ``idm-host separate --masking M`` on a 10-minute stereo file.

``python -m bench.bench_masking --sdr DATASET [DATASET ...] --out results.json`` scores the modes on
datasets rendered by ``idm-host eval render`` (SDR per class and group, median over 1 s windows then
over clips, as ``idm-host eval``), once with each clip's true hits and once with the model's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("wiener", "power", "adaptive")


def _clip_10s():
    from idm_host.audio import load_audio
    from idm_host.demo import make_example_loop

    tmp = Path(tempfile.mkdtemp(prefix="bench-masking-"))
    path = make_example_loop(tmp / "loop.wav", duration_s=10.0)
    return tmp, load_audio(path)


def _timed(fn, repeat: int = 3) -> tuple[float, float]:
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    return best_cpu, best_wall


def speed_rows(sep, audio) -> list[dict]:
    a, enc, tr, kit = sep.prepare(audio)
    per10 = 10.0 / a.duration_s
    rows = []
    plan_box = {}

    def fit():
        plan_box["plan"] = sep.fit_adaptive(a, tr, kit)

    cpu, wall = _timed(fit)
    rows.append({"name": "adaptive: fit the templates, per 10 s", "value": cpu * per10, "unit": "CPU s",
                 "target": "<= 0.5 s", "ok": cpu * per10 <= 0.5,
                 "note": f"wall {wall * per10:.2f} s; {tr.n_hits} hits, stereo (mid + per-channel refinement)"})
    for mode in MODES:
        plan = plan_box["plan"] if mode == "adaptive" else None

        def masks():
            for _ in sep.iter_blocks(a, tr, kit, masking=mode, plan=plan):
                pass

        cpu, wall = _timed(masks)
        rows.append({"name": f"{mode}: masks and stems, per 10 s", "value": cpu * per10, "unit": "CPU s",
                     "note": f"wall {wall * per10:.2f} s; 5 s blocks"})
    return rows


def memory_rows(model: str, audio, tmp: Path, modes=("power", "adaptive")) -> list[dict]:
    from idm_host.audio import save_audio

    ten = np.tile(audio.samples, (1, 60))[:, : 600 * 44100]
    long_path = save_audio(tmp / "ten-minutes.wav", ten, 44100, bit_depth=16)
    del ten
    code = ("import sys; from idm_host.cli import main; rc = main(sys.argv[1:]); "
            "print('VmHWM', open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr); "
            "sys.exit(rc)")
    rows = []
    for mode in modes:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code, "separate", str(long_path), "--out", str(tmp / f"out-{mode}"),
                            "--model", model, "--masking", mode, "--quiet"], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        hwm = [line.split()[1] for line in r.stderr.splitlines() if line.startswith("VmHWM")]
        mb = int(hwm[0]) / 1024 if hwm else float("nan")
        rows.append({"name": f"10-min stereo file, --masking {mode}: peak memory (VmHWM)", "value": mb, "unit": "MB",
                     "target": "bounded (<= 1500 MB)", "ok": mb <= 1500,
                     "note": (f"process wall {wall:.0f} s" if r.returncode == 0 else r.stderr.strip()[-200:])})
    return rows


def run() -> list[dict]:
    from idm_host.engine import Separator

    tmp, audio = _clip_10s()
    sep = Separator("default", "cpu")
    return speed_rows(sep, audio) + memory_rows("default", audio, tmp)


# ---------------------------------------------------------------- quality (SDR) on rendered datasets
def score(datasets: list[str], modes=MODES) -> list[dict]:
    """Per clip, hit source and mode: SDR per class and group (None where the reference is silent)."""
    from idm_host.classes import GROUPS, group_of
    from idm_host.engine import Separator
    from idm_host.train.evaluate import _merge_stems, dataset_clips, load_clip, window_sdr

    sep = Separator("default", "cpu")
    out = []
    for ds in datasets:
        clips, classes = dataset_clips(ds)
        groups = tuple(g for g in GROUPS if any(group_of(c) == g for c in classes))
        for folder in clips:
            clip = load_clip(folder, classes)
            a, enc, tr_model, kit = sep.prepare(clip.mixture, sample_rate=clip.sample_rate)
            ref = clip.stems.astype(np.float64)
            ref_g = _merge_stems(ref, classes, groups)
            for src in ("true", "model"):
                tr = sep._check_transcription(clip.transcription) if src == "true" else tr_model
                for mode in modes:
                    est = np.zeros((len(classes), a.n_frames))
                    for start, st, _res in sep.iter_blocks(a, tr, kit, masking=mode, user_hits=src == "true"):
                        for i, c in enumerate(classes):
                            est[i, start:start + st.shape[2]] = st[sep.classes.index(c)].mean(0)
                    row = {"dataset": Path(ds).name, "clip": folder.name, "hits": src, "mode": mode}
                    for names, r, e in ((classes, ref, est), (groups, ref_g, _merge_stems(est, classes, groups))):
                        for i, c in enumerate(names):
                            w = window_sdr(r[i], e[i], clip.sample_rate)
                            row[c] = float(np.nanmedian(w)) if np.isfinite(w).any() else None
                    out.append(row)
            print(f"{Path(ds).name} {folder.name}", file=sys.stderr, flush=True)
    return out


def table(rows: list[dict], names=("KD", "SD", "HH", "TT", "CY")) -> str:
    """Markdown: median over clips per (dataset, hits, mode); ALL is the mean of the group medians."""
    keys = sorted({(r["dataset"], r["hits"], r["mode"]) for r in rows},
                  key=lambda k: (k[0], k[1] != "true", MODES.index(k[2]) if k[2] in MODES else 9))
    lines = ["| kit | hits | mode | " + " | ".join(names) + " | ALL |", "|---|---|---|" + "---|" * (len(names) + 1)]
    for k in keys:
        sel = [r for r in rows if (r["dataset"], r["hits"], r["mode"]) == k]
        med = []
        for n in names:
            v = [r[n] for r in sel if r.get(n) is not None]
            med.append(float(np.median(v)) if v else None)
        vals = [m for m in med if m is not None]
        cells = ["-" if m is None else f"{m:.1f}" for m in med]
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(cells) + f" | {np.mean(vals):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdr", nargs="+", metavar="DATASET", help="score the modes on these datasets")
    ap.add_argument("--out", help="write the per-clip rows as JSON here (with --sdr)")
    ap.add_argument("--table", metavar="JSON", help="print the table of an earlier --out")
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    if args.sdr:
        rows = score(args.sdr)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
        print(table(rows))
        return 0
    for r in run():
        print(r)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
