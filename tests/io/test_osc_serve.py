"""``idm-host serve`` as a subprocess: it prints where it listens, answers real OSC clients, analyses
with the real model, and stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
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
