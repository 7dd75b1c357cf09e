"""Bad input: no server, a server killed mid-stream, a peer answering garbage or not reading.
The audio keeps passing unchanged, no process call waits on the network, and the plug-in says
what happened in its status state.

"Never waits" is checked against the plug-in's own network timeouts: a process call that
waited for a connect (2 s) or for a full socket would take seconds; the bound below leaves a
loaded 2-core machine ample room."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from pluginkit import HERE, ROOT, clicks, open_plugin, run_pass, set_states, status, stop_transport

RATE = 48000
NEVER_WAITS_S = 0.5


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def wait_log(p, needle: str, timeout_s: float = 20.0) -> list[str]:
    """The plug-in's status log once a line holds ``needle`` (which it must within ``timeout_s``)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        lines = status(p)["log"]
        if any(needle in line for line in lines) or time.monotonic() > deadline:
            assert any(needle in line for line in lines), lines
            return lines
        time.sleep(0.1)


def passes_unchanged_without_waiting(p, x: np.ndarray, *, realtime: bool = True) -> None:
    """Play ``x`` through the plug-in (in real time, then stop the transport; or offline, all at
    once): the audio comes out unchanged and no process call waited on the network."""
    longest: list[float] = []
    y, _ = run_pass(p, x, RATE, realtime=realtime, max_block_s=longest)
    if realtime:
        stop_transport(p, RATE)
    assert np.array_equal(y, x) and longest[0] < NEVER_WAITS_S, longest


class Garbage:
    def __init__(self, mode: str):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "garbage_server.py"), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
        self.port = int(self.proc.stdout.readline().split()[1])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.mark.parametrize("host", ["minihost-vst3", "minihost-lv2"])
def test_server_absent(bundles, host):
    x = clicks(RATE, 1.0)
    p = open_plugin(host, RATE)
    try:
        set_states(p, port=str(free_port()))
        passes_unchanged_without_waiting(p, x)
        lines = wait_log(p, "not analysed")
        assert any("cannot connect" in line or "not reachable" in line for line in lines), lines
        st = status(p)
        assert st["connected"] == 0 and st["dropped_frames"] == 0
    finally:
        p.close()


def test_server_killed_mid_stream(server):
    x = clicks(RATE, 3.0)
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, port=str(server.port))
        threading.Timer(1.0, server.kill).start()
        passes_unchanged_without_waiting(p, x)
        lines = wait_log(p, "was not analysed")
        assert any("closed the connection" in line or "failed" in line for line in lines), lines
        st = status(p)
        assert st["dropped_frames"] == 0 and st["connected"] == 0 and st["takes"] == 0, st
        # audio still passes, and a later take with no server is said and dropped too
        y, _ = run_pass(p, x[:, :RATE], RATE, start=10 * RATE)
        assert np.array_equal(y, x[:, :RATE])
    finally:
        p.close()


@pytest.mark.parametrize("mode,needle", [
    ("noise", "malformed"),
    ("bigframe", "larger than 16 MiB"),
    ("badosc", "malformed '/idm/hit/frame'"),
])
def test_garbage_answers(bundles, mode, needle):
    peer = Garbage(mode)
    x = clicks(RATE, 1.0)
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, port=str(peer.port))
        passes_unchanged_without_waiting(p, x)
        lines = wait_log(p, needle)
        if mode == "badosc":
            assert any("server: oops" in line for line in lines), lines
        assert status(p)["hits"] == 0
    finally:
        p.close()
        peer.close()


def test_peer_that_never_reads(bundles):
    """The socket fills up: the sender keeps draining the ring into memory, the audio thread
    never notices, and closing the plug-in does not hang."""
    import time

    peer = Garbage("deaf")
    x = clicks(RATE, 90.0)  # 35 MB: more than the socket buffers hold
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, port=str(peer.port))
        passes_unchanged_without_waiting(p, x, realtime=False)  # 90 s of audio at once
        time.sleep(0.5)
        st = status(p)
        assert st["dropped_frames"] == 0 and st["frames_sent"] < x.shape[1], st
    finally:
        t0 = time.perf_counter()
        p.close()
        closed_s = time.perf_counter() - t0
        peer.close()
    assert closed_s < 10.0, closed_s  # the drain on close is bounded (3 s), never a hang
