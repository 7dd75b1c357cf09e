"""State the OSC bridge keeps: limits, the clients it knows, open streams, jobs and results."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import IdmError
from ..types import Analysis, Audio, Kit, Transcription

if TYPE_CHECKING:
    from .transport import _Reply

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
        #: It presented the server's token (``/idm/auth``).
        self.authorized = False

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol,) + self.address

    def touch(self) -> None:
        self.last_seen = time.time()
        self.last_seen_mono = time.monotonic()

    def snapshot(self) -> OscClient:
        return OscClient(self.address, self.protocol, self.first_seen, self.last_seen, self.messages,
                         tuple(self.jobs), tuple(sorted(set(self.active.values()))))


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
    #: Who may add to, end or cancel it (see ``OscServer._owner``).
    owner: tuple = ()
    #: Where it sits on the client's timeline (a plug-in's stream; see ``osc.timeline``).
    timeline: Any = None

    @property
    def n_bytes(self) -> int:
        """Bytes declared, or for an open-ended stream (frames 0) bytes received so far."""
        return self.frames * self.channels * 4 if self.frames else len(self.buf)


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
    #: Who may cancel it and use its result (see ``OscServer._owner``).
    owner: tuple = ()
    #: The stream's :class:`~idm_host.osc.timeline.Timeline`, when it had one.
    timeline: Any = None
    #: The engine's masking mode for the stems (``/idm/open ... s:masking``; see idm_host.masking).
    masking: str = "auto"


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
    #: Who may export, list or render it (see ``OscServer._owner``).
    owner: tuple = ()
    #: The stream's :class:`~idm_host.osc.timeline.Timeline`, when it had one (``/idm/hits``).
    timeline: Any = None

