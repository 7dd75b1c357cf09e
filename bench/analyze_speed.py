"""3-minute analyze and transcribe timings, this checkout against another, side by side in one run.

Each round starts one fresh process per checkout, in turn (so that the two share the machine's state
as closely as two runs can), and each process times ``Separator.analyze`` and ``Separator.transcribe``
of 3 minutes of the bundled loop (stereo, 44.1 kHz) twice, with the network's hits
(``transcriber="default"``), as ``Separator()`` does (``"auto"``: the network's once it passes its
gate, until then the IDM head's with the network's velocities) and with the IDM head's alone
(``transcriber=None``), after a 10 s warm-up, and
``analyze`` with given hits (the user's: adaptive masks).
The figures are the best and the median over all rounds of a checkout.

    .venv/bin/python -m bench.analyze_speed [--against /path/to/other/checkout] [--rounds 3] [--out FILE.json]

Absolute times hold for this machine at this moment only; the ratio between the two checkouts is the figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = 180.0


def _measure(checkout: str) -> dict:
    sys.path.insert(0, checkout)
    import time

    import numpy as np

    import idm_host
    if not idm_host.__file__.startswith(checkout):
        raise SystemExit(f"imported {idm_host.__file__}, not from {checkout}")
    from idm_host.audio import load_audio
    from idm_host.engine import Separator

    loop = load_audio(ROOT / "examples" / "drum-loop.flac", sample_rate=44100)
    n = int(DURATION_S * 44100)
    x = np.tile(loop.samples, (1, int(np.ceil(n / loop.samples.shape[1]))))[:, :n]
    out: dict = {}
    for name, transcriber in (("network", "default"), ("default (auto)", "auto"), ("IDM head", None)):
        sep = Separator("default", transcriber=transcriber)
        sep.analyze(x[:, :441000], sample_rate=44100)
        for what, call in (("analyze", sep.analyze), ("transcribe", sep.transcribe)):
            times = []
            for _ in range(2):
                t = time.perf_counter()
                call(x, sample_rate=44100)
                times.append(time.perf_counter() - t)
            out[f"{what}, {name}"] = times
        if transcriber is None:  # the user's own hits (an edited session): adaptive masks
            hits = sep.transcribe(x, sample_rate=44100)
            times = []
            for _ in range(2):
                t = time.perf_counter()
                sep.analyze(x, hits, sample_rate=44100)
                times.append(time.perf_counter() - t)
            out["analyze, user's hits (adaptive masks)"] = times
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default=None, help="another checkout of idm-host to time beside this one")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.child)))
        return 0
    checkouts = {"this": str(ROOT)}
    if args.against:
        checkouts["against"] = str(Path(args.against).resolve())
    runs: dict[str, dict[str, list[float]]] = {k: {} for k in checkouts}
    for _ in range(args.rounds):
        for key, path in checkouts.items():
            res = subprocess.run([sys.executable, "-m", "bench.analyze_speed", "--child", path], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            for fig, times in json.loads(res.stdout.strip().splitlines()[-1]).items():
                runs[key].setdefault(fig, []).extend(times)
    summary = {key: {fig: {"best_s": round(min(t), 3), "median_s": round(statistics.median(t), 3),
                           "x_real_time_best": round(DURATION_S / min(t), 1), "runs_s": [round(v, 3) for v in t]}
                     for fig, t in figs.items()} for key, figs in runs.items()}
    summary["checkouts"] = checkouts
    for fig in runs["this"]:
        cells = [f"{key}: best {summary[key][fig]['best_s']:.2f} s ({summary[key][fig]['x_real_time_best']:.1f}x), "
                 f"median {summary[key][fig]['median_s']:.2f} s" for key in checkouts]
        print(f"{fig}: " + " | ".join(cells))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
