"""Helpers for the OSC tests: a small deterministic analysis function, reply collectors on real
sockets, and audio-streaming clients built on python-osc."""
from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from pythonosc.tcp_client import SimpleTCPClient
from pythonosc.udp_client import SimpleUDPClient

from idm_host.classes import IDM_CLASSES
from idm_host.types import Analysis, Audio, Kit, Stems, Transcription

SR = 44100


def click_analyze(audio: Audio, progress) -> Analysis:
    """A tiny real analysis: every sample above 0.5 in the mono mix is a kick at its own time, every
    sample below -0.5 a snare; the kick stem is the input, the rest silent. Deterministic and fast."""
    x = audio.mono()
    progress(0.5, "finding clicks")
    rate = audio.sample_rate
    kd = [(i / rate, float(min(1.0, x[i]))) for i in np.flatnonzero(x > 0.5)]
    sd = [(i / rate, float(min(1.0, -x[i]))) for i in np.flatnonzero(x < -0.5)]
    tr = Transcription.from_times(IDM_CLASSES, {"KD": kd, "SD": sd}, audio.duration_s)
    k = len(IDM_CLASSES)
    stems = np.zeros((k,) + audio.samples.shape, dtype=np.float32)
    stems[IDM_CLASSES.index("KD")] = audio.samples
    kit = Kit(IDM_CLASSES, np.zeros((k, 64), dtype=np.float32), rate)
    return Analysis(tr, kit, Stems(IDM_CLASSES, stems, np.zeros_like(audio.samples), rate),
                    np.ones(k, np.float32), np.full(6, 1 / 6, np.float32), "clicks", audio)


def click_audio(times_s, length_s: float = 1.0, channels: int = 2, rate: int = SR, negative=()) -> np.ndarray:
    """float32 ``(channels, frames)`` silence with +0.9 clicks at ``times_s`` and -0.9 at ``negative``."""
    x = np.zeros((channels, int(round(length_s * rate))), dtype=np.float32)
    for t in times_s:
        x[:, int(round(t * rate))] = 0.9
    for t in negative:
        x[:, int(round(t * rate))] = -0.9
    return x


def message(address: str, *args) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


@dataclass
class Msg:
    address: str
    params: list


class Collector:
    """Collects OSC messages arriving on a socket (UDP listener or a TCP client's connection)."""

    def __init__(self):
        self.messages: list[Msg] = []
        self._cond = threading.Condition()

    def _add(self, data: bytes) -> None:
        try:
            for tm in OscPacket(data).messages:
                with self._cond:
                    self.messages.append(Msg(tm.message.address, list(tm.message.params)))
                    self._cond.notify_all()
        except Exception:  # pragma: no cover - the server must only send valid OSC
            with self._cond:
                self.messages.append(Msg("<unparseable>", [data]))
                self._cond.notify_all()

    def wait_for(self, address: str, count: int = 1, timeout_s: float = 10.0, where=None) -> list[Msg]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = [m for m in self.messages if m.address == address and (where is None or where(m))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} x {address}; got "
                                         f"{[(m.address, m.params) for m in self.messages][-12:]}")
                self._cond.wait(left)

    def of(self, address: str) -> list[Msg]:
        with self._cond:
            return [m for m in self.messages if m.address == address]


class UdpPeer(Collector):
    """A python-osc UDP client whose socket also receives the server's replies."""

    def __init__(self, server_address, bind_host: str = "127.0.0.1"):
        super().__init__()
        self.client = SimpleUDPClient(*server_address)
        self.client._sock.bind((bind_host, 0))
        self.port = self.client._sock.getsockname()[1]
        self.client._sock.settimeout(0.05)  # before the reader thread starts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        sock = self.client._sock
        while not self._stop.is_set():
            try:
                data = sock.recv(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._add(data)

    def send(self, address: str, *args) -> None:
        self.client.send_message(address, list(args))

    def send_raw(self, data: bytes) -> None:
        self.client._sock.sendto(data, (self.client._address, self.client._port))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.client._sock.close()


class UdpListener(Collector):
    """A plain UDP socket that only listens (for reply_port tests)."""

    def __init__(self):
        super().__init__()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._add(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class TcpPeer(Collector):
    """A python-osc TCP client (OSC 1.0 framing) reading the replies on its connection."""

    def __init__(self, server_address):
        super().__init__()
        self.client = SimpleTCPClient(*server_address, mode="1.0")
        self.sock = self.client.socket
        self.sock.settimeout(None)  # the reader blocks; close() shuts the socket down to wake it
        self._stop = threading.Event()
        self.closed_by_server = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _recv_exact(self, n: int) -> bytes | None:
        out = b""
        while len(out) < n:
            try:
                b = self.sock.recv(n - len(out))
            except OSError:
                return None
            if not b:
                return None
            out += b
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            head = self._recv_exact(4)
            if head is None:
                break
            data = self._recv_exact(struct.unpack(">I", head)[0])
            if data is None:
                break
            self._add(data)
        if not self._stop.is_set():
            self.closed_by_server.set()

    def send(self, address: str, *args) -> None:
        self.client.send_message(address, list(args))

    def send_raw_frame(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(2)
        self.sock.close()


def stream_audio(peer, id_: int, samples: np.ndarray, rate: int = SR, chunk_frames: int = 4096,
                 pace_s: float = 0.0) -> int:
    """Send ``samples`` (channels, frames) as begin/chunk.../end; returns the number of chunks."""
    channels, frames = samples.shape
    inter = np.ascontiguousarray(samples.T, dtype="<f4").tobytes()
    step = chunk_frames * channels * 4
    peer.send("/idm/audio/begin", id_, rate, channels, frames)
    seq = 0
    for off in range(0, len(inter), step):
        peer.send("/idm/audio/chunk", id_, seq, inter[off:off + step])
        seq += 1
        if pace_s:
            time.sleep(pace_s)
    peer.send("/idm/audio/end", id_)
    return seq


# ------------------------------------------------------------------ liveness
_TAGS = iter(range(0x5EED0000, 0x7FFFFFFF))


def assert_alive(peer, timeout_s: float = 10.0) -> None:
    """The server answers a /idm/ping with a fresh tag (the tag tells its pong from any other,
    e.g. pongs to fuzzed pings)."""
    tag = next(_TAGS)
    peer.send("/idm/ping", tag)
    peer.wait_for("/idm/pong", timeout_s=timeout_s, where=lambda m: m.params[1:] == [tag])


def assert_new_client_served(address, peer_cls=None) -> None:
    """A client that connects now (TCP unless ``peer_cls`` says otherwise) gets its /idm/ping answered."""
    peer = (peer_cls or TcpPeer)(address)
    try:
        assert_alive(peer)
    finally:
        peer.close()
