"""TCP clients that stall, hoard connections or stop reading: none of them delays or locks out
another client (real sockets on loopback)."""
from __future__ import annotations

import socket
import struct
import time
from contextlib import ExitStack

import pytest
from osckit import TcpPeer, assert_alive, assert_new_client_served, click_analyze, click_audio, stream_audio

from idm_host.osc import OscServer


class Opened(ExitStack):
    """What a test opens, closed after it in the reverse order (clients before their server)."""

    def server(self, out_dir, **limits) -> OscServer:
        """A click-analysing OSC server on free UDP and TCP ports, with these limits."""
        srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=out_dir, **limits).start()
        self.callback(srv.stop)
        return srv

    def client(self, client):
        """``client`` (a :class:`TcpPeer` or a socket), closed after the test."""
        self.callback(client.close)
        return client


@pytest.fixture
def opened():
    with Opened() as stack:
        yield stack


def half_frame_client(address) -> socket.socket:
    """A client that declares a 100-byte frame, sends half of it and waits."""
    s = socket.create_connection(address, timeout=5)
    s.sendall(struct.pack(">I", 100) + b"/idm" + b"\x00" * 46)
    return s


def test_fifty_half_frame_clients_do_not_lock_out_a_new_client(server, opened):
    """Issue 11: 50 clients that each send half a frame used to lock new clients out for 60 s+."""
    active = opened.client(TcpPeer(server.tcp_address))
    assert_alive(active)
    for _ in range(50):
        opened.client(half_frame_client(server.tcp_address))
    assert_alive(active)  # a client already connected is served all along
    stream_audio(active, 5, click_audio([0.02], length_s=0.1))
    active.wait_for("/idm/done", where=lambda m: m.params == [5])
    time.sleep(1.5)  # now they have stalled for longer than a connection may to keep its place
    assert_new_client_served(server.tcp_address)
    assert server.stats["tcp_evicted"] >= 1
    assert len(server._tcp.conns) <= server.max_connections_per_host


def test_a_stalled_frame_times_out(tmp_path, opened):
    srv = opened.server(tmp_path, tcp_read_timeout_s=0.5)
    peer = opened.client(TcpPeer(srv.tcp_address))
    assert_alive(peer)
    peer.sock.sendall(struct.pack(">I", 64) + b"\x00" * 10)  # then nothing
    err = peer.wait_for("/idm/error")[0].params[1]
    assert "no data for 0.5 s inside a TCP frame" in err and "10 of its 64 bytes arrived" in err
    assert peer.closed_by_server.wait(5)
    assert srv.stats["tcp_timeouts"] == 1


def test_idle_connections_between_frames_stay_open(tmp_path, opened):
    """The read timeout applies inside a frame only: a plug-in may keep an idle connection."""
    srv = opened.server(tmp_path, tcp_read_timeout_s=0.3)
    peer = opened.client(TcpPeer(srv.tcp_address))
    assert_alive(peer)
    time.sleep(1.0)
    assert not peer.closed_by_server.is_set()
    assert_alive(peer)


def test_per_host_and_total_connection_caps(tmp_path, opened):
    srv = opened.server(tmp_path, max_connections=10, max_connections_per_host=3)
    peers = [opened.client(TcpPeer(srv.tcp_address)) for _ in range(3)]
    for p in peers:
        assert_alive(p)  # active clients: none may be closed to make room
    fourth = opened.client(TcpPeer(srv.tcp_address))
    assert "too many TCP connections (limit 3 per host)" in fourth.wait_for("/idm/error")[0].params[1]
    assert fourth.closed_by_server.wait(5)
    fourth.close()
    assert srv.stats["tcp_refused"] == 1
    for p in peers:
        assert_alive(p)


def test_a_client_that_never_reads_is_dropped_and_delays_no_one(tmp_path, opened):
    srv = opened.server(tmp_path, tcp_max_unsent=64 * 1024, max_messages_per_packet=1000)
    hog = opened.client(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(srv.tcp_address)
    ping = b"/idm/ping\x00\x00\x00,\x00\x00\x00"
    bundle = b"#bundle\x00" + b"\x00" * 8 + (struct.pack(">i", len(ping)) + ping) * 1000
    other = opened.client(TcpPeer(srv.tcp_address))
    hog.settimeout(5)
    for _ in range(60):  # 60,000 pongs asked for, none read
        try:
            hog.sendall(struct.pack(">I", len(bundle)) + bundle)
        except OSError:
            break  # the server already closed it
        assert_alive(other)
    deadline = time.monotonic() + 10
    while len(srv._tcp.conns) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(srv._tcp.conns) == 1  # only `other` is left
    assert_alive(other)


def test_frame_bytes_held_for_all_connections_are_capped(tmp_path, opened):
    srv = opened.server(tmp_path, tcp_max_buffered=3 * 1024 * 1024)
    for _ in range(3):  # each declares a 4 MiB frame and sends 1.5 MiB of it
        s = opened.client(socket.create_connection(srv.tcp_address, timeout=5))
        s.sendall(struct.pack(">I", 4 << 20) + b"\x00" * (3 << 19))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        held = sum(len(c.inbuf) for c in list(srv._tcp.conns.values()))
        if len(srv._tcp.conns) < 3 and held <= srv.tcp_max_buffered:
            break
        time.sleep(0.02)
    assert len(srv._tcp.conns) < 3 and held <= srv.tcp_max_buffered
    assert_new_client_served(srv.tcp_address)
