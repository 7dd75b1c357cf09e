"""Folder batches: files per minute for 24 clips, local --jobs 1 and 2 beside a Dask cluster of 1 and 2 workers (issue 18)

All four run the same batch (``idm_host.batch.run_batch``, ``separate`` of 24 example loops of
2.4 s, the shipped default model) into fresh output folders, timed from the call to the summary,
in this process; the Dask cluster is a ``dask scheduler`` and ``dask worker --nworkers N
--nthreads 1`` on 127.0.0.1 started for the measure (its start is not counted; the model load on
each worker, paid once per worker and batch, is reported on its own and is inside the timing).

Every configuration starts from the same one-shot cache: a private ``IDM_HOST_MODELS`` (for this
process, the ``--jobs`` workers and the Dask workers alike), filled once before them by an untimed
batch of the same clips. Each clip's kit embedding is its own, so a cold cache costs one kit
synthesis per clip (seconds each), which would otherwise land on whichever configuration ran first
(an earlier version of this bench measured ``--jobs 1`` at 4.6 files/min that way, the others
from the cache it had filled). The fill is reported on its own row.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_CLIPS = 24


def _clips(folder: Path) -> None:
    import numpy as np

    from idm_host.audio import load_audio, save_audio
    from idm_host.demo import make_example_loop

    make_example_loop(folder / "c00.wav", duration_s=2.4)
    loop = load_audio(folder / "c00.wav", sample_rate=None)
    for i in range(1, N_CLIPS):
        save_audio(folder / f"c{i:02d}.wav", np.roll(loop.samples, 3001 * i, axis=1) * (1 - 0.02 * i),
                   loop.sample_rate)


def _batch(inp: Path, out: Path, executor):
    from idm_host.batch import BatchJob, collect_inputs, plan_units, run_batch

    job = BatchJob("separate", "default", "cpu", {"classes": "9", "format": "wav", "bit_depth": 24,
                                                  "masking": "auto", "alpha": None, "drum_map": "gm",
                                                  "onsets": None}, out_dir=str(out))
    found, _ = collect_inputs([str(inp)])
    units, _ = plan_units(found, lambda name: (str(out / name),))
    t0 = time.perf_counter()
    result = run_batch(job, units, executor)
    wall = time.perf_counter() - t0
    assert result.count("done") == N_CLIPS, result.to_dict()
    return wall


class _Cluster:
    def __init__(self, n: int, base: Path):
        self.procs: list[subprocess.Popen] = []
        sched = base / f"scheduler-{n}.json"
        self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched)])
        address = None
        while address is None:
            try:  # the scheduler writes the file in place: it may be there and not yet whole
                address = json.loads(sched.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        self.address = address
        self._start([sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1",
                     "--nworkers", str(n), "--nthreads", "1", "--no-dashboard"])
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(n, timeout=120)

    def _start(self, cmd):
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    def close(self):
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(timeout=60)


def run() -> list[dict]:
    rows = []
    saved = os.environ.get("IDM_HOST_MODELS")
    with tempfile.TemporaryDirectory(prefix="idm-bench-cluster-") as tmp:
        base = Path(tmp)
        inp = base / "in"
        inp.mkdir()
        _clips(inp)
        os.environ["IDM_HOST_MODELS"] = str(base / "models")  # inherited by the --jobs and Dask workers
        try:
            rows += _measure(base, inp)
        finally:
            if saved is None:
                os.environ.pop("IDM_HOST_MODELS", None)
            else:
                os.environ["IDM_HOST_MODELS"] = saved
    return rows


def _measure(base: Path, inp: Path) -> list[dict]:
    from idm_host.batch import make_executor
    from idm_host.cluster import DaskExecutor

    wall = _batch(inp, base / "fill", make_executor(2))
    kits = len(list((base / "models" / "one-shots").glob("*.npz")))  # kits synthesised (the cache was empty)
    rows = [{"name": "one-shot cache fill (local --jobs 2, cold cache)", "value": round(N_CLIPS / wall * 60, 1),
             "unit": "files/min", "note": f"{wall:.1f} s for {N_CLIPS} clips, {kits} kits synthesised; not part "
             "of the rows below, which all start from the cache it filled"}]
    for jobs in (1, 2):
        wall = _batch(inp, base / f"local-{jobs}", make_executor(jobs))
        rows.append({"name": f"local --jobs {jobs}", "value": round(N_CLIPS / wall * 60, 1), "unit": "files/min",
                     "note": f"{wall:.1f} s for {N_CLIPS} clips"})
    for n in (1, 2):
        cluster = _Cluster(n, base)
        try:
            ex = DaskExecutor(cluster.address)
            wall = _batch(inp, base / f"dask-{n}", ex)
        finally:
            cluster.close()
        loads = sorted(w["load_s"] for w in ex.workers.values())
        rows.append({"name": f"Dask, {n} worker{'s' if n > 1 else ''} x 1 thread", "value":
                     round(N_CLIPS / wall * 60, 1), "unit": "files/min",
                     "note": f"{wall:.1f} s for {N_CLIPS} clips, scheduler start not counted"})
        rows.append({"name": f"model load per worker ({n} worker{'s' if n > 1 else ''})",
                     "value": max(loads), "unit": "s", "note": "each worker: " + ", ".join(f"{x:.2f}" for x in loads)})
    return rows
