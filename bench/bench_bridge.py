"""OSC bridge: /idm/open latency over the engine, 3 minutes of audio streamed over TCP, a 10,000+ packet fuzz run.

Targets (issue 5): first /idm/hit of a 3-minute file within the engine's own time + 100 ms; streaming 3
minutes of stereo audio over TCP on loopback <= 0.5 s; the server survives 10,000+ random and mutated
packets and still analyses afterwards.
The /idm/open measure needs the official weights: they are imported from $IDM_HOST_REFERENCE (or
../shared/reference) into a temporary model cache when they are not installed.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "io"))

DURATION_S = 180.0


def _official_separator(tmp: Path):
    from idm_host.engine import Separator
    from idm_host.models import OFFICIAL_NAME, import_official, model_path

    try:
        model_path(OFFICIAL_NAME)
    except Exception:
        ref = Path(os.environ.get("IDM_HOST_REFERENCE", HERE.parent.parent / "shared" / "reference"))
        ckpt = ref / "idm-44-train-kits.ckpt"
        if not ckpt.exists():
            return None
        os.environ["IDM_HOST_MODELS"] = str(tmp / "models")
        import_official(ckpt)
    return Separator(OFFICIAL_NAME, device="cpu")


def bench_open(tmp: Path) -> list[dict]:
    from osckit import UdpPeer

    from idm_host.demo import make_example_loop
    from idm_host.osc import OscServer

    sep = _official_separator(tmp)
    if sep is None:
        return [{"name": "/idm/open first hit minus engine time", "value": "skipped", "unit": "",
                 "note": "official weights not found"}]
    path = tmp / "three-minutes.wav"
    make_example_loop(path, duration_s=DURATION_S)
    # warm up: one-shot synthesis is cached per kit, torch kernels warm
    sep.prepare(sep.load(path))
    engine_times, first_hits, dones, overheads = [], [], [], []
    n_hits = sent_hits = 0
    with OscServer(sep, port=0, out_dir=tmp / "osc-out") as server:
        for trial in range(2):  # alternate engine and server runs; keep the best of each (shared CPU)
            t0 = time.perf_counter()
            sep.prepare(sep.load(path))
            engine_times.append(time.perf_counter() - t0)  # what the engine needs before any hit exists
            peer = UdpPeer(server.udp_address)
            try:
                t0 = time.perf_counter()
                peer.send("/idm/open", 1 + trial, str(path))
                peer.wait_for("/idm/hit", timeout_s=600)
                first_hits.append(time.perf_counter() - t0)
                peer.wait_for("/idm/done", timeout_s=600)
                dones.append(time.perf_counter() - t0)
                n_hits = len(peer.of("/idm/hit"))
                sent_hits = server._results[1 + trial].transcription.n_hits
                # the engine time of this very job, measured inside the server's worker
                overheads.append((first_hits[-1] - server.engine_time_s(1 + trial)) * 1000)
            finally:
                peer.close()
    engine_s, first_hit_s, done_s = min(engine_times), min(first_hits), min(dones)
    rows = []
    overhead_ms = max(overheads)
    rows.append({"name": "/idm/open 3 min: first /idm/hit minus engine time", "value": overhead_ms, "unit": "ms",
                 "target": "<= 100 ms", "ok": overhead_ms <= 100,
                 "note": f"worst of 2 ({', '.join(f'{o:.1f}' for o in overheads)} ms): client send to first hit, "
                         f"minus the job's engine time (load+transcribe+kit) measured in the worker. First hit "
                         f"{', '.join(f'{t:.2f}' for t in first_hits)} s; the same engine calls run directly: "
                         f"{', '.join(f'{t:.2f}' for t in engine_times)} s"})
    rows.append({"name": "/idm/open 3 min: until /idm/done (stems, MIDI written)", "value": done_s, "unit": "s",
                 "note": f"{n_hits} of {sent_hits} hits received over UDP"})
    return rows


def bench_stream_tcp(tmp: Path) -> list[dict]:
    from osckit import TcpPeer, click_analyze, stream_audio

    from idm_host.osc import OscServer

    rate = 44100
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((2, int(DURATION_S * rate))) * 0.1).astype(np.float32)
    rows = []
    with OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp / "stream-out", write_stems=False) as server:
        times = []
        for trial in range(3):
            peer = TcpPeer(server.tcp_address)
            try:
                t0 = time.perf_counter()
                stream_audio(peer, 100 + trial, samples, rate=rate, chunk_frames=rate)  # 1 s chunks
                peer.wait_for("/idm/progress", where=lambda m: m.params[0] == 100 + trial and m.params[2] == "queued")
                times.append(time.perf_counter() - t0)
                peer.wait_for("/idm/done", where=lambda m: m.params == [100 + trial], timeout_s=120)
            finally:
                peer.close()
    best = min(times)
    mb = samples.nbytes / 2**20
    rows.append({"name": "stream 3 min stereo over TCP (begin..end accepted)", "value": best, "unit": "s",
                 "target": "<= 0.5 s", "ok": best <= 0.5,
                 "note": f"{mb:.1f} MiB float32 in 1 s chunks, python-osc client mode 1.0; best of 3 "
                         f"({', '.join(f'{t:.3f}' for t in times)})"})
    return rows


def _wait_count(server, n: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while server.stats["packets"] < n and time.monotonic() < deadline:
        time.sleep(0.0005)


def bench_fuzz(tmp: Path) -> list[dict]:
    from osckit import TcpPeer, UdpPeer, click_analyze, click_audio, fuzz_packets, stream_audio

    from idm_host.osc import OscServer

    n_udp, n_tcp = 10_000, 2_000
    packets = fuzz_packets(n_udp, seed=20240)
    framed = [p for p in fuzz_packets(n_tcp, seed=777) if p]
    with OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp / "fuzz-out",
                   stream_timeout_s=0.5) as server:
        udp = UdpPeer(server.udp_address)
        t0 = time.perf_counter()
        for k, p in enumerate(packets):
            udp.send_raw(p)
            if k % 100 == 99:  # flow control: UDP drops what a busy receiver cannot buffer
                _wait_count(server, k + 1)
        tcp = TcpPeer(server.tcp_address)
        for p in framed:
            tcp.send_raw_frame(p)
        expected = len(packets) + len(framed)
        deadline = time.monotonic() + 60
        while server.stats["packets"] < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        tcp.close()
        wall = time.perf_counter() - t0
        stats = dict(server.stats)  # before the check analysis below adds its own packets
        udp.close()
        while server._streams and time.monotonic() < deadline:  # fuzzed begins time out
            time.sleep(0.05)
        alive = all(t.is_alive() for t in server._threads)
        check = UdpPeer(server.udp_address)
        try:
            stream_audio(check, 9, click_audio([0.1], length_s=0.5))
            check.wait_for("/idm/done", timeout_s=30)
            works = [m.params[1] for m in check.of("/idm/hit")] == ["KD"]
        except AssertionError:
            works = False
        finally:
            check.close()
    ok = stats["packets"] == expected and alive and works
    return [{"name": "fuzz: random + mutated packets (10,000 UDP + 2,000 TCP)", "value": stats["packets"],
             "unit": "packets", "target": "all read, server alive, analyses after",
             "ok": ok, "note": f"expected {expected}; {stats['messages']} "
                               f"parsed messages, {stats['errors']} errors ({stats['errors_dropped']} replies "
                               f"rate-limited), {stats['jobs_done']} jobs done; alive={alive}, "
                               f"analysis after fuzz={works}; {wall:.1f} s"}]


def run() -> list[dict]:
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # python-osc logs a warning per odd type tag
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows += bench_stream_tcp(tmp)
        rows += bench_fuzz(tmp)
        rows += bench_open(tmp)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
