"""The OSC server's client list and result listeners, over real loopback UDP and TCP with python-osc."""
from __future__ import annotations

import queue
import threading
import time

import pytest
from osckit import SR, TcpPeer, UdpPeer, click_analyze, click_audio, stream_audio

from idm_host.audio import save_audio
from idm_host.errors import Cancelled, IdmError, OscError
from idm_host.osc import OscClient, OscServer
from idm_host.types import Analysis


def wait_until(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def results():
    return queue.Queue()


@pytest.fixture
def server(tmp_path, results):
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path / "osc-out",
                    on_result=lambda *args: results.put(args), client_timeout_s=1.5).start()
    yield srv
    srv.stop()


def by_name(server, name: str) -> OscClient | None:
    return next((c for c in server.clients if c.name == name), None)


def test_clients_list_udp_and_tcp_peers(server):
    assert server.clients == ()
    a, b = UdpPeer(server.udp_address), UdpPeer(server.udp_address)
    t = TcpPeer(server.tcp_address)
    try:
        t0 = time.time()
        a.send("/idm/ping")
        a.send("/idm/ping")
        b.send("/idm/ping")
        t.send("/idm/ping")
        for peer in (a, b, t):
            peer.wait_for("/idm/pong")
        clients = server.clients
        assert isinstance(clients, tuple) and len(clients) == 3
        ca = by_name(server, f"udp:127.0.0.1:{a.port}")
        cb = by_name(server, f"udp:127.0.0.1:{b.port}")
        local = t.sock.getsockname()
        ct = by_name(server, f"tcp:{local[0]}:{local[1]}")
        assert ca and cb and ct
        assert (ca.protocol, ca.address, ca.messages) == ("udp", ("127.0.0.1", a.port), 2)
        assert (cb.messages, ct.protocol, ct.messages) == (1, "tcp", 1)
        assert t0 - 1 <= ca.first_seen <= ca.last_seen <= time.time()
        assert ca.jobs == () and ca.active_jobs == ()
        with pytest.raises(AttributeError):
            ca.messages = 5  # snapshots are read-only
        time.sleep(0.05)
        a.send("/idm/ping")
        a.wait_for("/idm/pong", count=3)
        assert by_name(server, ca.name).last_seen > ca.last_seen and ca.messages == 2
        # a TCP client leaves the list when it disconnects; a silent UDP client after client_timeout_s
        t.close()
        wait_until(lambda: by_name(server, ct.name) is None)
        wait_until(lambda: server.clients == (), timeout_s=5.0)
        b.send("/idm/ping")
        b.wait_for("/idm/pong", count=2)
        assert [c.name for c in server.clients] == [cb.name]
    finally:
        for peer in (a, b, t):
            peer.close()


def test_garbage_still_counts_as_a_client(server):
    peer = UdpPeer(server.udp_address)
    try:
        peer.send_raw(b"\x00\x01not osc")
        peer.wait_for("/idm/error")
        c = by_name(server, f"udp:127.0.0.1:{peer.port}")
        assert c is not None and c.messages == 0
    finally:
        peer.close()


def test_on_result_gets_analysis_and_client_for_a_stream(server, results):
    udp = UdpPeer(server.udp_address)
    try:
        audio = click_audio([0.1, 0.6], length_s=1.0, channels=2, negative=[0.3])
        stream_audio(udp, 11, audio, chunk_frames=4096, pace_s=0.0005)
        job_id, analysis, client = results.get(timeout=30)
        assert job_id == 11 and isinstance(analysis, Analysis)
        assert udp.wait_for("/idm/done", timeout_s=5)  # sent before the listener ran (may still be in flight)
        assert analysis.transcription.times("KD") == pytest.approx([0.1, 0.6], abs=1.5 / SR)
        assert analysis.transcription.times("SD") == pytest.approx([0.3], abs=1.5 / SR)
        stems_dir = udp.of("/idm/stems")[-1].params[1]
        assert str(analysis.extra["out_dir"]) == stems_dir and analysis.stems is not None
        assert client.address == ("127.0.0.1", udp.port) and client.protocol == "udp"
        assert client.jobs == (11,) and client.active_jobs == ()
        assert by_name(server, client.name).jobs == (11,)
    finally:
        udp.close()


def test_on_result_gets_errors(server, results, tmp_path):
    tcp = TcpPeer(server.tcp_address)
    try:
        bad = tmp_path / "noise.wav"
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
        tcp.send("/idm/open", 3, str(bad))
        job_id, error, client = results.get(timeout=30)
        assert job_id == 3 and isinstance(error, IdmError) and "noise.wav" in str(error)
        assert client.protocol == "tcp" and client.jobs == (3,)
        assert "noise.wav" in tcp.wait_for("/idm/error")[0].params[1]
        # a request refused before any job starts is not a job result
        tcp.send("/idm/open", 4, "relative.wav")
        tcp.wait_for("/idm/error", count=2)
        time.sleep(0.2)
        assert results.empty()
    finally:
        tcp.close()


def test_active_jobs_and_cancel_reported(tmp_path):
    gate = threading.Event()
    got = queue.Queue()

    def slow(audio, progress):
        while not gate.wait(0.01):
            progress(0.1, "waiting")
        return click_analyze(audio, progress)

    srv = OscServer(analyze=slow, port=0, out_dir=tmp_path, on_result=lambda *a: got.put(a)).start()
    udp = UdpPeer(srv.udp_address)
    try:
        path = save_audio(tmp_path / "loop.wav", click_audio([0.2], length_s=0.5), SR, bit_depth=32)
        udp.send("/idm/open", 21, str(path))
        udp.wait_for("/idm/progress", where=lambda m: m.params[2] == "waiting")
        c = by_name(srv, f"udp:127.0.0.1:{udp.port}")
        assert c.jobs == (21,) and c.active_jobs == (21,)
        udp.send("/idm/cancel", 21)
        job_id, error, client = got.get(timeout=10)
        assert job_id == 21 and isinstance(error, Cancelled) and client.active_jobs == ()
        gate.set()
        udp.send("/idm/open", 22, str(path))
        job_id, analysis, client = got.get(timeout=10)
        assert job_id == 22 and isinstance(analysis, Analysis) and client.jobs == (21, 22)
    finally:
        gate.set()
        udp.close()
        srv.stop()


def test_listeners_added_removed_and_failing(server, results):
    extra, calls = queue.Queue(), []

    def broken(*args):
        calls.append(args[0])
        raise RuntimeError("listener bug")

    remove_broken = server.add_result_listener(broken)
    remove_extra = server.add_result_listener(lambda *a: extra.put(a))
    udp = UdpPeer(server.udp_address)
    try:
        stream_audio(udp, 5, click_audio([0.2], length_s=0.5, channels=1), chunk_frames=8192)
        assert results.get(timeout=30)[0] == 5 and extra.get(timeout=5)[0] == 5 and calls == [5]
        remove_broken()
        remove_extra()
        remove_extra()  # removing twice is harmless
        stream_audio(udp, 6, click_audio([0.2], length_s=0.5, channels=1), chunk_frames=8192)
        assert results.get(timeout=30)[0] == 6
        time.sleep(0.1)
        assert extra.empty() and calls == [5]
        udp.send("/idm/ping")  # the server survived the failing listener
        udp.wait_for("/idm/pong")
    finally:
        udp.close()


def test_bad_listener_arguments():
    with pytest.raises(OscError, match="callable"):
        OscServer(analyze=click_analyze, port=0, on_result="print")
    with pytest.raises(OscError, match="client_timeout_s"):
        OscServer(analyze=click_analyze, port=0, client_timeout_s=0)
    srv = OscServer(analyze=click_analyze, port=0)
    with pytest.raises(OscError, match="callable"):
        srv.add_result_listener(42)
