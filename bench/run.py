"""``make bench``: run every ``bench/bench_*.py`` and write BENCHMARKS.md plus bench/results.json.

Each module defines ``run() -> list[dict]``; a dict has ``name``, ``value``, ``unit`` and optionally
``target`` (text), ``ok`` (bool) and ``note``. Benchmarks measure; they never fail the build.
Figures are appended per section so that each section keeps the command and machine that made it.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import pkgutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--only", nargs="*", help="module names (e.g. bench_engine)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n in args.only]
    results: dict[str, list[dict]] = {}
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            results[name] = importlib.import_module(f"bench.{name}").run()
        except Exception:
            results[name] = [{"name": "error", "value": traceback.format_exc(limit=3), "unit": ""}]
        print(f"   {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench.run`) on {stamp}; machine: {machine()}.",
        "Targets come from the issues; a benchmark measures and never fails the build.",
        "",
    ]
    for name, rows in results.items():
        doc = (importlib.import_module(f"bench.{name}").__doc__ or name).strip().splitlines()[0]
        lines += [f"## {doc}", "", f"Command: `python -m bench.run --only {name}`", "",
                  "| measure | value | unit | target | met | note |", "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            v = r.get("value")
            v = f"{v:.4g}" if isinstance(v, float) else str(v).replace("\n", " ")
            ok = r.get("ok")
            met = "" if ok is None else ("yes" if ok else "no")
            lines.append(f"| {r['name']} | {v} | {r.get('unit', '')} | {r.get('target', '')} | {met} | {r.get('note', '')} |")
        lines.append("")
    out = Path(args.out)
    if args.only and out.exists():
        # keep the other sections: replace only the ones just run
        old = out.read_text().split("\n## ")
        keep = [s for s in old[1:] if not any(
            s.startswith((importlib.import_module(f"bench.{n}").__doc__ or n).strip().splitlines()[0]) for n in names)]
        text = "\n".join(lines).rstrip() + "\n" + "".join("\n## " + s.rstrip() + "\n" for s in keep)
    else:
        text = "\n".join(lines)
    out.write_text(text)
    (HERE / "results.json").write_text(json.dumps({"when": stamp, "machine": machine(), "results": results}, indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
