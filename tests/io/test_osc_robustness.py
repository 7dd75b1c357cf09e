"""The OSC bridge under bad input: sequence errors, wrong types, unknown addresses, malformed
packets, huge sizes, too many streams, vanishing clients. Every case gets /idm/error where a reply
is possible, and the server keeps serving. The fuzz suite is test_osc_fuzz.py."""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from osckit import (SR, TcpPeer, UdpPeer, assert_alive, assert_new_client_served, click_analyze, click_audio, message,
                    stream_audio)

from idm_host.osc import OscServer


@pytest.fixture
def server(tmp_path):
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path / "out",
                    max_stream_s=60, max_total_mb=64, max_streams=3, stream_timeout_s=0.5).start()
    yield srv
    srv.stop()


def errors(peer, id_=None):
    return [m.params[1] for m in peer.of("/idm/error") if id_ is None or m.params[0] == id_]


def chunk(samples: np.ndarray) -> bytes:
    return np.ascontiguousarray(samples.T, dtype="<f4").tobytes()


@pytest.mark.parametrize(
    "seqs,needle",
    [
        ([0, 2], "missing chunk: expected seq 1, got 2"),
        ([0, 0], "repeated or out-of-order chunk: expected seq 1, got 0"),
        ([1], "missing chunk: expected seq 0, got 1"),
        ([0, 1, 3, 2], "missing chunk: expected seq 2, got 3"),
    ],
)
def test_sequence_errors_abort_the_stream(server, udp, seqs, needle):
    data = chunk(click_audio([], length_s=0.1, channels=1))
    udp.send("/idm/audio/begin", 3, SR, 1, SR)
    for s in seqs:
        udp.send("/idm/audio/chunk", 3, s, data)
    err = udp.wait_for("/idm/error", where=lambda m: m.params[0] == 3)[0].params[1]
    assert needle in err and "aborted" in err
    udp.send("/idm/audio/end", 3)  # the stream is gone: no silent analysis of a holey stream
    udp.wait_for("/idm/error", count=2, where=lambda m: m.params[0] == 3)
    assert "no such open stream" in errors(udp, 3)[-1]
    time.sleep(0.1)
    assert not udp.of("/idm/done") and not udp.of("/idm/hit")
    assert_alive(udp)


def test_short_overrun_and_ragged_chunks(server, udp):
    udp.send("/idm/audio/begin", 1, SR, 2, 1000)
    udp.send("/idm/audio/chunk", 1, 0, chunk(np.zeros((2, 600), np.float32)))
    udp.send("/idm/audio/end", 1)
    assert "ended after 600 of 1000 frames" in udp.wait_for("/idm/error")[0].params[1]
    udp.send("/idm/audio/begin", 2, SR, 2, 1000)
    udp.send("/idm/audio/chunk", 2, 0, chunk(np.zeros((2, 1200), np.float32)))
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 2 and "overruns the declared 1000 frames" in m.params[1])
    udp.send("/idm/audio/begin", 4, SR, 2, 1000)
    udp.send("/idm/audio/chunk", 4, 0, b"\x00" * 12)  # 1.5 stereo frames
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 4 and "whole number" in m.params[1])
    udp.send("/idm/audio/begin", 5, SR, 1, 4)
    udp.send("/idm/audio/chunk", 5, 0, np.array([0, np.nan, 0, 0], "<f4").tobytes())
    udp.send("/idm/audio/end", 5)
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 5 and "NaN" in m.params[1])
    assert_alive(udp)


@pytest.mark.parametrize(
    "address,args,needle",
    [
        ("/idm/audio/begin", ["7", SR, 1, 100], "argument 1 must be an int32"),
        ("/idm/audio/begin", [7, SR, 1], "expects i:id i:sample_rate i:channels i:frames"),
        ("/idm/audio/begin", [7, 44100.0, 1, 100], "argument 2 must be an int32"),
        ("/idm/audio/begin", [7, 1000, 1, 100], "sample rate 1000 Hz is out of range"),
        ("/idm/audio/begin", [7, SR, 0, 100], "0 channels"),
        ("/idm/audio/begin", [7, SR, 99, 100], "99 channels"),
        ("/idm/audio/begin", [7, SR, 1, -5], "frames must be >= 0"),
        ("/idm/audio/begin", [7, SR, 1, 2**31 - 1], "longer than this server's limit"),
        ("/idm/audio/chunk", [7, 0, "not a blob"], "argument 3 must be a blob"),
        ("/idm/audio/end", [], "expects i:id"),
        ("/idm/open", [1, 2], "argument 2 must be a string"),
        ("/idm/export/midi", [1], "expects"),
        ("/idm/render", [1, "kit", "fx"], "expects"),
        ("/idm/nope", [7], "unknown address '/idm/nope'"),
        ("/other", [], "unknown address '/other'"),
    ],
)
def test_wrong_arguments_and_addresses(server, udp, address, args, needle):
    udp.send(address, *args)
    msg = udp.wait_for("/idm/error")[0]
    assert needle in msg.params[1], msg.params
    assert_alive(udp)


def test_booleans_are_not_ints(server, udp):
    udp.send_raw(message("/idm/audio/begin", True, SR, 1, 100))
    assert "must be an int32" in udp.wait_for("/idm/error")[0].params[1]


def test_stream_limits(server, udp):
    # 3 streams at most
    for i in range(3):
        udp.send("/idm/audio/begin", 10 + i, SR, 1, SR)
    udp.send("/idm/audio/begin", 13, SR, 1, SR)
    assert "too many concurrent streams (limit 3)" in udp.wait_for("/idm/error")[0].params[1]
    udp.send("/idm/audio/begin", 10, SR, 1, SR)  # id in use
    udp.wait_for("/idm/error", count=2)
    assert "already in use" in errors(udp)[-1]
    for i in range(3):
        udp.send("/idm/cancel", 10 + i)
    udp.wait_for("/idm/error", count=5)
    # memory: 64 MiB for all streams; 50 s of 8 channels at 44.1 kHz is 67 MiB
    udp.send("/idm/audio/begin", 20, SR, 8, 50 * SR)
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 20 and "memory limit" in m.params[1])
    udp.send("/idm/audio/begin", 21, SR, 8, 20 * SR)  # 27 MiB: fine
    udp.send("/idm/audio/begin", 22, SR, 8, 20 * SR)  # 54 MiB together: fine
    udp.send("/idm/audio/begin", 23, SR, 8, 20 * SR)  # 81 MiB: refused
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 23 and "memory limit" in m.params[1])
    assert not [e for e in udp.of("/idm/error") if e.params[0] in (21, 22)]
    assert_alive(udp)


def test_vanished_udp_client_times_out(server, udp):
    udp.send("/idm/audio/begin", 30, SR, 1, SR)
    udp.send("/idm/audio/chunk", 30, 0, chunk(np.zeros((1, 100), np.float32)))
    err = udp.wait_for("/idm/error", timeout_s=5)[0]
    assert err.params[0] == 30 and "no data for 0.5 s" in err.params[1] and "after 1 chunks" in err.params[1]
    udp.send("/idm/audio/begin", 30, SR, 1, 10)  # the id is free again
    udp.send("/idm/audio/chunk", 30, 0, chunk(np.zeros((1, 10), np.float32)))
    udp.send("/idm/audio/end", 30)
    udp.wait_for("/idm/done")


def test_vanished_tcp_client_frees_its_stream(server):
    peer = TcpPeer(server.tcp_address)
    peer.send("/idm/audio/begin", 40, SR, 2, SR)
    peer.send("/idm/audio/chunk", 40, 0, chunk(np.zeros((2, 1000), np.float32)))
    peer.send("/idm/ping")
    peer.wait_for("/idm/pong")
    assert 40 in server._streams
    peer.close()  # gone mid-stream
    deadline = time.monotonic() + 5
    while 40 in server._streams and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 40 not in server._streams
    other = TcpPeer(server.tcp_address)
    try:
        stream_audio(other, 40, click_audio([0.05], length_s=0.1))
        other.wait_for("/idm/done")
    finally:
        other.close()


def test_tcp_huge_frame_and_garbage(server):
    peer = TcpPeer(server.tcp_address)
    try:
        peer.send_raw_frame(b"\x00\x01garbage")
        assert "malformed OSC packet" in peer.wait_for("/idm/error")[0].params[1]
        peer.sock.sendall(struct.pack(">I", 2**31))  # declares a 2 GiB packet
        assert "exceeds the limit" in peer.wait_for("/idm/error", count=2)[1].params[1]
        assert peer.closed_by_server.wait(5)
    finally:
        peer.close()
    assert_new_client_served(server.tcp_address)


def test_too_many_tcp_connections(tmp_path):
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path, max_connections=2).start()
    peers = [TcpPeer(srv.tcp_address) for _ in range(2)]
    try:
        for p in peers:
            assert_alive(p)
        third = TcpPeer(srv.tcp_address)
        assert "too many TCP connections" in third.wait_for("/idm/error")[0].params[1]
        assert third.closed_by_server.wait(5)
        third.close()
    finally:
        for p in peers:
            p.close()
        srv.stop()


def test_busy_queue(tmp_path):
    import threading

    release = threading.Event()

    def slow(audio, progress):
        release.wait(10)
        return click_analyze(audio, progress)

    srv = OscServer(analyze=slow, port=0, out_dir=tmp_path, max_queued_jobs=1).start()
    peer = UdpPeer(srv.udp_address)
    try:
        for i in (1, 2, 3):  # 1 runs, 2 waits in the queue, 3 is refused
            stream_audio(peer, i, click_audio([0.01], length_s=0.05))
            if i == 1:
                peer.wait_for("/idm/progress", where=lambda m: m.params[0] == 1 and m.params[1] == 0.0)
                time.sleep(0.05)
        err = peer.wait_for("/idm/error")[0]
        assert err.params[0] == 3 and "busy" in err.params[1]
        release.set()
        peer.wait_for("/idm/done", count=2)
    finally:
        release.set()
        peer.close()
        srv.stop()


def test_error_replies_are_rate_limited(server, udp):
    for _ in range(1500):
        udp.send_raw(b"\x00garbage")
    deadline = time.monotonic() + 5
    while server.stats["packets"] < 1500 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stats["errors_dropped"] > 0
    time.sleep(0.2)
    assert len(udp.of("/idm/error")) < 1500
    assert_alive(udp)
