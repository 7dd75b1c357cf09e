"""The longest wait between two progress reports of one batch unit, as a Dask worker runs it.

A Dask worker stops a file at its next progress report after the client's Ctrl-C
(docs/CLUSTER.md), so the longest gap between two reports is how long a stop can wait. This runs
``idm_host.batch.Worker.run`` on one 2.4 s example loop with an empty one-shot cache (a kit to
synthesise, the slowest case) and one torch thread (as a nanny starts its workers), and prints
each report with the seconds since the one before, the longest gap and the load average.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 15 .venv/bin/python bench/progress_gaps.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="idm-progress-gaps-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["IDM_HOST_MODELS"] = str(tmp / "models")  # empty: the kit is synthesised
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from idm_host.batch import BatchJob, Worker, WorkUnit
        from idm_host.demo import make_example_loop

        make_example_loop(tmp / "c.wav", duration_s=2.4)
        job = BatchJob("separate", "default", "cpu", {"classes": "9", "format": "wav", "bit_depth": 24,
                                                      "masking": "auto", "alpha": None, "drum_map": "gm",
                                                      "onsets": None}, out_dir=str(tmp / "out"))
        worker = Worker(job)
        worker.separator  # noqa: B018 - the model loads before the timing, as on a worker
        last = [time.monotonic()]
        steps: list[tuple[float, str]] = []

        def report(fraction: float, message: str) -> None:
            now = time.monotonic()
            steps.append((round(now - last[0], 2), message))
            last[0] = now

        t0 = time.monotonic()
        status = worker.run(WorkUnit(0, str(tmp / "c.wav"), "c", (str(tmp / "out" / "c"),)), report)
        total = time.monotonic() - t0
    print(json.dumps({"status": status.status, "error": status.error, "total_s": round(total, 2),
                      "reports": len(steps), "longest_gap_s": max(s for s, _ in steps),
                      "load_average": open("/proc/loadavg").read().split()[:3], "steps": steps}, indent=1))


if __name__ == "__main__":
    main()
