"""The OSC bridge server: lifecycle, clients, dispatch."""
from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import IdmError, OscError
from .access import AccessPolicy, check_bind, load_token
from .clients import ClientBook
from .handlers import ADDRESSES, OPEN_ADDRESSES, AddressHandlers
from .jobs import JobQueue
from .state import (CLIENT_TIMEOUT_S, DEFAULT_HOST, DEFAULT_PORT, TCP_MAX_FRAME,
                    UDP_RCVBUF, AnalyzeFn, ResultFn, _ClientRecord, _Job, _Result, _Stream)
from .transport import TCP_MAX_OUTBUF, _Reply, _TcpReply, _TcpTransport, _UdpTransport
from .wire import (MAX_BUNDLE_DEPTH, MAX_MESSAGES_PER_PACKET, OscMessage, WireError, _ArgError, build_message,
                   parse_packet)

log = logging.getLogger("idm_host.osc")


# ------------------------------------------------------------------------------------------ server
class OscServer(AddressHandlers, JobQueue, ClientBook):
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
        allow_remote: bind a host other than loopback (without it such a host is refused).
        allow_read: folders clients on other machines may read (``/idm/open``, preset files); they
            may always stream audio, and write only inside ``out_dir``.
        confine_local: give clients on this machine the same rules as remote ones.
        token: a shared secret every client must present first (``/idm/auth s:token``); ``None``
            for none. ``token_file``: read it from the first line of this file instead.
        max_connections, max_connections_per_host: TCP connections at once, in all and from one
            host; at a limit a connection stalled inside a frame is closed to make room.
        tcp_read_timeout_s: a TCP connection silent this long inside a frame is closed.
        tcp_frame_timeout_s: a TCP frame must arrive whole within this long.
        tcp_max_buffered: bytes of incomplete TCP frames held for all connections together.
        tcp_max_unsent: bytes of replies one TCP client may leave unread before it is disconnected.
        max_messages_per_packet, max_bundle_depth: the most OSC messages one packet may carry and
            how deep its bundles may nest; a packet beyond either is refused whole.

    Raises:
        OscError: an argument is invalid, or ``host`` is not loopback and ``allow_remote`` is False.
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
        max_connections: int = 32,
        max_connections_per_host: int = 16,
        tcp_read_timeout_s: float = 10.0,
        tcp_frame_timeout_s: float = 60.0,
        tcp_max_buffered: int = 256 * 1024 * 1024,
        tcp_max_unsent: int = TCP_MAX_OUTBUF,
        max_messages_per_packet: int = MAX_MESSAGES_PER_PACKET,
        max_bundle_depth: int = MAX_BUNDLE_DEPTH,
        write_stems: bool = True,
        drum_map: str = "gm",
        udp_rcvbuf: int = UDP_RCVBUF,
        tcp_max_frame: int = TCP_MAX_FRAME,
        keep_results: int = 16,
        on_result: ResultFn | None = None,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
        allow_remote: bool = False,
        allow_read: "Iterable[str | os.PathLike]" = (),
        token: str | None = None,
        token_file: "str | os.PathLike | None" = None,
        confine_local: bool = False,
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
        if not (max_connections >= 1 and max_connections_per_host >= 1 and tcp_read_timeout_s > 0
                and tcp_frame_timeout_s > 0 and tcp_max_buffered > 0 and max_messages_per_packet >= 1
                and max_bundle_depth >= 1):
            raise OscError("connection and packet limits must be positive")
        check_bind(host, allow_remote)
        self._separator_spec = separator
        self._separator = None
        self._analyze_fn = analyze
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        self.reply_port = reply_port
        self.reply_host = reply_host
        self.out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "idm-host-osc"
        self.allow_remote = bool(allow_remote)
        self.access = AccessPolicy(allow_read, self.out_dir, load_token(token, token_file), confine_local)
        self.max_stream_s = float(max_stream_s)
        self.max_total_bytes = int(max_total_mb * 1024 * 1024)
        self.max_streams = int(max_streams)
        self.stream_timeout_s = float(stream_timeout_s)
        self.max_connections = int(max_connections)
        self.max_connections_per_host = int(max_connections_per_host)
        self.tcp_read_timeout_s = float(tcp_read_timeout_s)
        self.tcp_frame_timeout_s = float(tcp_frame_timeout_s)
        self.tcp_max_buffered = int(tcp_max_buffered)
        self.tcp_max_unsent = int(tcp_max_unsent)
        self.max_messages_per_packet = int(max_messages_per_packet)
        self.max_bundle_depth = int(max_bundle_depth)
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
        self._udp: _UdpTransport | None = None
        self._tcp: _TcpTransport | None = None
        #: Partial output folders being written (removed by :meth:`stop` if a job outlives it).
        self._partials: set[Path] = set()
        #: Counters, for tests and benchmarks: packets read, malformed ones, messages, errors sent
        #: and rate-limited, jobs done and failed, TCP connections refused, timed out and evicted.
        self.stats: dict[str, int] = {"packets": 0, "malformed": 0, "messages": 0, "errors": 0,
                                      "errors_dropped": 0, "jobs_done": 0, "jobs_failed": 0,
                                      "tcp_refused": 0, "tcp_timeouts": 0, "tcp_evicted": 0}

    # -------------------------------------------------------------------------------- lifecycle
    def start(self) -> "OscServer":
        """Bind the sockets and start serving in background threads.

        Raises:
            OscError: a port is taken or the host cannot be bound.
        """
        # the decoders load now, not in the first /idm/open's handler: a first import of pedalboard
        # takes seconds (and some 200 MiB), which would stall the transport thread that much
        import pedalboard.io  # noqa: F401

        try:
            self._udp = _UdpTransport(self, self.host, self.port)
        except OSError as exc:
            raise OscError(f"cannot listen on UDP {self.host}:{self.port} ({exc.strerror or exc}); "
                           "choose another --port") from exc
        if self.tcp_port is not None:
            try:
                self._tcp = _TcpTransport(self, self.host, self.tcp_port)
            except OSError as exc:
                self._udp.close()
                raise OscError(f"cannot listen on TCP {self.host}:{self.tcp_port} ({exc.strerror or exc}); "
                               "choose another --tcp-port") from exc
        self._spawn(self._udp.serve, "idm-osc-udp")
        if self._tcp is not None:
            self._spawn(self._tcp.serve, "idm-osc-tcp")
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
    def running(self) -> bool:
        """Started and not stopped."""
        return self._udp is not None and not self._stopping.is_set()

    @property
    def threads_alive(self) -> bool:
        """Whether any of the server's threads still runs (after :meth:`stop`: a job that did not
        notice its cancellation in time, e.g. inside a long native call)."""
        return any(t.is_alive() for t in self._threads)

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
        """Stop serving: running jobs are cancelled, open streams dropped, sockets closed.

        The transports stop within about 0.1 s whatever they are doing; a job is given up to
        ``timeout_s`` to notice its cancellation, and if it is still running then, the partial
        output folder it was writing is removed (the worker is a daemon thread: it cannot outlive
        the process).
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
            self._streams.clear()
        if self._tcp is not None:
            self._tcp.close()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._udp is not None:
            self._udp.close()
        with self._lock:
            partials = list(self._partials)
        for p in partials:
            shutil.rmtree(p, ignore_errors=True)
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
    def _send(self, reply: _Reply, address: str, *args: Any) -> bool:
        return reply.send(build_message(address, *args))

    def _new_id(self) -> int:
        with self._lock:
            while self._next_id in self._jobs or self._next_id in self._streams or self._next_id in self._results:
                self._next_id += 1
            i = self._next_id
            self._next_id += 1
            return i

    # -------------------------------------------------------------------------------- dispatch
    def _handle_packet(self, data: bytes, reply: _Reply) -> None:
        """Parse one packet (a UDP datagram or a TCP frame) and handle its messages in order.

        The packet is parsed by :func:`~idm_host.osc.wire.parse_packet`, never by python-osc (whose
        bundle parser loops forever on a negative element size): the work is linear in its length
        and bounded in messages, and a malformed packet is refused whole with one error.
        """
        with self._lock:
            self.stats["packets"] += 1
            client = self._client(reply)
            if client is not None:
                client.touch()
        try:
            messages = parse_packet(data, max_depth=self.max_bundle_depth,
                                    max_messages=self.max_messages_per_packet)
        except WireError as exc:
            with self._lock:
                self.stats["malformed"] += 1
            self._error(reply, 0, f"malformed OSC packet ({len(data)} bytes): {exc}")
            return
        for msg in messages:
            if self._stopping.is_set():
                return
            with self._lock:
                self.stats["messages"] += 1
                if client is not None:
                    client.messages += 1
            try:
                self._handle_message(msg, reply, client)
            except (_ArgError, IdmError) as exc:
                self._error(reply, self._first_int(msg), str(exc))
            except Exception as exc:  # a bug must not kill the server
                log.exception("error handling %s", msg.address)
                self._error(reply, self._first_int(msg), f"internal error handling {msg.address[:64]}: "
                                                         f"{type(exc).__name__}")

    @staticmethod
    def _first_int(msg: OscMessage) -> int:
        p = msg.params[0] if msg.params else None
        return p if isinstance(p, int) and not isinstance(p, bool) and -(2**31) <= p < 2**31 else 0

    def _handle_message(self, msg: OscMessage, reply: _Reply, client: _ClientRecord | None = None) -> None:
        address = msg.address
        name = ADDRESSES.get(address)
        if name is None:
            known = ", ".join(sorted(ADDRESSES))
            raise _ArgError(f"unknown address {address[:64]!r}; this server answers {known}")
        if self.access.token is not None and address not in OPEN_ADDRESSES and not (client and client.authorized):
            raise OscError(f"{address}: this server needs its token first: send /idm/auth s:token (from the "
                           "same address and port, or earlier in the same bundle)")
        getattr(self, name)(msg, reply)

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
