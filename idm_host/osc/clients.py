"""The OSC server's book of clients: who is talking to it, over which transport, and how many
errors each host may still be sent.

A client is keyed by ``(protocol, host, port)``: a TCP client lives as long as its connection, a
UDP client until it has been silent for ``client_timeout_s`` (the server's janitor drops it) or
until :data:`~idm_host.osc.state.MAX_CLIENTS` others push the oldest UDP one out. Error replies are
rate-limited per host (a token bucket of :data:`~idm_host.osc.state.ERRORS_PER_S`), so a client
cannot get more by sending from many ports. :class:`ClientBook` is a part of
:class:`~idm_host.osc.server.OscServer` (see :mod:`.core`).
"""
from __future__ import annotations

import logging
import socket
import time

from .core import ServerCore
from .state import ERRORS_PER_S, MAX_CLIENTS, OscClient, _ClientRecord
from .transport import _Reply, _TcpReply, _UdpReply

log = logging.getLogger("idm_host.osc")


class ClientBook(ServerCore):
    """The server's clients, connections and per-host error budget."""

    @property
    def clients(self) -> tuple[OscClient, ...]:
        """The clients the server knows now, oldest first: every TCP client with an open connection
        and every UDP client heard from within ``client_timeout_s``. Immutable snapshots."""
        with self._lock:
            return tuple(r.snapshot() for r in sorted(self._clients.values(), key=lambda r: r.first_seen))

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

    def _owner(self, reply: _Reply) -> tuple:
        """Who owns the jobs and streams ``reply``'s client starts: its address and protocol (a TCP
        client is its connection), or with a server-wide ``reply_port``, where every reply of that
        host goes anyway, its host."""
        if self.reply_port is not None:
            return ("host", reply.host)
        return reply.client_key or ("?",)

    def _is_remote(self, reply: _Reply) -> bool:
        return self.access.is_remote(reply.host)

    def _has_work(self, reply: _Reply) -> bool:
        """Whether ``reply``'s client has an open stream or a queued or running job."""
        with self._lock:
            if any(s.reply is reply for s in self._streams.values()):
                return True
            rec = self._clients.get(reply.client_key) if reply.client_key else None
            return bool(rec is not None and rec.active)

    def _tcp_redirect(self, address: tuple[str, int]) -> _Reply | None:
        if self.reply_port is None or self._udp is None:
            return None
        return _UdpReply(self._udp.socket, (self.reply_host or address[0], self.reply_port))

    def _add_connection(self, reply: _TcpReply) -> bool:
        with self._lock:
            if self._stopping.is_set():
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

    def _error(self, reply: _Reply, id_: int, message: str) -> None:
        # the budget is per host, not per port: a client cannot get more by sending from many ports
        host = reply.host
        with self._lock:
            self.stats["errors"] += 1
            now = time.monotonic()
            tokens, last = self._error_budget.get(host, (float(ERRORS_PER_S), now))
            tokens = min(float(ERRORS_PER_S), tokens + (now - last) * ERRORS_PER_S)
            if tokens < 1.0:
                self.stats["errors_dropped"] += 1
                self._error_budget[host] = (tokens, now)
                return
            self._error_budget[host] = (tokens - 1.0, now)
            if len(self._error_budget) > 1024:
                self._error_budget.clear()
        log.info("OSC error to %s (id %s): %s", reply.peer, id_, message)
        self._send(reply, "/idm/error", int(id_), message)
