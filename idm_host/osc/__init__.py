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
``/idm/ping`` (optional ``i:tag``)              ``/idm/pong s:version`` (and the ``tag``)
``/idm/auth s:token``                           ``/idm/auth/ok`` (only servers with a token need it)
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

Who may do what (:mod:`idm_host.osc.access`): binding beyond loopback needs ``allow_remote``;
clients on other machines may stream audio, read files only inside ``allow_read`` folders and write
only inside ``out_dir``; with a ``token`` every client sends ``/idm/auth`` first. Jobs, streams and
results belong to the client that started them. Packets are parsed by :mod:`idm_host.osc.wire`
(bounded work, never python-osc's parser); see docs/RELIABILITY.md.

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

from .server import OscServer, serve
from .state import (CLIENT_TIMEOUT_S, DEFAULT_HOST, DEFAULT_PORT, ERRORS_PER_S, MAX_CHANNELS, MAX_CLIENT_JOBS,
                    MAX_CLIENTS, SAMPLE_RATES, TCP_MAX_FRAME, UDP_MAX_PACKET, UDP_RCVBUF, AnalyzeFn, OscClient,
                    ResultFn)
from .wire import build_message

__all__ = ["OscServer", "OscClient", "serve", "build_message", "AnalyzeFn", "ResultFn", "DEFAULT_HOST",
           "DEFAULT_PORT", "CLIENT_TIMEOUT_S", "ERRORS_PER_S", "MAX_CHANNELS", "MAX_CLIENT_JOBS", "MAX_CLIENTS",
           "SAMPLE_RATES", "TCP_MAX_FRAME", "UDP_MAX_PACKET", "UDP_RCVBUF"]
