"""IdmBridge plug-in: audio-thread cost, build time, sizes, load times, end of stream to hits ready (issue 16)

Run: ``python -m bench.run --only bench_plugin`` (needs `make plugin` first). The audio-thread cost
is what the plug-in's run() measures of itself (steady clock around the whole call, read back from
its status state), not the host's overhead.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "plugin"))


def _build(rows: list[dict]) -> None:
    files = subprocess.run(["git", "ls-files", "plugin", "presets/drum_maps"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, Path(tmp) / f)
        t0 = time.perf_counter()
        subprocess.run(["make", "-C", str(Path(tmp) / "plugin"), "-j2"], check=True, capture_output=True)
        rows.append({"name": "clean build of VST3 + CLAP + LV2 (make -j2)", "value": time.perf_counter() - t0,
                     "unit": "s", "note": f"from a copy of the tracked sources; load average "
                                          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"})
        b = Path(tmp) / "plugin" / "bin"
        for label, path in (("VST3", b / "IdmBridge.vst3" / "Contents" / "x86_64-linux" / "IdmBridge.so"),
                            ("CLAP", b / "IdmBridge.clap"), ("LV2", b / "IdmBridge.lv2" / "IdmBridge_dsp.so")):
            rows.append({"name": f"binary size, {label}", "value": path.stat().st_size / 1024, "unit": "KiB",
                         "note": "unstripped, -O2 (DPF defaults)"})


def _loads(rows: list[dict]) -> None:
    import minihost
    import pedalboard

    from pluginkit import LV2, VST3

    for label, fn in (("pedalboard, VST3", lambda: pedalboard.load_plugin(str(VST3))),
                      ("minihost, VST3", lambda: minihost.Plugin(str(VST3), sample_rate=48000, max_block_size=512)),
                      ("minihost, LV2", lambda: minihost.Plugin(str(LV2), sample_rate=48000, max_block_size=512))):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            p = fn()
            times.append(time.perf_counter() - t0)
            if hasattr(p, "close"):
                p.close()
            del p
        rows.append({"name": f"load time, {label}", "value": statistics.median(times) * 1000, "unit": "ms",
                     "note": f"median of 5 ({', '.join(f'{t * 1000:.0f}' for t in times)})"})


def _audio_cost(rows: list[dict]) -> None:
    from pluginkit import ServerProc, open_plugin, run_pass, set_param, set_states, status, stop_transport

    rate, n_blocks = 48000, 4000
    x = (np.random.default_rng(3).standard_normal((2, 512 * n_blocks)) * 0.1).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp, ServerProc(Path(tmp) / "srv") as srv:
        for capture, label in ((0, "capture off"), (1, "capture on, streaming to a server")):
            p = open_plugin("minihost-vst3", rate)
            set_states(p, port=str(srv.port))
            set_param(p, "capture", capture)
            run_pass(p, x, rate, start=0, blocks=(512,), realtime=False)
            st = status(p)
            stop_transport(p, rate)
            mean_us = st["run_ns_total"] / st["run_calls"] / 1000
            rows.append({"name": f"audio thread per 512-frame block, {label}", "value": mean_us, "unit": "us mean",
                         "note": f"max {st['run_ns_max'] / 1000:.0f} us over {st['run_calls']} blocks "
                                 f"({512 / rate * 1e6:.0f} us of audio each; the max includes the OS "
                                 f"preempting the thread, load average {os.getloadavg()[0]:.1f}); "
                                 f"dropped {st['dropped_frames']}; minihost VST3, offline pace"})
            p.close()


def _hits_ready(rows: list[dict]) -> None:
    from pedalboard.io import AudioFile

    from pluginkit import open_plugin, run_pass, set_states, status, stop_transport

    with AudioFile(str(ROOT / "examples" / "drum-loop.flac")) as f:
        loop, rate = f.read(f.frames), int(f.samplerate)
    reps = int(np.ceil(180 * rate / loop.shape[1]))
    x = np.ascontiguousarray(np.tile(loop, reps)[:, : 180 * rate], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, "-m", "idm_host", "serve", "--port", "0", "--tcp-port", "0",
                                 "--json", "--no-stems", "--out", tmp], stdout=subprocess.PIPE, cwd=ROOT, text=True)
        try:
            text = ""
            while not text.rstrip().endswith("}"):
                text += proc.stdout.readline()
            port = json.loads(text)["tcp"][1]
            p = open_plugin("minihost-vst3", rate)
            set_states(p, port=str(port))
            hits_before = 0
            for take, label in ((1, "first take (the server loads the model)"), (2, "next take (model loaded)")):
                start = take * 1000 * rate
                t_stream = time.perf_counter()
                run_pass(p, x, rate, start=start, blocks=(512,))
                stop_transport(p, rate, start + x.shape[1])
                t0 = time.perf_counter()
                while status(p).get("takes", 0) < take and time.perf_counter() - t0 < 600:
                    time.sleep(0.02)
                ready = time.perf_counter() - t0
                st = status(p)
                rows.append({"name": f"3-min stream ended to hits ready in the plug-in, {label}", "value": ready,
                             "unit": "s", "note": f"{st['hits'] - hits_before} hits; the offline pass of 3 min took "
                                                  f"{t0 - t_stream:.2f} s; real idm-host serve --no-stems; "
                                                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"})
                hits_before = st["hits"]
            p.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def run() -> list[dict]:
    rows: list[dict] = []
    for part in (_audio_cost, _build, _loads, _hits_ready):
        try:
            part(rows)
        except Exception as exc:  # one part failing must not hide the others
            rows.append({"name": f"{part.__name__} failed", "value": f"{type(exc).__name__}: {exc}", "unit": ""})
    return rows
