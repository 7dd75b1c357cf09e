"""The OSC bridge: a DAW, a plug-in or a script sends a file path or streams audio, and gets back
hits, stems and MIDI.

The server listens on UDP and, optionally, TCP (OSC 1.0 framing: each packet is preceded by its
length as a big-endian 32-bit integer; python-osc's ``mode="1.0"``). It binds 127.0.0.1 unless told
otherwise. Replies go to the sender (UDP: its address and port; TCP: the same connection) or, with
``reply_port``, to that UDP port.

Address space (``i`` int32, ``f`` float32, ``s`` string, ``b`` blob):

==============================================  ===================================================
request                                         reply
==============================================  ===================================================
``/idm/ping``                                   ``/idm/pong s:version``
``/idm/open s:path`` or ``i:id s:path``         analysis of a file the server can read (below)
``/idm/audio/begin i:id i:rate i:ch i:frames``  opens stream ``id`` (no reply unless an error)
``/idm/audio/chunk i:id i:seq b:data``          ``data`` = float32 little-endian, interleaved;
                                                ``seq`` counts 0, 1, 2, ... per stream
``/idm/audio/end i:id``                         analysis of the streamed audio (below)
``/idm/cancel i:id``                            stops a stream or job: ``/idm/error i:id s:cancelled``
``/idm/export/midi i:id s:path s:drum_map``     ``/idm/midi i:id s:path`` (optional 4th ``i:overwrite``)
``/idm/midi/notes i:id s:drum_map``             ``/idm/midi/note i:note i:velocity f:time_s`` per
                                                note, then ``/idm/midi/end i:id i:count``
``/idm/render i:id s:kit s:fx s:out_dir``       ``/idm/render/done i:id s:out_dir``: the hits of
                                                analysis ``id`` re-rendered with a kit preset ("" keeps
                                                the extracted kit) and effect chains, ``fx`` =
                                                ``"KD=tight-kick,master=master-glue"`` or ""
==============================================  ===================================================

An analysis replies ``/idm/progress i:id f:fraction s:stage`` while it works, then
``/idm/hit i:id s:class f:time_s f:velocity`` for every hit (in time order), ``/idm/stems i:id
s:dir`` (a folder with one WAV per class, ``residual.wav`` and ``kit/``), ``/idm/midi i:id s:path``
(General MIDI, or the server's drum map) and ``/idm/done i:id``. Anything malformed or failing gets
``/idm/error i:id s:message`` (id 0 when no id could be read); the server keeps serving.

Streams are checked: a missing, repeated or out-of-order ``seq``, a chunk that overruns the
declared length, or an end before all frames arrived is an error and aborts the stream, never
silence. Memory is bounded per stream (``max_stream_s``), for all streams together
(``max_total_mb``), by the number of streams (``max_streams``) and queued jobs; a stream idle for
``stream_timeout_s`` (a client that vanished) is dropped.

Clients and results: :attr:`OscServer.clients` lists the clients the server knows (a TCP client
while its connection is open, a UDP client until it has been silent for ``client_timeout_s``), each
an immutable :class:`OscClient` (address, protocol, last seen, jobs). An ``on_result`` callback
(given to the constructor or added with :meth:`OscServer.add_result_listener`) is called on the
worker thread after every analysis job, with the job id, the :class:`~idm_host.types.Analysis` or
the :class:`~idm_host.errors.IdmError` it failed with, and the client that asked.

Example:
    >>> from idm_host.osc import OscServer                                   # doctest: +SKIP
    >>> with OscServer(port=9000, tcp_port=9001) as server:                  # doctest: +SKIP
    ...     server.wait()                                                    # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import os
import queue
import re
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import __version__
from .errors import Cancelled, IdmError, OscError
from .types import Analysis, Audio, Kit, Transcription

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
#: Largest UDP datagram read (python-osc's socketserver default is 8192, which silently drops more).
UDP_MAX_PACKET = 65535
#: Receive buffer asked for on the UDP socket, so bursts of chunks are not dropped.
UDP_RCVBUF = 8 * 1024 * 1024
#: Largest TCP frame accepted; a larger declared size closes the connection with an error.
TCP_MAX_FRAME = 16 * 1024 * 1024
SAMPLE_RATES = (8000, 192000)
MAX_CHANNELS = 8
#: Error replies per second to one peer; more are dropped (and counted) so garbage cannot flood it.
ERRORS_PER_S = 200

#: A UDP client silent for this long (s) leaves :attr:`OscServer.clients` (UDP has no connections).
CLIENT_TIMEOUT_S = 60.0
#: Clients remembered at once; beyond this the longest-silent UDP client is forgotten.
MAX_CLIENTS = 256
#: Job ids remembered per client.
MAX_CLIENT_JOBS = 64

AnalyzeFn = Callable[[Audio, Callable[[float, str], None]], Analysis]


@dataclass(frozen=True)
class OscClient:
    """A client the server has heard from (a read-only snapshot; see :attr:`OscServer.clients`).

    Attributes:
        address: the client's ``(host, port)``: where its packets come from (replies may go
            elsewhere with ``reply_port``).
        protocol: ``"udp"`` or ``"tcp"``.
        first_seen: when its first packet (or TCP connection) arrived, as ``time.time()`` (s).
        last_seen: when its latest packet arrived, as ``time.time()`` (s).
        messages: OSC messages received from it.
        jobs: ids of the analyses and renders it asked for (the ids its replies carry), oldest
            first; the last :data:`MAX_CLIENT_JOBS`.
        active_jobs: those of ``jobs`` queued or running now.
    """

    address: tuple[str, int]
    protocol: str
    first_seen: float
    last_seen: float
    messages: int = 0
    jobs: tuple[int, ...] = ()
    active_jobs: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """``"udp:127.0.0.1:50000"``: protocol, host and port."""
        return f"{self.protocol}:{self.address[0]}:{self.address[1]}"


#: ``on_result(job_id, analysis_or_error, client)``: see :meth:`OscServer.add_result_listener`.
ResultFn = Callable[[int, "Analysis | IdmError", OscClient], None]


class _ClientRecord:
    """The mutable bookkeeping behind one :class:`OscClient` (guarded by the server's lock)."""

    def __init__(self, protocol: str, address: tuple[str, int]):
        self.protocol = protocol
        self.address = (str(address[0]), int(address[1]))
        self.first_seen = self.last_seen = time.time()
        self.last_seen_mono = time.monotonic()
        self.messages = 0
        self.jobs: deque[int] = deque(maxlen=MAX_CLIENT_JOBS)
        self.active: dict[int, int] = {}  # internal job id -> the id its replies carry

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol,) + self.address

    def touch(self) -> None:
        self.last_seen = time.time()
        self.last_seen_mono = time.monotonic()

    def snapshot(self) -> OscClient:
        return OscClient(self.address, self.protocol, self.first_seen, self.last_seen, self.messages,
                         tuple(self.jobs), tuple(sorted(set(self.active.values()))))


# ------------------------------------------------------------------------------------------ replies
def build_message(address: str, *args: Any) -> bytes:
    """One OSC message as bytes, with explicit types: int -> i, float -> f, str -> s, bytes -> b."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address=address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(int(a), "i")
        elif isinstance(a, (int, np.integer)):
            b.add_arg(int(max(-(2**31), min(2**31 - 1, int(a)))), "i")
        elif isinstance(a, (float, np.floating)):
            b.add_arg(float(a), "f")
        elif isinstance(a, str):
            b.add_arg(a, "s")
        elif isinstance(a, (bytes, bytearray)):
            b.add_arg(bytes(a), "b")
        else:
            raise TypeError(f"cannot send {type(a).__name__} over OSC")
    return b.build().dgram


class _Reply:
    """Where replies to one request go."""

    peer: str = "?"
    #: The client that sent the request: ``(protocol, host, port)`` of its packets' source.
    client_key: tuple[str, str, int] | None = None

    def send(self, data: bytes) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        return True


class _UdpReply(_Reply):
    def __init__(self, sock: socket.socket, address: tuple[str, int]):
        self._sock = sock
        self.address = address
        self.peer = f"udp:{address[0]}:{address[1]}"

    def send(self, data: bytes) -> bool:
        try:
            self._sock.sendto(data, self.address)
            return True
        except OSError as exc:
            log.debug("reply to %s failed: %s", self.peer, exc)
            return False


class _TcpReply(_Reply):
    def __init__(self, conn: socket.socket, address: tuple[str, int], redirect: _Reply | None = None):
        self._conn = conn
        self._lock = threading.Lock()
        self._alive = True
        self.peer = f"tcp:{address[0]}:{address[1]}"
        self.client_key = ("tcp", str(address[0]), int(address[1]))
        #: With a server-wide reply port, replies to this connection's requests go there instead.
        self.redirect = redirect

    @property
    def alive(self) -> bool:
        return self._alive

    def send(self, data: bytes) -> bool:
        if self.redirect is not None:
            return self.redirect.send(data)
        if not self._alive:
            return False
        try:
            with self._lock:
                self._conn.sendall(struct.pack(">I", len(data)) + data)
            return True
        except OSError as exc:
            self._alive = False
            log.debug("reply to %s failed: %s", self.peer, exc)
            return False

    def close(self) -> None:
        self._alive = False
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------ state
@dataclass
class _Stream:
    id: int
    sample_rate: int
    channels: int
    frames: int
    reply: _Reply
    buf: bytearray = field(default_factory=bytearray)
    next_seq: int = 0
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def n_bytes(self) -> int:
        return self.frames * self.channels * 4


@dataclass
class _Job:
    id: int
    name: str
    source: "Audio | Path"
    reply: _Reply
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Seconds the engine itself spent before hits existed (load + transcription + kit).
    engine_s: float = 0.0
    #: Work other than an analysis (a render), run by the worker instead of :meth:`OscServer._run`.
    action: Callable[["_Job"], None] | None = None
    #: The id replies carry (a render replies under the id of the analysis it renders).
    reply_id: int = 0
    #: The client that asked (kept even after a TCP client disconnects, for the result listeners).
    client: "_ClientRecord | None" = None


@dataclass
class _Result:
    transcription: Transcription
    kit: Kit | None
    out_dir: Path | None
    engine_s: float = 0.0
    #: For /idm/render: the analysis's track gains, model name, and the audio's shape and source.
    track_gains: Any = None
    model: str = ""
    audio_info: tuple = ()  # (source path or None, sample_rate, channels, n_frames)


class _ArgError(Exception):
    pass


def _args(msg, spec: str, usage: str) -> list[Any]:
    """Check ``msg``'s arguments against ``spec`` (i, f, s, b); extra trailing arguments are refused."""
    params = list(msg.params)
    if len(params) != len(spec):
        raise _ArgError(f"{msg.address} expects {usage} ({len(spec)} arguments), got {len(params)}")
    out = []
    for k, (p, t) in enumerate(zip(params, spec)):
        ok = (
            (t == "i" and isinstance(p, int) and not isinstance(p, bool))
            or (t == "f" and isinstance(p, (int, float)) and not isinstance(p, bool))
            or (t == "s" and isinstance(p, str))
            or (t == "b" and isinstance(p, (bytes, bytearray)))
        )
        if not ok:
            raise _ArgError(
                f"{msg.address} argument {k + 1} must be {_TYPE_NAMES[t]}, got {type(p).__name__}; usage: {usage}"
            )
        out.append(float(p) if t == "f" else p)
    return out


_TYPE_NAMES = {"i": "an int32 (i)", "f": "a float (f)", "s": "a string (s)", "b": "a blob (b)"}


def _parse_fx(text: str) -> dict[str, str | None]:
    """``"KD=tight-kick,SD=fat-snare,master=glue"`` (or one preset name, for the master) -> a dict;
    ``none`` removes a chain."""
    out: dict[str, str | None] = {}
    text = text.strip()
    if not text:
        return out
    if "=" not in text:
        return {"master": None if text == "none" else text}
    for item in text.split(","):
        cls, sep, preset = item.strip().partition("=")
        if not sep or not cls or not preset:
            raise OscError(f"render fx {item!r}: expected CLASS=PRESET, e.g. KD=tight-kick,SD=fat-snare")
        out[cls] = None if preset == "none" else preset
    return out


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60] or "audio"


# ------------------------------------------------------------------------------------------ servers
class _UdpServer(socketserver.UDPServer):
    """A blocking UDP server (python-osc's BlockingOSCUDPServer is this plus a dispatcher) with the
    datagram limit raised from socketserver's 8,192 bytes and a large receive buffer."""

    max_packet_size = UDP_MAX_PACKET
    allow_reuse_address = False

    def __init__(self, address, osc: "OscServer"):
        self.osc = osc
        super().__init__(address, _UdpHandler)

    def server_bind(self) -> None:
        # SO_RCVBUFFORCE passes the system cap (net.core.rmem_max) where permitted; else the capped size
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            if force is None:
                raise PermissionError
            self.socket.setsockopt(socket.SOL_SOCKET, force, self.osc.udp_rcvbuf)
        except OSError:
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.osc.udp_rcvbuf)
            except OSError as exc:  # pragma: no cover - platform limits
                log.warning("could not raise the UDP receive buffer: %s", exc)
        super().server_bind()

    def handle_error(self, request, client_address) -> None:  # never print tracebacks to stderr
        log.exception("error serving UDP packet from %s", client_address)


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        osc: OscServer = self.server.osc  # type: ignore[attr-defined]
        osc._handle_packet(data, osc._udp_reply(sock, self.client_address))


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, osc: "OscServer"):
        self.osc = osc
        super().__init__(address, _TcpHandler)

    def handle_error(self, request, client_address) -> None:
        log.exception("error serving TCP client %s", client_address)


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n > 0:
        try:
            b = conn.recv(min(n, 1 << 20))
        except OSError:
            return None
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        osc: OscServer = self.server.osc  # type: ignore[attr-defined]
        conn: socket.socket = self.request
        reply = _TcpReply(conn, self.client_address, osc._tcp_redirect(self.client_address))
        if not osc._add_connection(reply):
            reply.send(build_message("/idm/error", 0, f"too many TCP connections (limit {osc.max_connections})"))
            reply.close()
            return
        try:
            while not osc._stopping.is_set():
                head = _recv_exact(conn, 4)
                if head is None:
                    break
                (n,) = struct.unpack(">I", head)
                if n == 0:
                    continue
                if n > osc.tcp_max_frame:
                    osc._error(reply, 0, f"TCP frame of {n} bytes exceeds the limit of {osc.tcp_max_frame}; "
                                         "send audio in smaller chunks. Closing the connection")
                    break
                data = _recv_exact(conn, n)
                if data is None:
                    break
                osc._handle_packet(data, reply)
        finally:
            osc._remove_connection(reply)
            reply.close()


# ------------------------------------------------------------------------------------------ server
class OscServer:
    """The OSC bridge server.

    Args:
        separator: a :class:`~idm_host.engine.Separator`, a model name, a zero-argument factory that
            returns one (called on the first job, so the server starts at once), or ``None`` for
            ``Separator("default")``.
        analyze: instead of a separator, a function ``analyze(audio, progress) -> Analysis``.
        host: interface to bind (127.0.0.1: this machine only).
        port: UDP port (0 picks a free one; see :attr:`udp_address`).
        tcp_port: TCP port, or ``None`` for no TCP (0 picks a free one).
        reply_port: send every reply (to UDP and TCP requests alike) to this UDP port, on
            ``reply_host`` (default: the sender's host), instead of back to the sender.
        out_dir: folder for stems and MIDI of each job (a new sub-folder per job).
        max_stream_s: longest audio one stream may declare (s).
        max_total_mb: memory all open streams may declare together (MiB).
        max_streams: streams open at once.
        stream_timeout_s: a stream with no packet for this long is dropped.
        max_queued_jobs: analyses waiting at once; more are refused as busy.
        write_stems: write stem WAVs (``/idm/stems``); MIDI is always written.
        drum_map: the map of the ``/idm/midi`` file written after each analysis.
        on_result: a first result listener, see :meth:`add_result_listener`.
        client_timeout_s: a UDP client silent for this long leaves :attr:`clients`.
    """

    def __init__(
        self,
        separator: Any = None,
        *,
        analyze: AnalyzeFn | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        tcp_port: int | None = None,
        reply_port: int | None = None,
        reply_host: str | None = None,
        out_dir: "str | os.PathLike | None" = None,
        max_stream_s: float = 900.0,
        max_total_mb: float = 1024.0,
        max_streams: int = 4,
        stream_timeout_s: float = 30.0,
        max_queued_jobs: int = 4,
        max_connections: int = 16,
        write_stems: bool = True,
        drum_map: str = "gm",
        udp_rcvbuf: int = UDP_RCVBUF,
        tcp_max_frame: int = TCP_MAX_FRAME,
        keep_results: int = 16,
        on_result: ResultFn | None = None,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
    ):
        if separator is not None and analyze is not None:
            raise OscError("give either a separator or an analyze function, not both")
        for name, value in (("port", port), ("tcp_port", tcp_port), ("reply_port", reply_port)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535):
                raise OscError(f"{name} {value!r} is invalid; ports are 0..65535")
        if reply_port == 0:
            raise OscError("reply_port 0 is invalid; give the port your client listens on")
        if not (max_stream_s > 0 and max_total_mb > 0 and max_streams >= 1 and stream_timeout_s > 0
                and max_queued_jobs >= 1):
            raise OscError("stream limits must be positive")
        if not (isinstance(client_timeout_s, (int, float)) and client_timeout_s > 0):
            raise OscError(f"client_timeout_s {client_timeout_s!r} is invalid; give a positive number of seconds")
        if on_result is not None and not callable(on_result):
            raise OscError(f"on_result must be callable, got {type(on_result).__name__}")
        self._separator_spec = separator
        self._separator = None
        self._analyze_fn = analyze
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        self.reply_port = reply_port
        self.reply_host = reply_host
        self.out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "idm-host-osc"
        self.max_stream_s = float(max_stream_s)
        self.max_total_bytes = int(max_total_mb * 1024 * 1024)
        self.max_streams = int(max_streams)
        self.stream_timeout_s = float(stream_timeout_s)
        self.max_connections = int(max_connections)
        self.write_stems = write_stems
        self.drum_map = drum_map
        self.udp_rcvbuf = int(udp_rcvbuf)
        self.tcp_max_frame = int(tcp_max_frame)
        self._keep_results = int(keep_results)
        self.client_timeout_s = float(client_timeout_s)
        self._clients: dict[tuple[str, str, int], _ClientRecord] = {}
        self._result_listeners: list[ResultFn] = [on_result] if on_result is not None else []

        self._lock = threading.RLock()
        self._streams: dict[int, _Stream] = {}
        self._jobs: dict[int, _Job] = {}
        self._results: "OrderedDict[int, _Result]" = OrderedDict()
        self._queue: "queue.Queue[_Job | None]" = queue.Queue(maxsize=max_queued_jobs)
        self._connections: set[_TcpReply] = set()
        self._next_id = 1
        self._error_budget: dict[str, tuple[float, float]] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: _UdpServer | None = None
        self._tcp: _TcpServer | None = None
        #: Counters, for tests and benchmarks: packets, messages, errors, errors_dropped, jobs_done.
        self.stats: dict[str, int] = {"packets": 0, "messages": 0, "errors": 0, "errors_dropped": 0,
                                      "jobs_done": 0, "jobs_failed": 0}

    # -------------------------------------------------------------------------------- lifecycle
    def start(self) -> "OscServer":
        """Bind the sockets and start serving in background threads.

        Raises:
            OscError: a port is taken or the host cannot be bound.
        """
        try:
            self._udp = _UdpServer((self.host, self.port), self)
        except OSError as exc:
            raise OscError(f"cannot listen on UDP {self.host}:{self.port} ({exc.strerror or exc}); "
                           "choose another --port") from exc
        if self.tcp_port is not None:
            try:
                self._tcp = _TcpServer((self.host, self.tcp_port), self)
            except OSError as exc:
                self._udp.server_close()
                raise OscError(f"cannot listen on TCP {self.host}:{self.tcp_port} ({exc.strerror or exc}); "
                               "choose another --tcp-port") from exc
        self._spawn(self._udp.serve_forever, "idm-osc-udp", 0.1)
        if self._tcp is not None:
            self._spawn(self._tcp.serve_forever, "idm-osc-tcp", 0.1)
        self._spawn(self._worker, "idm-osc-worker")
        self._spawn(self._janitor, "idm-osc-janitor")
        log.info("OSC server on udp %s tcp %s", self.udp_address, self.tcp_address)
        return self

    def _spawn(self, target, name: str, *args) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self._udp.server_address[:2] if self._udp else None  # type: ignore[return-value]

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.server_address[:2] if self._tcp else None  # type: ignore[return-value]

    @property
    def clients(self) -> tuple[OscClient, ...]:
        """The clients the server knows now, oldest first: every TCP client with an open connection
        and every UDP client heard from within ``client_timeout_s``. Immutable snapshots."""
        with self._lock:
            return tuple(r.snapshot() for r in sorted(self._clients.values(), key=lambda r: r.first_seen))

    def add_result_listener(self, callback: ResultFn) -> Callable[[], None]:
        """Call ``callback(job_id, result, client)`` after every analysis job; returns a remover.

        ``result`` is the :class:`~idm_host.types.Analysis` (its ``extra["out_dir"]`` names the
        job's output folder, the one ``/idm/stems`` and ``/idm/midi`` point into; its ``stems`` are ``None`` when
        the server streamed them to that folder instead of holding them in memory, i.e. with a
        ``Separator`` rather than an ``analyze`` function) or the :class:`~idm_host.errors.IdmError`
        the job failed with (:class:`~idm_host.errors.Cancelled` when cancelled). ``client`` is the
        :class:`OscClient` that asked. Listeners run on the server's worker thread after the
        client's replies were sent; an exception in one is logged and the server goes on.

        Raises:
            OscError: ``callback`` is not callable.
        """
        if not callable(callback):
            raise OscError(f"a result listener must be callable, got {type(callback).__name__}")
        with self._lock:
            self._result_listeners.append(callback)

        def remove() -> None:
            with self._lock:
                try:
                    self._result_listeners.remove(callback)
                except ValueError:
                    pass

        return remove

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving: running jobs are cancelled, open streams dropped, sockets closed."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
            self._streams.clear()
            conns = list(self._connections)
        for srv in (self._udp, self._tcp):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for c in conns:
            c.close()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        for t in self._threads:
            t.join(timeout_s)

    def wait(self) -> None:
        """Block until :meth:`stop` is called (Ctrl-C stops the server)."""
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------------------------- plumbing
    def _udp_reply(self, sock: socket.socket, address: tuple[str, int]) -> _Reply:
        if self.reply_port is not None:
            reply = _UdpReply(sock, (self.reply_host or address[0], self.reply_port))
        else:
            reply = _UdpReply(sock, address)
        reply.client_key = ("udp", str(address[0]), int(address[1]))
        return reply

    def _client(self, reply: _Reply) -> _ClientRecord | None:
        """The record of the client behind ``reply`` (made on first contact); call under the lock."""
        key = reply.client_key
        if key is None:
            return None
        rec = self._clients.get(key)
        if rec is None:
            if len(self._clients) >= MAX_CLIENTS:
                udp = [r for r in self._clients.values() if r.protocol == "udp"]
                if udp:
                    del self._clients[min(udp, key=lambda r: r.last_seen_mono).key]
            rec = self._clients[key] = _ClientRecord(key[0], (key[1], key[2]))
        return rec

    def _tcp_redirect(self, address: tuple[str, int]) -> _Reply | None:
        if self.reply_port is None or self._udp is None:
            return None
        return _UdpReply(self._udp.socket, (self.reply_host or address[0], self.reply_port))

    def _add_connection(self, reply: _TcpReply) -> bool:
        with self._lock:
            if len(self._connections) >= self.max_connections or self._stopping.is_set():
                return False
            self._connections.add(reply)
            self._client(reply)
            return True

    def _remove_connection(self, reply: _TcpReply) -> None:
        with self._lock:
            self._connections.discard(reply)
            if reply.client_key is not None:
                self._clients.pop(reply.client_key, None)
            dropped = [s for s in self._streams.values() if s.reply is reply]
            for s in dropped:
                del self._streams[s.id]
        for s in dropped:
            log.warning("stream %d dropped: its TCP client disconnected before /idm/audio/end", s.id)

    def _send(self, reply: _Reply, address: str, *args: Any) -> bool:
        return reply.send(build_message(address, *args))

    def _error(self, reply: _Reply, id_: int, message: str) -> None:
        with self._lock:
            self.stats["errors"] += 1
            now = time.monotonic()
            tokens, last = self._error_budget.get(reply.peer, (float(ERRORS_PER_S), now))
            tokens = min(float(ERRORS_PER_S), tokens + (now - last) * ERRORS_PER_S)
            if tokens < 1.0:
                self.stats["errors_dropped"] += 1
                self._error_budget[reply.peer] = (tokens, now)
                return
            self._error_budget[reply.peer] = (tokens - 1.0, now)
            if len(self._error_budget) > 1024:
                self._error_budget.clear()
        log.info("OSC error to %s (id %s): %s", reply.peer, id_, message)
        self._send(reply, "/idm/error", int(id_), message)

    def _new_id(self) -> int:
        with self._lock:
            while self._next_id in self._jobs or self._next_id in self._streams or self._next_id in self._results:
                self._next_id += 1
            i = self._next_id
            self._next_id += 1
            return i

    # -------------------------------------------------------------------------------- dispatch
    def _handle_packet(self, data: bytes, reply: _Reply) -> None:
        from pythonosc.osc_packet import OscPacket

        with self._lock:
            self.stats["packets"] += 1
            client = self._client(reply)
            if client is not None:
                client.touch()
        try:
            packet = OscPacket(bytes(data))
            messages = [m.message for m in packet.messages]
        except Exception as exc:  # python-osc raises ParseError, and others on hostile bytes
            self._error(reply, 0, f"malformed OSC packet ({len(data)} bytes): {exc}")
            return
        for msg in messages:
            with self._lock:
                self.stats["messages"] += 1
                if client is not None:
                    client.messages += 1
            try:
                self._handle_message(msg, reply)
            except _ArgError as exc:
                self._error(reply, self._first_int(msg), str(exc))
            except IdmError as exc:
                self._error(reply, self._first_int(msg), str(exc))
            except Exception as exc:  # a bug must not kill the server
                log.exception("error handling %s", getattr(msg, "address", "?"))
                self._error(reply, self._first_int(msg), f"internal error handling {msg.address}: {exc}")

    @staticmethod
    def _first_int(msg) -> int:
        try:
            p = msg.params[0]
            return int(p) if isinstance(p, int) and not isinstance(p, bool) and -(2**31) <= p < 2**31 else 0
        except Exception:
            return 0

    def _handle_message(self, msg, reply: _Reply) -> None:
        address = msg.address
        handler = self._handlers().get(address)
        if handler is None:
            known = ", ".join(sorted(self._handlers()))
            raise _ArgError(f"unknown address {address!r}; this server answers {known}")
        handler(msg, reply)

    def _handlers(self) -> dict[str, Callable]:
        return {
            "/idm/ping": self._on_ping,
            "/idm/open": self._on_open,
            "/idm/audio/begin": self._on_begin,
            "/idm/audio/chunk": self._on_chunk,
            "/idm/audio/end": self._on_end,
            "/idm/cancel": self._on_cancel,
            "/idm/export/midi": self._on_export_midi,
            "/idm/midi/notes": self._on_midi_notes,
            "/idm/render": self._on_render,
        }

    # -------------------------------------------------------------------------------- handlers
    def _on_ping(self, msg, reply: _Reply) -> None:
        self._send(reply, "/idm/pong", __version__)

    def _on_open(self, msg, reply: _Reply) -> None:
        usage = "s:path or i:id s:path"
        if len(msg.params) == 1:
            (path_text,) = _args(msg, "s", usage)
            id_ = self._new_id()
        else:
            id_, path_text = _args(msg, "is", usage)
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            raise _ArgError(f"/idm/open needs an absolute path; {path_text!r} is relative to nothing the client knows")
        if not path.is_file():
            raise OscError(f"{path}: file not found or not a file; check the path the server sees")
        self._submit(_Job(id_, f"{_safe_name(path.stem)}-{id_}", path, reply))

    def _on_begin(self, msg, reply: _Reply) -> None:
        id_, rate, channels, frames = _args(msg, "iiii", "i:id i:sample_rate i:channels i:frames")
        if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
            raise OscError(f"stream {id_}: sample rate {rate} Hz is out of range {SAMPLE_RATES[0]}..{SAMPLE_RATES[1]}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise OscError(f"stream {id_}: {channels} channels is out of range 1..{MAX_CHANNELS}")
        if frames <= 0:
            raise OscError(f"stream {id_}: frames must be > 0 (got {frames})")
        if frames > self.max_stream_s * rate:
            raise OscError(f"stream {id_}: {frames / rate:.1f} s is longer than this server's limit of "
                           f"{self.max_stream_s:.0f} s per stream (serve --max-stream-s); send a shorter section")
        stream = _Stream(id_, rate, channels, frames, reply)
        with self._lock:
            if id_ in self._streams or id_ in self._jobs:
                raise OscError(f"stream {id_}: this id is already in use; pick a new id")
            if len(self._streams) >= self.max_streams:
                raise OscError(f"stream {id_}: too many concurrent streams (limit {self.max_streams}); "
                               "finish or cancel one first")
            total = sum(s.n_bytes for s in self._streams.values()) + stream.n_bytes
            if total > self.max_total_bytes:
                raise OscError(f"stream {id_}: {stream.n_bytes / 2**20:.0f} MiB more would pass the server's "
                               f"memory limit for streams ({self.max_total_bytes / 2**20:.0f} MiB); try again later")
            self._streams[id_] = stream
            self._results.pop(id_, None)

    def _take_stream(self, id_: int) -> _Stream:
        stream = self._streams.get(id_)
        if stream is None:
            raise OscError(f"stream {id_}: no such open stream; send /idm/audio/begin first")
        return stream

    def _abort(self, id_: int, reason: str) -> OscError:
        with self._lock:
            self._streams.pop(id_, None)
        return OscError(f"stream {id_}: {reason}; the stream was aborted, send it again from /idm/audio/begin")

    def _on_chunk(self, msg, reply: _Reply) -> None:
        id_, seq, data = _args(msg, "iib", "i:id i:seq b:float32-le-interleaved")
        with self._lock:
            stream = self._take_stream(id_)
            stream.last_seen = time.monotonic()
            if seq != stream.next_seq:
                what = "repeated or out-of-order" if seq < stream.next_seq else "missing"
                raise self._abort(id_, f"{what} chunk: expected seq {stream.next_seq}, got {seq}")
            if len(data) % (4 * stream.channels):
                raise self._abort(id_, f"chunk {seq} holds {len(data)} bytes, not a whole number of "
                                       f"{stream.channels}-channel float32 frames")
            if len(stream.buf) + len(data) > stream.n_bytes:
                raise self._abort(id_, f"chunk {seq} overruns the declared {stream.frames} frames")
            stream.buf += data
            stream.next_seq += 1

    def _on_end(self, msg, reply: _Reply) -> None:
        (id_,) = _args(msg, "i", "i:id")
        with self._lock:
            stream = self._take_stream(id_)
            if len(stream.buf) != stream.n_bytes:
                got = len(stream.buf) // (4 * stream.channels)
                raise self._abort(id_, f"ended after {got} of {stream.frames} frames ({stream.next_seq} chunks)")
            del self._streams[id_]
        samples = np.frombuffer(bytes(stream.buf), dtype="<f4").reshape(stream.frames, stream.channels).T
        if not np.isfinite(samples).all():
            raise OscError(f"stream {id_}: the audio contains NaN or infinite samples; send float32 in -1..1")
        audio = Audio(np.ascontiguousarray(samples, dtype=np.float32), stream.sample_rate)
        self._submit(_Job(id_, f"stream-{id_}", audio, reply))

    def _on_cancel(self, msg, reply: _Reply) -> None:
        (id_,) = _args(msg, "i", "i:id")
        with self._lock:
            stream = self._streams.pop(id_, None)
            job = self._jobs.get(id_)
        if job is not None:
            job.cancel.set()  # the worker replies when it stops
        elif stream is not None:
            self._error(reply, id_, f"stream {id_}: cancelled")
        else:
            raise OscError(f"id {id_}: nothing to cancel (no open stream or running job)")

    def _result(self, id_: int) -> _Result:
        with self._lock:
            res = self._results.get(id_)
        if res is None:
            raise OscError(f"id {id_}: no finished analysis with this id (the server keeps the last "
                           f"{self._keep_results}); analyse the audio first")
        return res

    def engine_time_s(self, id_: int) -> float | None:
        """Seconds the engine spent on job ``id_`` before its hits existed (for latency measures)."""
        with self._lock:
            res = self._results.get(id_)
        return None if res is None else res.engine_s

    def _on_export_midi(self, msg, reply: _Reply) -> None:
        from .midi import write_midi

        usage = "i:id s:path s:drum_map [i:overwrite]"
        if len(msg.params) == 4:
            id_, path_text, drum_map, overwrite = _args(msg, "issi", usage)
        else:
            id_, path_text, drum_map = _args(msg, "iss", usage)
            overwrite = 0
        res = self._result(id_)
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            raise _ArgError(f"/idm/export/midi needs an absolute path, got {path_text!r}")
        write_midi(res.transcription, path, drum_map=drum_map or "gm", overwrite=bool(overwrite))
        self._send(reply, "/idm/midi", id_, str(path))

    def _on_midi_notes(self, msg, reply: _Reply) -> None:
        from .midi import note_events

        id_, drum_map = _args(msg, "is", "i:id s:drum_map")
        res = self._result(id_)
        events = note_events(res.transcription, drum_map=drum_map or "gm")
        for k, e in enumerate(events):
            self._send(reply, "/idm/midi/note", e.note, e.velocity, float(e.time_s))
            if isinstance(reply, _UdpReply) and k % 64 == 63:
                time.sleep(0.0005)  # pace bursts so a client's receive buffer keeps up
        self._send(reply, "/idm/midi/end", id_, len(events))

    def _on_render(self, msg, reply: _Reply) -> None:
        id_, kit, fx, out_dir = _args(msg, "isss", "i:id s:kit s:fx s:out_dir")
        res = self._result(id_)
        out = Path(out_dir).expanduser()
        if not out.is_absolute():
            raise _ArgError(f"/idm/render needs an absolute out_dir, got {out_dir!r}")
        if res.kit is None or not res.audio_info:
            raise OscError(f"id {id_}: this analysis has no kit to render with")
        fx_map = _parse_fx(fx)
        # check presets now, so a typo is answered at once rather than after queueing
        from .presets import load_kit

        kit_preset = load_kit(kit) if kit else None
        from .fx import validate_effects

        for preset in fx_map.values():
            if preset is not None:
                validate_effects(preset)

        def action(job: _Job) -> None:
            self._render(job, res, kit_preset, fx_map, out)

        render_id = self._new_id()
        self._submit(_Job(render_id, f"render-{id_}", Path(out), reply, action=action), announce_id=id_)

    def _render(self, job: _Job, res: _Result, kit_preset, fx_map: dict[str, str | None], out: Path) -> None:
        from .render import export_stems, render
        from .session import Compound, Session, SetEffects
        from .types import Stems

        source, rate, channels, n_frames = res.audio_info
        silent = np.broadcast_to(np.zeros((1, 1), np.float32), (channels, n_frames))  # no memory
        audio = Audio(silent, rate, source)
        classes = res.transcription.classes
        stems = Stems(classes, np.broadcast_to(np.zeros((1, 1, 1), np.float32), (len(classes), channels, 1)),
                      silent[:, :1], rate)
        analysis = Analysis(res.transcription, res.kit, stems, np.asarray(res.track_gains), np.zeros(6, np.float32),
                            res.model, audio)
        session = Session.from_analysis(analysis, source=source, keep_stems=False)
        cmds = []
        if kit_preset is not None:
            from .presets import kit_command

            cmds.append(kit_command(session, kit_preset))
        for cls, preset in fx_map.items():
            if cls != "master" and cls not in session.classes:
                raise OscError(f"render: unknown class {cls!r} in fx; use one of {', '.join(session.classes)}")
            cmds.append(SetEffects(cls, preset))
        if cmds:
            session.apply(Compound(cmds, "osc render"))
        progress = self._progress_fn(job)
        result = render(session, progress=progress)
        export_stems(result, out)
        self._send(job.reply, "/idm/render/done", job.reply_id, str(out))

    # -------------------------------------------------------------------------------- jobs
    def _submit(self, job: _Job, announce_id: int | None = None) -> None:
        job.reply_id = job.id if announce_id is None else announce_id
        with self._lock:
            if job.id in self._jobs:
                raise OscError(f"id {job.reply_id}: a job with this id is already running; pick a new id")
            self._jobs[job.id] = job
            if self._queue.full():
                self._jobs.pop(job.id, None)
                raise OscError(f"id {job.reply_id}: the server is busy ({self._queue.maxsize} jobs queued); "
                               "try again when one is done")
            job.client = self._client(job.reply)
            if job.client is not None:
                job.client.jobs.append(job.reply_id)
                job.client.active[job.id] = job.reply_id
            # announced before the worker can see the job, so "queued" is always the first progress
            self._send(job.reply, "/idm/progress", job.reply_id, 0.0, "queued")
            self._queue.put_nowait(job)  # only this method puts jobs, under the lock: never full here

    def _worker(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                break
            outcome: Any = None
            try:
                outcome = (job.action or self._run)(job)
                with self._lock:
                    self.stats["jobs_done"] += 1
            except Cancelled as exc:
                outcome = exc
                self._error(job.reply, job.reply_id, "cancelled")
                with self._lock:
                    self.stats["jobs_failed"] += 1
            except Exception as exc:
                if not isinstance(exc, IdmError):
                    log.exception("analysis %d failed", job.id)
                    wrapped = OscError(f"analysis failed: {type(exc).__name__}: {exc}")
                    wrapped.__cause__ = exc
                    outcome = wrapped
                else:
                    outcome = exc
                self._error(job.reply, job.reply_id, f"{'render' if job.action else 'analysis'} failed: {exc}")
                with self._lock:
                    self.stats["jobs_failed"] += 1
            finally:
                with self._lock:
                    self._jobs.pop(job.id, None)
                    if job.client is not None:
                        job.client.active.pop(job.id, None)
            if job.action is None:
                self._publish(job, outcome)

    def _publish(self, job: _Job, outcome: "Analysis | IdmError") -> None:
        """Tell the result listeners how analysis ``job`` ended (on the worker thread)."""
        with self._lock:
            listeners = list(self._result_listeners)
            client = (job.client.snapshot() if job.client is not None
                      else OscClient(("?", 0), "?", time.time(), time.time()))
        for cb in listeners:
            try:
                cb(job.reply_id, outcome, client)
            except Exception:  # a listener's bug must not stop the server
                log.exception("OSC result listener %r failed for job %d", cb, job.id)

    def _get_separator(self):
        if self._separator is None:
            spec = self._separator_spec
            if spec is None or isinstance(spec, (str, os.PathLike)):
                from .engine import Separator

                self._separator = Separator(spec if spec is not None else "default")
            elif hasattr(spec, "prepare") or hasattr(spec, "analyze"):
                self._separator = spec
            elif callable(spec):
                self._separator = spec()
            else:
                raise OscError(f"cannot use {type(spec).__name__} as a separator")
        return self._separator

    def _progress_fn(self, job: _Job) -> Callable[[float, str], None]:
        state = {"t": 0.0, "stage": None}

        def progress(fraction: float, stage: str) -> None:
            if job.cancel.is_set() or self._stopping.is_set():
                raise Cancelled(f"analysis {job.id} cancelled")
            now = time.monotonic()
            if stage != state["stage"] or now - state["t"] >= 0.05 or fraction >= 1.0:
                state["t"], state["stage"] = now, stage
                self._send(job.reply, "/idm/progress", job.reply_id, float(min(max(fraction, 0.0), 1.0)), stage or "")

        return progress

    def _run(self, job: _Job) -> Analysis:
        from .audio import load_audio
        from .progress import Stage

        progress = self._progress_fn(job)
        stage = Stage(progress)
        t0 = time.perf_counter()
        analysis: Analysis | None = None
        if self._analyze_fn is not None:
            audio = job.source if isinstance(job.source, Audio) else load_audio(job.source, sample_rate=None)
            analysis = self._analyze_fn(audio, stage.sub(0.0, 0.8))
            tr, kit = analysis.transcription, analysis.kit
            gains, model, audio = analysis.track_gains, analysis.model, analysis.audio
            job.engine_s = time.perf_counter() - t0
            self._send_hits(job, tr)
            blocks: Iterable = [(0, analysis.stems.audio, analysis.stems.residual)]
            classes, rate, channels = analysis.stems.classes, analysis.stems.sample_rate, analysis.stems.residual.shape[0]
            blocks_progress = stage.sub(0.8, 0.95)
        else:
            sep = self._get_separator()
            progress(0.0, "loading audio")
            t0 = time.perf_counter()  # the model may just have loaded: not part of this job's engine time
            if hasattr(sep, "prepare"):
                audio = sep.load(job.source)
                audio, enc, tr, kit = sep.prepare(audio, progress=stage.sub(0.0, 0.4))
                gains, model = enc.track_gains, getattr(sep, "model_name", "")
                # the stems go to disk block by block, never all in memory: the result has none
                analysis = Analysis(tr, kit, None, gains, getattr(enc, "kit_embedding", None), model,  # type: ignore[arg-type]
                                    audio)
                job.engine_s = time.perf_counter() - t0
                self._send_hits(job, tr)
                blocks_progress = stage.sub(0.4, 0.95)
                blocks = sep.iter_blocks(audio, tr, kit, progress=blocks_progress)
                classes, rate, channels = tuple(sep.classes), sep.sample_rate, audio.channels
            else:
                analysis = sep.analyze(job.source, progress=stage.sub(0.0, 0.8))
                tr, kit = analysis.transcription, analysis.kit
                gains, model, audio = analysis.track_gains, analysis.model, analysis.audio
                job.engine_s = time.perf_counter() - t0
                self._send_hits(job, tr)
                blocks = [(0, analysis.stems.audio, analysis.stems.residual)]
                classes, rate, channels = analysis.stems.classes, analysis.stems.sample_rate, analysis.stems.residual.shape[0]
                blocks_progress = stage.sub(0.8, 0.95)
        job_dir = self._write_outputs(job, tr, kit, blocks if self.write_stems else None, classes, rate,
                                      channels, blocks_progress)
        with self._lock:
            source = job.source if isinstance(job.source, Path) else None
            self._results[job.id] = _Result(tr, kit, job_dir, job.engine_s, gains, model,
                                            (source, audio.sample_rate, audio.channels, audio.n_frames))
            while len(self._results) > self._keep_results:
                self._results.popitem(last=False)
        if self.write_stems:
            self._send(job.reply, "/idm/stems", job.id, str(job_dir))
        self._send(job.reply, "/idm/midi", job.id, str(job_dir / "transcription.mid"))
        stage(1.0, "done")
        self._send(job.reply, "/idm/done", job.id)
        return replace(analysis, extra={**analysis.extra, "out_dir": job_dir})

    def _send_hits(self, job: _Job, tr: Transcription) -> None:
        hits = sorted((h.time_s, c, h.velocity) for c in tr.classes for h in tr.hits[c])
        for k, (t, c, v) in enumerate(hits):
            self._send(job.reply, "/idm/hit", job.id, c, float(t), float(v))
            if isinstance(job.reply, _UdpReply) and k % 64 == 63:
                time.sleep(0.0005)  # pace bursts so a client's receive buffer keeps up

    def _write_outputs(self, job: _Job, tr: Transcription, kit: Kit | None, blocks, classes, rate: int,
                       channels: int, progress) -> Path:
        """Write stems (streamed), residual, onsets.json, transcription.mid and kit/ into a new folder."""
        import json

        from pedalboard.io import AudioFile

        from .audio import save_audio
        from .fsutil import atomic_write_text
        from .midi import write_midi

        self.out_dir.mkdir(parents=True, exist_ok=True)
        final = self.out_dir / job.name
        k = 2
        while final.exists():
            final = self.out_dir / f"{job.name}-{k}"
            k += 1
        work = Path(tempfile.mkdtemp(prefix=".idm-osc-partial-", dir=self.out_dir))
        try:
            if blocks is not None:
                writers = [AudioFile(str(work / f"{c}.wav"), "w", float(rate), channels, bit_depth=24)
                           for c in list(classes) + ["residual"]]
                try:
                    for _start, stems, residual in blocks:
                        if job.cancel.is_set() or self._stopping.is_set():
                            raise Cancelled(f"analysis {job.id} cancelled")
                        for w, block in zip(writers, list(stems) + [residual]):
                            w.write(np.ascontiguousarray(block, dtype=np.float32))
                finally:
                    for w in writers:
                        w.close()
            atomic_write_text(work / "onsets.json", json.dumps(tr.to_dict(), indent=1))
            write_midi(tr, work / "transcription.mid", drum_map=self.drum_map)
            if kit is not None:
                for c, shot in zip(kit.classes, kit.one_shots):
                    save_audio(work / "kit" / f"{c}.wav", shot, kit.sample_rate, bit_depth=24)
            os.replace(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return final

    def _janitor(self) -> None:
        while not self._stopping.wait(min(0.5, self.stream_timeout_s / 4)):
            now = time.monotonic()
            with self._lock:
                stale = [s for s in self._streams.values() if now - s.last_seen > self.stream_timeout_s]
                for s in stale:
                    del self._streams[s.id]
                gone = [k for k, r in self._clients.items() if r.protocol == "udp" and not r.active
                        and now - r.last_seen_mono > self.client_timeout_s]
                for k in gone:
                    del self._clients[k]
            for s in stale:
                self._error(s.reply, s.id, f"stream {s.id}: no data for {self.stream_timeout_s:g} s "
                                           f"(after {s.next_seq} chunks); the stream was dropped")


def serve(separator: Any = None, **kwargs: Any) -> None:
    """Run an :class:`OscServer` until Ctrl-C (keyword arguments as for :class:`OscServer`)."""
    server = OscServer(separator, **kwargs).start()
    server.wait()
    server.stop()
