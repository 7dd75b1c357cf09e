"""Streams keyed to a DAW's timeline, for plug-ins such as IdmBridge (plugin/).

A plug-in does not know how long the take it streams will be, and its hits must land on the
host's sample frames, not on float32 seconds (exact only up to 256 s at 44.1/48 kHz). So:

- ``/idm/audio/begin i:id i:rate i:channels i:frames h:timeline_frame [s:key]``: ``frames`` 0 opens
  an open-ended stream (it lasts until ``/idm/audio/end``, still bounded by ``max_stream_s`` and the
  server's memory limit); ``timeline_frame`` is the host's frame of the first sample (int32 or
  int64); ``key`` is a secret of the client's choosing that lets it ask for the hits again from a
  new connection.
- Such a stream's analysis replies, after the ``/idm/hit`` list, ``/idm/hit/frame i:id s:class
  h:frame f:velocity d:time_s i:midi_velocity`` for every hit in time order (``frame`` = timeline
  frame of the first sample + the hit's offset in frames at the stream's rate) and then
  ``/idm/hits/end i:id i:count``.
- ``/idm/hits i:id [s:key]`` asks for that list again (after a reconnect: give the key); it works
  for any finished analysis (``/idm/open`` ones count from frame 0 of the file).
- ``/idm/edit i:id s:key`` and ``/idm/edit/hits i:id s:key``: the edit round trip with idm-studio
  (:class:`EditHandlers`).
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OscError
from ..types import Transcription
from .core import ServerCore
from .wire import _args, _ArgError

BEGIN_USAGE = "i:id i:sample_rate i:channels i:frames [h:timeline_frame [s:key]] (frames 0 = until /idm/audio/end)"
#: Longest key accepted (it is compared, never stored on disk).
MAX_KEY_CHARS = 256


@dataclass(frozen=True)
class Timeline:
    """Where a stream sits on its client's timeline."""

    frame: int
    key: str = ""


def parse_begin(msg) -> tuple[int, int, int, int, Timeline | None]:
    """``/idm/audio/begin``'s arguments: id, rate, channels, frames (0 = open-ended), timeline."""
    n = len(msg.params)
    if n == 4:
        id_, rate, channels, frames = _args(msg, "iiii", BEGIN_USAGE)
        timeline = None
    elif n in (5, 6):
        parsed = _args(msg, "iiiii" + ("s" if n == 6 else ""), BEGIN_USAGE)
        id_, rate, channels, frames, start = parsed[:5]
        key = parsed[5] if n == 6 else ""
        if not 0 <= start < 2**62:
            raise _ArgError(f"/idm/audio/begin: timeline_frame {start} is out of range 0..2^62")
        if len(key) > MAX_KEY_CHARS:
            raise _ArgError(f"/idm/audio/begin: key is longer than {MAX_KEY_CHARS} characters")
        timeline = Timeline(int(start), key)
    else:
        raise _ArgError(f"/idm/audio/begin expects {BEGIN_USAGE} (4 to 6 arguments), got {n}")
    if frames < 0:
        raise OscError(f"stream {id_}: frames must be >= 0 (0 = until /idm/audio/end), got {frames}")
    return id_, rate, channels, frames, timeline


def frame_hits(tr: Transcription, rate: int, start_frame: int) -> list[tuple[int, str, float, float, int]]:
    """Every hit as ``(timeline frame, class, velocity, time_s, midi velocity)`` in time order."""
    from ..midi import to_midi_velocity

    hits = sorted((h.time_s, c, h.velocity) for c in tr.classes for h in tr.hits[c])
    return [(int(start_frame) + int(round(t * rate)), c, float(v), float(t), to_midi_velocity(v)) for t, c, v in hits]


def build_typed(address: str, spec: str, *args: Any) -> bytes:
    """One OSC message with explicit type tags (``h`` int64 and ``d`` double included)."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    if len(spec) != len(args):
        raise TypeError(f"{address}: {len(spec)} type tags for {len(args)} arguments")
    b = OscMessageBuilder(address=address)
    for t, a in zip(spec, args):
        b.add_arg(int(a) if t in "ih" else float(a) if t in "fd" else a, t)
    return b.build().dgram


#: Takes whose audio the server keeps for ``/idm/edit`` (the oldest files are removed).
KEEP_TAKES = 8


class EditHandlers(ServerCore):
    """The edit round trip: ``/idm/edit i:id s:key`` writes a session of a plug-in's take that
    idm-studio opens (reply ``/idm/edit/session i:id s:path``); ``/idm/edit/hits i:id s:key`` reads
    the hits saved there and sends them as ``/idm/hit/frame`` on the take's timeline, then
    ``/idm/hits/end``. The take's audio is kept (float32 WAV) under ``out_dir/plugin-takes``."""

    def _keep_take_audio(self, id_: int, audio) -> None:
        """Write a timeline stream's audio for a later ``/idm/edit`` (worker thread, after its hits)."""
        from ..audio import save_audio

        folder = self.out_dir / "plugin-takes"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"take-{id_}.wav"
            if path.exists() or path.is_symlink():
                path.unlink()
            save_audio(path, audio.samples, audio.sample_rate, bit_depth=32)
            takes = sorted(folder.glob("take-*.wav"), key=lambda p: p.stat().st_mtime)
            for old in takes[:-KEEP_TAKES]:
                old.unlink()
        except Exception as exc:  # the analysis itself succeeded: say so in the log, keep serving
            log_warning(f"could not keep the audio of take {id_} for /idm/edit: {exc}")

    def _edit_result(self, msg, usage: str):
        reply_id, key = _args(msg, "is", usage)
        with self._lock:
            res = self._results.get(reply_id)
            running = reply_id in self._jobs
        if res is None and running:
            raise OscError(f"id {reply_id}: the analysis is still running; ask again when it is done")
        timeline = getattr(res, "timeline", None) if res is not None else None
        if res is None or timeline is None or not timeline.key or not hmac.compare_digest(
                key.encode("utf-8", "surrogatepass"), timeline.key.encode("utf-8", "surrogatepass")):
            raise OscError(f"id {reply_id}: no finished plug-in take with this id and key")
        return reply_id, res, timeline

    def _on_edit(self, msg, reply) -> None:
        from ..audio import load_audio
        from ..session import Session, SourceInfo

        id_, res, timeline = self._edit_result(msg, "i:id s:key")
        wav = self.out_dir / "plugin-takes" / f"take-{id_}.wav"
        path = self.out_dir / "plugin-takes" / f"take-{id_}.idmsession"
        if not path.exists():
            if not wav.is_file() or res.kit is None:
                raise OscError(f"id {id_}: the take's audio is no longer kept (the server keeps the last "
                               f"{KEEP_TAKES}); play the section again to analyse it anew")
            audio = load_audio(wav, sample_rate=None)
            gains = np.asarray(res.track_gains if res.track_gains is not None else np.ones(len(res.kit.classes)),
                               np.float32)
            info = SourceInfo.for_file(wav, sample_rate=audio.sample_rate, duration_s=audio.duration_s,
                                       channels=audio.channels, sha256=audio.sha256)
            Session.from_transcription(res.transcription, res.kit, info, track_gains=gains, model=res.model).save(path)
        self._send(reply, "/idm/edit/session", id_, str(path))

    def _on_edit_hits(self, msg, reply) -> None:
        from ..session import Session

        id_, res, timeline = self._edit_result(msg, "i:id s:key")
        path = self.out_dir / "plugin-takes" / f"take-{id_}.idmsession"
        if not path.is_dir():
            raise OscError(f"id {id_}: no session of this take; send /idm/edit first")
        tr = Session.load(path).transcription()
        self._send_frame_hits(reply, id_, tr, int(res.audio_info[1]), timeline)


class TimelineHandlers(EditHandlers):
    """The ``/idm/hits`` request and the frame-exact hit list (mixed into the server, with
    :class:`EditHandlers`)."""

    def _send_frame_hits(self, reply, id_: int, tr: Transcription, rate: int, timeline: Timeline | None) -> None:
        hits = frame_hits(tr, rate, timeline.frame if timeline is not None else 0)
        for k, (frame, c, v, t, mv) in enumerate(hits):
            reply.send(build_typed("/idm/hit/frame", "ishfdi", id_, c, frame, v, t, mv))
            if k % 64 == 63 and type(reply).__name__ == "_UdpReply":
                time.sleep(0.0005)  # pace bursts so a client's receive buffer keeps up
        reply.send(build_typed("/idm/hits/end", "ii", id_, len(hits)))

    def _on_hits(self, msg, reply) -> None:
        usage = "i:id [s:key]"
        if len(msg.params) == 1:
            (id_,) = _args(msg, "i", usage)
            key = ""
        else:
            id_, key = _args(msg, "is", usage)
        with self._lock:
            running = id_ in self._jobs
            res = self._results.get(id_)
        timeline = getattr(res, "timeline", None) if res is not None else None
        by_key = bool(key) and timeline is not None and bool(timeline.key) and hmac.compare_digest(
            key.encode("utf-8", "surrogatepass"), timeline.key.encode("utf-8", "surrogatepass"))
        if res is None or not (by_key or res.owner == self._owner(reply)):
            if running:
                raise OscError(f"id {id_}: the analysis is still running; ask again when it is done")
            raise OscError(f"id {id_}: no finished analysis with this id for this client (the server keeps the "
                           f"last {self._keep_results}; after a reconnect give the stream's key)")
        rate = res.audio_info[1] if res.audio_info else 0
        if not rate:
            raise OscError(f"id {id_}: this analysis has no sample rate to count frames at")
        self._send_frame_hits(reply, id_, res.transcription, int(rate), timeline)


def log_warning(text: str) -> None:
    import logging

    logging.getLogger("idm_host.osc").warning("%s", text)
