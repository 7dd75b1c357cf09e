"""The OSC bridge against hostile packets over real loopback sockets: issue 11's -4 bundle (a named
regression test), bad sizes and nesting, and a seeded, structure-aware fuzz run over UDP and TCP
after whose every batch the server still answers /idm/ping and afterwards still analyses.

The 100,000-packet run is ``bench/bench_bridge.py`` (figures in BENCHMARKS.md)."""
from __future__ import annotations

import struct
import time

import oscfuzz
import pytest
from osckit import (TcpPeer, UdpPeer, assert_alive, assert_new_client_served, click_analyze, click_audio,
                    stream_audio)

from idm_host.osc import OscServer
from idm_host.osc.wire import WireError, parse_packet


@pytest.fixture
def server(tmp_path):
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path / "out", stream_timeout_s=0.5,
                    max_messages_per_packet=64).start()
    yield srv
    srv.stop()


def test_ping_echoes_its_tag(server, udp):
    udp.send("/idm/ping", 42)
    assert udp.wait_for("/idm/pong")[0].params[1:] == [42]
    udp.send("/idm/ping", "x")
    assert "argument 1 must be an int32" in udp.wait_for("/idm/error")[0].params[1]


def wait_read(server, n: int, timeout_s: float = 30.0) -> None:
    """Until the server has read ``n`` packets (flow control: UDP drops what a busy receiver cannot
    buffer, so the sender waits for the server to catch up and every packet is judged)."""
    deadline = time.monotonic() + timeout_s
    while server.stats["packets"] < n and time.monotonic() < deadline:
        time.sleep(0.001)
    assert server.stats["packets"] >= n, (server.stats, n)


PING = oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",")


# ------------------------------------------------------------------------------ issue 11: the -4 bundle
def test_minus_four_bundle_regression_udp(server, udp):
    """Issue 11: `#bundle\\0`, a time tag, then int32 -4 made python-osc re-read the size forever."""
    udp.send_raw(oscfuzz.minus_four_bundle())
    err = udp.wait_for("/idm/error")[0]
    assert err.params[0] == 0 and "bundle element size -4" in err.params[1]
    assert_alive(udp)
    for t in server._threads:
        assert t.is_alive(), t.name


def test_minus_four_bundle_regression_tcp(server, tcp):
    tcp.send_raw_frame(oscfuzz.minus_four_bundle())
    assert "bundle element size -4" in tcp.wait_for("/idm/error")[0].params[1]
    assert_alive(tcp)


@pytest.mark.parametrize("size", [-4, -8, -1, -(2**31), 0, 2, 6, 13, 2**31 - 1, 24])
def test_bad_element_sizes_refuse_the_packet(size):
    """Sizes must be positive multiples of 4 within what is left (24 is one too many words here)."""
    data = oscfuzz.BUNDLE + b"\x00" * 8 + struct.pack(">i", size) + PING
    with pytest.raises(WireError, match="bundle element size"):
        parse_packet(data)
    # the same element with its real size parses
    assert [m.address for m in parse_packet(oscfuzz.BUNDLE + b"\x00" * 8 + struct.pack(">i", len(PING)) + PING)] \
        == ["/idm/ping"]


def test_a_bad_element_anywhere_refuses_the_whole_bundle(server, udp):
    good = struct.pack(">i", len(PING)) + PING
    data = oscfuzz.BUNDLE + b"\x00" * 8 + good + good + struct.pack(">i", -4)
    udp.send_raw(data)
    assert "size -4" in udp.wait_for("/idm/error")[0].params[1]
    time.sleep(0.1)
    assert not udp.of("/idm/pong")  # nothing of the bundle was handled
    assert_alive(udp)


def test_nesting_depth_and_messages_per_packet_are_capped(server, udp):
    udp.send_raw(oscfuzz.nested(8, PING))  # the deepest allowed
    udp.wait_for("/idm/pong")
    udp.send_raw(oscfuzz.nested(9, PING))
    assert "nested more than 8 deep" in udp.wait_for("/idm/error")[0].params[1]
    udp.send_raw(oscfuzz.nested(3000, PING)[:65000])  # far deeper: refused at the same cost
    udp.wait_for("/idm/error", count=2)
    many = lambda n: oscfuzz.BUNDLE + b"\x00" * 8 + (struct.pack(">i", len(PING)) + PING) * n  # noqa: E731
    udp.send_raw(many(64))  # this server's cap
    udp.wait_for("/idm/pong", count=65)
    udp.send_raw(many(65))
    assert "more than 64 messages" in udp.wait_for("/idm/error", count=3)[2].params[1]
    time.sleep(0.1)
    assert len(udp.of("/idm/pong")) == 65


@pytest.mark.parametrize("data,needle", [
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",[[T]"), "never closed"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",i"), "needs 4 bytes"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",b") + struct.pack(">i", -4), "blob size -4"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",b") + struct.pack(">i", 400), "overruns"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",Q"), "unknown type tag"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b"i"), "does not start with ','"),
    (b"/idm/ping", "no terminating NUL"),
    (oscfuzz.ostr(b"/idm/ping") + oscfuzz.ostr(b",") + b"\x00" * 4, "4 bytes after the last argument"),
    (b"#bundle\x00\x00\x00", "cut short inside its time tag"),
    (oscfuzz.ostr(b"/\xff\xfe"), "not UTF-8"),
])
def test_malformed_messages_get_one_clear_error(server, udp, data, needle):
    udp.send_raw(data)
    err = udp.wait_for("/idm/error")[0].params[1]
    assert err.startswith("malformed OSC packet") and needle in err, err
    assert_alive(udp)


# ------------------------------------------------------------------------------ the fuzz subset
def test_fuzz_udp(server, udp):
    """3,000 structure-aware packets (seeded) in batches of 250; after each batch /idm/ping answers."""
    packets = oscfuzz.packets(3000, seed=2026)
    for start in range(0, len(packets), 250):
        for k, p in enumerate(packets[start:start + 250], start):
            udp.send_raw(p)
            if k % 50 == 49:
                wait_read(server, k + 1)
        wait_read(server, min(start + 250, len(packets)))
        assert_alive(udp)
    assert server.stats["packets"] >= len(packets)
    assert server.stats["malformed"] > 500  # the fuzzer really broke most packets
    assert server.stats["messages"] > 500   # and real messages got through to the handlers
    for t in server._threads:
        assert t.is_alive(), t.name
    # it still does real work: a fresh client's stream is analysed
    deadline = time.monotonic() + 5
    while server._streams and time.monotonic() < deadline:  # fuzzed begins time out (0.5 s)
        time.sleep(0.02)
    fresh = UdpPeer(server.udp_address)
    try:
        stream_audio(fresh, 77, click_audio([0.02], length_s=0.1))
        assert fresh.wait_for("/idm/hit", where=lambda m: m.params[0] == 77)[0].params[1] == "KD"
        fresh.wait_for("/idm/done", where=lambda m: m.params == [77])
    finally:
        fresh.close()


def test_fuzz_tcp(server):
    """1,500 structure-aware packets as TCP frames on one connection, a ping after each batch."""
    packets = oscfuzz.packets(1500, seed=7)
    peer = TcpPeer(server.tcp_address)
    try:
        read = server.stats["packets"]
        for start in range(0, len(packets), 250):
            batch = packets[start:start + 250]
            for p in batch:
                peer.send_raw_frame(p)
            read += len(batch)
            wait_read(server, read)
            assert_alive(peer)
            read += 1
        assert not peer.closed_by_server.is_set()
    finally:
        peer.close()
    assert_new_client_served(server.tcp_address)


def test_error_replies_are_rate_limited_per_host_not_per_port(server):
    """2,000 bad packets from 40 ports of one host: the per-host budget (200/s) drops most replies,
    although no single port exceeds it."""
    peers = [UdpPeer(server.udp_address) for _ in range(40)]
    try:
        for k in range(50):
            for p in peers:
                p.send_raw(b"\x00garbage")
            wait_read(server, (k + 1) * len(peers))
        assert server.stats["errors_dropped"] > 0
        time.sleep(0.3)
        received = sum(len(p.of("/idm/error")) for p in peers)
        assert received < 2000 and received == server.stats["errors"] - server.stats["errors_dropped"]
    finally:
        for p in peers:
            p.close()
