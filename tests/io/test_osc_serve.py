"""``idm-host serve`` as a subprocess: it prints where it listens, answers real OSC clients, analyses
with the real model, refuses to bind beyond loopback without --allow-remote, and stops cleanly on
SIGTERM and SIGINT, also in the middle of a flood of hostile packets."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from oscfuzz import minus_four_bundle, packets
from osckit import TcpPeer, UdpPeer

from idm_host import __version__


def start_serve(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "idm_host", "serve", *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    text = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        text += line
        if line.startswith("}"):
            break
    if not text:
        proc.kill()
        pytest.fail(f"serve printed nothing: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(text)


@pytest.mark.slow
def test_serve_subprocess(official_model, demo_loop, tmp_path):
    proc, info = start_serve("--port", "0", "--tcp-port", "0", "--model", official_model, "--out", str(tmp_path))
    try:
        assert info["udp"][0] == "127.0.0.1" and info["tcp"][0] == "127.0.0.1"
        udp = UdpPeer(tuple(info["udp"]))
        tcp = TcpPeer(tuple(info["tcp"]))
        try:
            udp.send("/idm/ping")
            assert udp.wait_for("/idm/pong")[0].params == [__version__]
            tcp.send("/idm/open", 4, str(demo_loop))
            tcp.wait_for("/idm/done", timeout_s=180)
            assert len(tcp.of("/idm/hit")) > 10
            stems = tcp.of("/idm/stems")[0].params[1]
            assert stems.startswith(str(tmp_path)) and os.path.exists(os.path.join(stems, "KD.wav"))
        finally:
            udp.close()
            tcp.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_refuses_bad_setup():
    r = subprocess.run([sys.executable, "-m", "idm_host", "serve", "--model", "no-such-model", "--port", "0"],
                       capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert r.returncode == 1 and r.stderr.startswith("idm-host: error:") and "no-such-model" in r.stderr
    r = subprocess.run([sys.executable, "-m", "idm_host", "serve", "--port", "99999"],
                       capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert r.returncode == 1 and "ports are 0..65535" in r.stderr


def test_serve_refuses_a_host_beyond_loopback_without_allow_remote():
    r = subprocess.run([sys.executable, "-m", "idm_host", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert r.returncode == 1 and r.stderr.startswith("idm-host: error:") and "--allow-remote" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_during_a_flood(sig, tmp_path):
    """-4 bundles and fuzzed packets from two threads over UDP, and TCP frames, while the signal
    arrives: the server exits 0 (BENCHMARKS.md has how fast: well under a second)."""
    proc, info = start_serve("--port", "0", "--tcp-port", "0", "--out", str(tmp_path / "out"))
    stop = threading.Event()
    fuzz = packets(300, seed=sig)

    def flood_udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        k = 0
        while not stop.is_set():
            s.sendto(minus_four_bundle() if k % 2 else fuzz[k % len(fuzz)], tuple(info["udp"]))
            k += 1
        s.close()

    def flood_tcp():
        try:
            s = socket.create_connection(tuple(info["tcp"]), timeout=5)
            while not stop.is_set():
                s.sendall(len(minus_four_bundle()).to_bytes(4, "big") + minus_four_bundle())
        except OSError:
            pass  # the server went away: that is the point

    threads = [threading.Thread(target=f, daemon=True) for f in (flood_udp, flood_udp, flood_tcp)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        assert proc.poll() is None
        proc.send_signal(sig)
        assert proc.wait(30) == 0
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list((tmp_path / "out").glob(".*.partial"))


def test_sigterm_during_a_job_exits_cleanly(demo_loop, tmp_path):
    """SIGTERM while the real model analyses: exit 0, no partial output folder, no native abort."""
    proc, info = start_serve("--port", "0", "--out", str(tmp_path / "out"))
    udp = UdpPeer(tuple(info["udp"]))
    try:
        udp.send("/idm/open", 1, str(demo_loop))
        udp.wait_for("/idm/progress", where=lambda m: m.params[0] == 1 and m.params[2] != "queued", timeout_s=120)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read() if proc.stderr else ""
        assert "terminate called" not in err and "Traceback" not in err, err
    finally:
        udp.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = tmp_path / "out"
    left = list(out.iterdir()) if out.exists() else []
    assert all((p / "transcription.mid").is_file() for p in left), left  # no partial or half-written folder
