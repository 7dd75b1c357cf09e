"""The server side of the plug-in protocol over real TCP: open-ended timeline streams, frame-exact
hits beside seconds, and the hits asked for again from a new connection with the stream's key."""
from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from server_proc import clicks

from idm_host.osc import OscServer
from idm_host.osc.wire import parse_packet

RATE = 48000


class Peer:
    """A TCP client speaking OSC 1.0 framing."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=30)
        self.buf = b""

    def send(self, address: str, spec: str, *args) -> None:
        b = OscMessageBuilder(address=address)
        for t, a in zip(spec, args):
            b.add_arg(a, t)
        data = b.build().dgram
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def until(self, address: str, timeout_s: float = 30.0) -> list:
        got = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while len(self.buf) >= 4 and len(self.buf) - 4 >= struct.unpack(">I", self.buf[:4])[0]:
                n = struct.unpack(">I", self.buf[:4])[0]
                packet, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                for m in parse_packet(packet):
                    got.append(m)
                    if m.address == address:
                        return got
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        raise AssertionError(f"no {address} within {timeout_s} s: {[(m.address, m.params) for m in got]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(tmp_path):
    with OscServer(analyze=clicks, port=0, tcp_port=0, out_dir=tmp_path / "out", write_stems=False,
                   max_stream_s=3.0) as srv:
        yield srv


def stream(peer: Peer, id_: int, x: np.ndarray, start: int, key: str = "", chunk: int = 10007) -> None:
    args = (id_, RATE, 2, 0, start) + ((key,) if key else ())
    peer.send("/idm/audio/begin", "iiiih" + ("s" if key else ""), *args)
    data = x.T.astype("<f4").tobytes()
    for seq, off in enumerate(range(0, len(data), chunk * 8)):
        peer.send("/idm/audio/chunk", "iib", id_, seq, data[off:off + chunk * 8])
    peer.send("/idm/audio/end", "i", id_)


def test_open_ended_stream_gives_frames_past_float32_range(server):
    x = np.zeros((2, RATE), np.float32)
    x[:, [100, 40001]] = 0.9
    x[:, 777] = -0.5001
    start = 2**40 + 3  # ~8 months into the timeline: float32 seconds would be off by hours
    peer = Peer(server.tcp_address)
    try:
        stream(peer, 5, x, start)
        got = peer.until("/idm/hits/end")
        frames = [m.params for m in got if m.address == "/idm/hit/frame"]
        assert [(p[0], p[1], p[2], p[5]) for p in frames] == [
            (5, "KD", start + 100, 114), (5, "SD", start + 777, 64), (5, "KD", start + 40001, 114)]
        assert [p[4] for p in frames] == pytest.approx([100 / RATE, 777 / RATE, 40001 / RATE], abs=1e-12)
        assert got[-1].params == (5, 3)
        # the seconds list comes first, unchanged for old clients
        assert [m.params[1] for m in got if m.address == "/idm/hit"] == ["KD", "SD", "KD"]
    finally:
        peer.close()


def test_hits_again_after_a_reconnect_with_the_key(server):
    x = np.zeros((2, RATE // 2), np.float32)
    x[:, 1234] = 0.9
    peer = Peer(server.tcp_address)
    stream(peer, 9, x, 500, key="s3cret")
    peer.until("/idm/done")
    peer.close()
    other = Peer(server.tcp_address)
    try:
        other.send("/idm/hits", "i", 9)  # no key: another connection is another client
        err = other.until("/idm/error")[-1]
        assert err.params[0] == 9 and "give the stream's key" in err.params[1]
        other.send("/idm/hits", "is", 9, "wrong")
        assert "no finished analysis" in other.until("/idm/error")[-1].params[1]
        other.send("/idm/hits", "is", 9, "s3cret")
        got = other.until("/idm/hits/end")
        assert [m.params[2] for m in got if m.address == "/idm/hit/frame"] == [500 + 1234]
    finally:
        other.close()


def test_open_ended_stream_limits(server):
    peer = Peer(server.tcp_address)
    try:
        peer.send("/idm/audio/begin", "iiiih", 3, RATE, 2, 0, 0)
        peer.send("/idm/audio/end", "i", 3)
        assert "ended before any audio arrived" in peer.until("/idm/error")[-1].params[1]
        # bounded by --max-stream-s (3 s here) even without a declared length
        peer.send("/idm/audio/begin", "iiiih", 4, RATE, 2, 0, 0)
        block = np.zeros((2, RATE), np.float32).T.astype("<f4").tobytes()
        for seq in range(4):
            peer.send("/idm/audio/chunk", "iib", 4, seq, block)
        err = peer.until("/idm/error")[-1]
        assert err.params[0] == 4 and "longer than this server's limit of 3 s" in err.params[1]
        peer.send("/idm/audio/begin", "iiiih", 6, RATE, 2, 0, -1)
        assert "timeline_frame -1 is out of range" in peer.until("/idm/error")[-1].params[1]
    finally:
        peer.close()
