"""What the OSC server's parts share: the attributes :class:`~idm_host.osc.server.OscServer` sets and the
methods each part offers the others, declared once so the type checker sees them in every part.

:class:`ServerCore` is empty at run time (everything is under ``TYPE_CHECKING``): the job queue
(:mod:`.jobs`), the address handlers (:mod:`.handlers`, :mod:`.timeline`), the clients (:mod:`.clients`) and the server (:mod:`.server`)
each implement their share, and ``OscServer`` combines them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import queue
    import threading
    from collections import OrderedDict
    from pathlib import Path
    from typing import Any, Callable

    from ..types import Audio, Transcription
    from .access import AccessPolicy
    from .state import AnalyzeFn, ResultFn, _ClientRecord, _Job, _Result, _Stream
    from .timeline import Timeline
    from .transport import _Reply, _TcpReply, _UdpTransport


class ServerCore:
    """The shared state and cross-part methods of the OSC server (declarations only)."""

    if TYPE_CHECKING:
        # set by OscServer.__init__
        out_dir: Path
        access: AccessPolicy
        max_stream_s: float
        max_total_bytes: int
        max_streams: int
        write_stems: bool
        drum_map: str
        stats: dict[str, int]
        _analyze_fn: AnalyzeFn | None
        _keep_results: int
        _result_listeners: list[ResultFn]
        _lock: threading.RLock
        _streams: dict[int, _Stream]
        _jobs: dict[int, _Job]
        _results: OrderedDict[int, _Result]
        _queue: queue.Queue[_Job | None]
        _stopping: threading.Event
        _partials: set[Path]
        reply_port: int | None
        reply_host: str | None
        client_timeout_s: float
        _udp: _UdpTransport | None
        _clients: dict[tuple[str, str, int], _ClientRecord]
        _connections: set[_TcpReply]
        _error_budget: dict[str, tuple[float, float]]

        # the server (server.py)
        def _send(self, reply: _Reply, address: str, *args: Any) -> bool: ...
        def _new_id(self) -> int: ...

        # the clients (clients.py)
        def _client(self, reply: _Reply) -> _ClientRecord | None: ...
        def _owner(self, reply: _Reply) -> tuple: ...
        def _is_remote(self, reply: _Reply) -> bool: ...
        def _error(self, reply: _Reply, id_: int, message: str) -> None: ...

        # the job queue (jobs.py)
        def _submit(self, job: _Job, announce_id: int | None = None) -> None: ...
        def _progress_fn(self, job: _Job) -> Callable[[float, str], None]: ...

        # the timeline handlers (timeline.py)
        def _keep_take_audio(self, id_: int, audio: Audio) -> None: ...
        def _send_frame_hits(self, reply: _Reply, id_: int, tr: Transcription, rate: int,
                             timeline: Timeline | None) -> None: ...
