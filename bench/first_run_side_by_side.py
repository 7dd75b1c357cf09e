"""The first run of two checkouts side by side: `idm-host separate` on one 3-minute mix, each run in
a fresh model cache, rounds alternating between the checkouts so that load changes hit both.

    git worktree add /tmp/base REV
    python bench/first_run_side_by_side.py /tmp/base [--rounds 3]

Prints each run's wall and CPU seconds and the best of each checkout (issue 10; BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _separate(repo: Path, wav: Path, out: Path, cache: Path) -> tuple[float, float]:
    env = dict(os.environ, IDM_HOST_MODELS=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "idm_host", "separate", str(wav), "--out", str(out), "--quiet"],
                       env=env, capture_output=True, text=True, cwd=repo)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"{repo}: separate failed: {r.stderr[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="the other checkout (e.g. a git worktree of an older commit)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from idm_host.audio import save_audio
    from idm_host.demo import render_loop

    with tempfile.TemporaryDirectory(prefix="idm-sbs-") as d:
        tmp = Path(d)
        x = render_loop(bars=75)
        dur = x.shape[-1] / 44100
        wav = save_audio(tmp / "mix.wav", x, 44100, bit_depth=16)
        runs: dict[str, list[tuple[float, float]]] = {"base": [], "head": []}
        for i in range(args.rounds):
            for name, repo in (("base", args.base.resolve()), ("head", REPO)):
                runs[name].append(_separate(repo, wav, tmp / f"{name}{i}", tmp / f"cache-{name}{i}"))
                w, c = runs[name][-1]
                print(f"{name} round {i}: wall {w:.2f} s, CPU {c:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)
        for name, rs in runs.items():
            w, c = min(r[0] for r in rs), min(r[1] for r in rs)
            print(f"{name}: best wall {w:.2f} s = {dur / w:.1f}x real time; best CPU {c:.2f} s ({dur:.1f} s of audio)")


if __name__ == "__main__":
    main()
