"""The OSC bridge's transports: UDP datagrams and TCP connections (OSC 1.0 framing), and where
replies go."""
from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
from typing import TYPE_CHECKING

from .state import UDP_MAX_PACKET
from .wire import build_message

if TYPE_CHECKING:
    from .server import OscServer

log = logging.getLogger("idm_host.osc")


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

