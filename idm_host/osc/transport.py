"""The OSC bridge's transports: UDP datagrams and TCP connections (OSC 1.0 framing), and where
replies go.

UDP: one thread reads datagrams (up to 64 KiB) and hands each to the server. TCP: one thread runs a
selector over every connection, with non-blocking sockets: a frame that arrives in pieces waits in
its connection's buffer while other connections are served, so a slow or stalled client never
delays another. Each connection has a read timeout inside a frame, a frame size cap and a cap on
unsent replies; the server caps connections in total and per host, and makes room for a new client
by closing a stalled one. Replies to a TCP client are queued on its connection and written by the
selector thread when the socket takes them, so no thread ever blocks on a client that does not read.
"""
from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from .state import UDP_MAX_PACKET
from .wire import build_message

if TYPE_CHECKING:
    from .server import OscServer

log = logging.getLogger("idm_host.osc")

#: Bytes read from a TCP socket at a time.
TCP_READ_CHUNK = 256 * 1024
#: Unsent reply bytes one TCP client may have queued; a client that stops reading is disconnected.
TCP_MAX_OUTBUF = 8 * 1024 * 1024
#: The kernel send buffer of each TCP connection.
TCP_SNDBUF = 256 * 1024
#: A connection stalled inside a frame for this long (s) may be closed to make room for a new one.
TCP_STALL_EVICT_S = 1.0
#: An idle connection (no open stream, no running job) silent this long (s) may make room likewise.
TCP_IDLE_EVICT_S = 60.0


def bind_address(host: str, port: int, kind: int) -> tuple[int, tuple]:
    """``(family, sockaddr)`` to bind ``host:port`` (IPv4 or IPv6) for a socket of ``kind``."""
    infos = socket.getaddrinfo(host, port, 0, kind, 0, socket.AI_PASSIVE)
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, sockaddr


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

    @property
    def host(self) -> str:
        """The host the request came from ("?" when unknown)."""
        return self.client_key[1] if self.client_key else "?"


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
    """One TCP connection: its receive buffer, its queue of unsent replies and its timing.

    :meth:`send` may be called from any thread; it never blocks. The selector thread owns reading.
    """

    def __init__(self, transport: "_TcpTransport | None", sock: socket.socket, address: tuple[str, int],
                 redirect: _Reply | None = None):
        self._transport = transport
        self._conn = sock
        self._lock = threading.Lock()
        self._alive = True
        self.address = (str(address[0]), int(address[1]))
        self.peer = f"tcp:{address[0]}:{address[1]}"
        self.client_key = ("tcp", str(address[0]), int(address[1]))
        #: With a server-wide reply port, replies to this connection's requests go there instead.
        self.redirect = redirect
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        now = time.monotonic()
        self.connected = self.last_rx = now
        #: When the frame now in ``inbuf`` began arriving (None between frames).
        self.frame_started: float | None = None

    @property
    def alive(self) -> bool:
        return self._alive

    def fileno(self) -> int:
        return self._conn.fileno()

    def send(self, data: bytes) -> bool:
        if self.redirect is not None:
            return self.redirect.send(data)
        frame = struct.pack(">I", len(data)) + data
        with self._lock:
            if not self._alive:
                return False
            if not self.outbuf:
                try:
                    n = self._conn.send(frame)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as exc:
                    self._alive = False
                    log.debug("reply to %s failed: %s", self.peer, exc)
                    return False
                frame = frame[n:]
                if not frame:
                    return True
            limit = self._transport.osc.tcp_max_unsent if self._transport is not None else TCP_MAX_OUTBUF
            if len(self.outbuf) + len(frame) > limit:
                self._alive = False  # it stopped reading: the selector thread closes it
                log.warning("TCP client %s left %d bytes of replies unread; disconnecting it",
                            self.peer, len(self.outbuf))
                self.outbuf.clear()
            else:
                self.outbuf += frame
        if self._transport is not None:
            self._transport.wake(self)
        return self._alive

    def flush(self) -> bool:
        """Write what the socket takes of the queued replies (selector thread); False once dead."""
        with self._lock:
            if not self._alive:
                return False
            while self.outbuf:
                try:
                    n = self._conn.send(self.outbuf)
                except (BlockingIOError, InterruptedError):
                    return True
                except OSError:
                    self._alive = False
                    return False
                del self.outbuf[:n]
            return True

    @property
    def wants_write(self) -> bool:
        with self._lock:
            return bool(self.outbuf)

    def close(self) -> None:
        with self._lock:
            self._alive = False
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._conn.close()
        except OSError:
            pass


def _progress(buf: bytearray) -> str:
    """How much of the frame in ``buf`` arrived, for an error message."""
    if len(buf) < 4:
        return f"{len(buf)} of its 4 header bytes arrived"
    (n,) = struct.unpack_from(">I", buf, 0)
    return f"{len(buf) - 4} of its {n} bytes arrived"


# ------------------------------------------------------------------------------------------ UDP
class _UdpTransport:
    """A UDP socket read by one thread, with the datagram limit raised to 64 KiB (socketserver's
    default of 8,192 bytes drops more) and a large receive buffer."""

    def __init__(self, osc: "OscServer", host: str, port: int):
        self.osc = osc
        family, sockaddr = bind_address(host, port, socket.SOCK_DGRAM)
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._raise_rcvbuf()
            self.socket.bind(sockaddr)
        except OSError:
            self.socket.close()
            raise
        self.socket.settimeout(0.1)  # how often the reader looks at the stop flag
        self.server_address = self.socket.getsockname()[:2]

    def _raise_rcvbuf(self) -> None:
        # SO_RCVBUFFORCE passes the system cap (net.core.rmem_max) where permitted; else the capped size
        size = self.osc.udp_rcvbuf
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            if force is None:
                raise PermissionError
            self.socket.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            except OSError as exc:  # pragma: no cover - platform limits
                log.warning("could not raise the UDP receive buffer: %s", exc)

    def serve(self) -> None:
        osc = self.osc
        while not osc._stopping.is_set():
            try:
                data, address = self.socket.recvfrom(UDP_MAX_PACKET)
            except (TimeoutError, socket.timeout, InterruptedError):
                continue
            except OSError:
                if osc._stopping.is_set() or self.socket.fileno() < 0:
                    return
                continue  # e.g. an ICMP error reported on this socket: keep reading
            try:
                osc._handle_packet(data, osc._udp_reply(self.socket, address[:2]))
            except Exception:  # _handle_packet catches everything; this is the last line of defence
                log.exception("error serving UDP packet from %s", address)

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------ TCP
class _TcpTransport:
    """Every TCP connection, served by one selector thread (see the module docstring)."""

    def __init__(self, osc: "OscServer", host: str, port: int):
        self.osc = osc
        family, sockaddr = bind_address(host, port, socket.SOCK_STREAM)
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(sockaddr)
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.socket, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._dirty: set[_TcpReply] = set()
        #: Open connections (owned by the selector thread).
        self.conns: dict[int, _TcpReply] = {}
        self._last_check = 0.0

    # ------------------------------------------------------------------ called from other threads
    def wake(self, conn: _TcpReply | None = None) -> None:
        if conn is not None:
            with self._lock:
                self._dirty.add(conn)
        try:
            self._wake_w.send(b"\x00")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are closing

    def close(self) -> None:
        """Stop (the selector thread closes every connection on its way out)."""
        self.wake()

    # ------------------------------------------------------------------ the selector thread
    def serve(self) -> None:
        osc = self.osc
        try:
            while not osc._stopping.is_set():
                for key, events in self._sel.select(timeout=0.1):
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                    else:
                        conn: _TcpReply = key.data
                        if events & selectors.EVENT_READ and conn.fileno() in self.conns:
                            self._read(conn)
                        if events & selectors.EVENT_WRITE and conn.fileno() in self.conns:
                            if not conn.flush():
                                self._close(conn)
                            else:
                                self._update_events(conn)
                self._service_dirty()
                now = time.monotonic()
                if now - self._last_check >= 0.1:
                    self._last_check = now
                    self._check_timeouts(now)
        finally:
            for conn in list(self.conns.values()):
                self._close(conn)
            self._sel.close()
            for s in (self.socket, self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass

    def _service_dirty(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            if conn.fileno() < 0 or conn.fileno() not in self.conns or self.conns[conn.fileno()] is not conn:
                continue
            if not conn.alive:
                self._close(conn)
            else:
                self._update_events(conn)

    def _update_events(self, conn: _TcpReply) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.wants_write else 0)
        try:
            self._sel.modify(conn._conn, events, conn)
        except (KeyError, ValueError, OSError):
            pass

    def _accept(self) -> None:
        osc = self.osc
        for _ in range(64):  # accept what is waiting, a bounded number at a time
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: refuse, keep serving
                log.warning("TCP accept failed: %s", exc)
                return
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # a fixed send buffer: what a client leaves unread then waits in our queue, which is capped
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SNDBUF)
            except OSError:
                pass
            conn = _TcpReply(self, sock, address[:2], osc._tcp_redirect(address[:2]))
            refusal = self._admit(conn)
            if refusal is None and not osc._add_connection(conn):
                refusal = "the server is stopping"
            if refusal is not None:
                with osc._lock:
                    osc.stats["tcp_refused"] += 1
                conn.redirect = None  # the refusal goes on the connection itself
                conn.send(build_message("/idm/error", 0, refusal))
                conn.close()
                continue
            self.conns[conn.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _admit(self, conn: _TcpReply) -> str | None:
        """None to admit ``conn`` (closing a stalled connection to make room if needed), or why not."""
        osc = self.osc
        host = conn.address[0]
        same_host = [c for c in self.conns.values() if c.address[0] == host]
        if len(self.conns) < osc.max_connections and len(same_host) < osc.max_connections_per_host:
            return None
        per_host = len(same_host) >= osc.max_connections_per_host
        victim = self._evictable(same_host if per_host else list(self.conns.values()))
        if victim is not None:
            with osc._lock:
                osc.stats["tcp_evicted"] += 1
            self._close(victim, "connection closed to make room for another client: it stalled "
                                "inside a frame or sat idle")
            return None
        limit = (f"{osc.max_connections_per_host} per host" if per_host else f"{osc.max_connections} in all")
        return f"too many TCP connections (limit {limit}); try again later"

    def _evictable(self, pool: list[_TcpReply]) -> _TcpReply | None:
        now = time.monotonic()
        stalled = [c for c in pool if c.frame_started is not None and now - c.last_rx >= TCP_STALL_EVICT_S]
        if stalled:
            return min(stalled, key=lambda c: c.last_rx)
        idle = [c for c in pool if c.frame_started is None and now - c.last_rx >= TCP_IDLE_EVICT_S
                and not self.osc._has_work(c)]
        return min(idle, key=lambda c: c.last_rx) if idle else None

    def _read(self, conn: _TcpReply) -> None:
        osc = self.osc
        try:
            data = conn._conn.recv(TCP_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        now = time.monotonic()
        conn.last_rx = now
        buf = conn.inbuf
        buf += data
        while len(buf) >= 4:
            (n,) = struct.unpack_from(">I", buf, 0)
            if n > osc.tcp_max_frame:
                self._close(conn, f"TCP frame of {n} bytes exceeds the limit of {osc.tcp_max_frame}; "
                                  "send audio in smaller chunks. Closing the connection")
                return
            if len(buf) < 4 + n:
                break
            frame = bytes(buf[4:4 + n])
            del buf[:4 + n]
            conn.frame_started = None
            if n:  # a zero-length frame is legal and ignored
                osc._handle_packet(frame, conn)
            if not conn.alive or osc._stopping.is_set():
                break
        if buf and conn.frame_started is None:
            conn.frame_started = now
        if len(buf) > (1 << 20):
            self._check_buffered()

    def _check_buffered(self) -> None:
        """Keep the bytes of incomplete frames within the server's limit: close the largest."""
        osc = self.osc
        while True:
            total = sum(len(c.inbuf) for c in self.conns.values())
            if total <= osc.tcp_max_buffered or not self.conns:
                return
            big = max(self.conns.values(), key=lambda c: len(c.inbuf))
            self._close(big, f"the server holds {total} bytes of incomplete TCP frames (limit "
                             f"{osc.tcp_max_buffered}); closing the connection with the largest")

    def _check_timeouts(self, now: float) -> None:
        osc = self.osc
        for conn in list(self.conns.values()):
            if not conn.alive:
                self._close(conn)
            elif conn.frame_started is not None and now - conn.last_rx > osc.tcp_read_timeout_s:
                with osc._lock:
                    osc.stats["tcp_timeouts"] += 1
                self._close(conn, f"no data for {osc.tcp_read_timeout_s:g} s inside a TCP frame "
                                  f"({_progress(conn.inbuf)}); closing the connection")
            elif conn.frame_started is not None and now - conn.frame_started > osc.tcp_frame_timeout_s:
                with osc._lock:
                    osc.stats["tcp_timeouts"] += 1
                self._close(conn, f"a TCP frame took longer than {osc.tcp_frame_timeout_s:g} s to arrive; "
                                  "closing the connection")

    def _close(self, conn: _TcpReply, reason: str | None = None) -> None:
        if self.conns.get(conn.fileno() if conn.fileno() >= 0 else -1) is conn:
            del self.conns[conn.fileno()]
        else:
            for k, c in list(self.conns.items()):
                if c is conn:
                    del self.conns[k]
        try:
            self._sel.unregister(conn._conn)
        except (KeyError, ValueError, OSError):
            pass
        if reason is not None and conn.alive:
            log.info("TCP client %s: %s", conn.peer, reason)
            redirect, conn.redirect = conn.redirect, None
            conn.send(build_message("/idm/error", 0, reason))
            conn.flush()
            conn.redirect = redirect
        conn.inbuf = bytearray()
        conn.close()
        self.osc._remove_connection(conn)
