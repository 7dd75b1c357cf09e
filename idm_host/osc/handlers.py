"""The OSC bridge's address handlers: one method per request address.

To add an address: write a method ``_on_something(self, msg, reply)`` on :class:`AddressHandlers`
(``msg.params`` holds the arguments; check them with :func:`~idm_host.osc.wire._args`, raise
``_ArgError`` or an :class:`~idm_host.errors.IdmError` for an ``/idm/error`` reply, send replies with
``self._send(reply, address, *args)``) and list it in :data:`ADDRESSES`. Jobs and streams belong to
the client that started them (``self._owner(reply)``); paths go through ``self.access``.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..errors import IdmError, OscError, PresetError
from ..types import Audio
from .access import AccessDenied, looks_like_path
from .state import MAX_CHANNELS, SAMPLE_RATES, _Job, _Result, _Stream
from .timeline import TimelineHandlers, parse_begin
from .transport import _Reply, _UdpReply
from .wire import _args, _ArgError

log = logging.getLogger("idm_host.osc")

#: Request address -> the :class:`AddressHandlers` method that serves it.
ADDRESSES: dict[str, str] = {
    "/idm/ping": "_on_ping",
    "/idm/auth": "_on_auth",
    "/idm/open": "_on_open",
    "/idm/audio/begin": "_on_begin",
    "/idm/audio/chunk": "_on_chunk",
    "/idm/audio/end": "_on_end",
    "/idm/cancel": "_on_cancel",
    "/idm/export/midi": "_on_export_midi",
    "/idm/midi/notes": "_on_midi_notes",
    "/idm/render": "_on_render",
    "/idm/hits": "_on_hits",
    "/idm/edit": "_on_edit",
    "/idm/edit/hits": "_on_edit_hits",
}
#: Addresses served without the token (when the server has one).
OPEN_ADDRESSES = frozenset({"/idm/ping", "/idm/auth"})


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


class AddressHandlers(TimelineHandlers):
    """The request handlers of :class:`~idm_host.osc.OscServer` (a mixin: state lives on the server)."""

    # -------------------------------------------------------------------------------- handlers
    def _on_ping(self, msg, reply: _Reply) -> None:
        if msg.params:  # an optional int32 comes back, so a client can match a pong to its ping
            (tag,) = _args(msg, "i", "[i:tag]")
            self._send(reply, "/idm/pong", __version__, tag)
        else:
            self._send(reply, "/idm/pong", __version__)

    def _on_auth(self, msg, reply: _Reply) -> None:
        (token,) = _args(msg, "s", "s:token")
        with self._lock:
            if self.access.token is not None:
                if not self.access.check_token(reply.host, token):
                    raise AccessDenied("/idm/auth: wrong token")
                client = self._client(reply)
                if client is not None:
                    client.authorized = True
        self._send(reply, "/idm/auth/ok")

    def _preset_arg(self, text: str, reply: _Reply, loader: Callable[[str], Any]) -> Any:
        """``loader(text)`` for a preset argument (a name, or a path the client may read).

        A path that cannot be used gets one reply whatever the reason (missing, unreadable, not
        allowed, not a valid preset), never the file's contents; the log has the details."""
        arg = self.access.readable_preset(text, self._is_remote(reply))
        try:
            return loader(arg)
        except (PresetError, IdmError, OSError) as exc:
            if not looks_like_path(text):
                raise
            log.info("OSC client %s: preset file %s: %s", reply.peer, text, exc)
            raise self.access.not_readable(text) from None

    def _probe_seconds(self, path: Path) -> float | None:
        """The duration a file's header declares, or None when it cannot say (the job then reports
        what is wrong with the file)."""
        from pedalboard.io import AudioFile

        try:
            with AudioFile(str(path)) as f:
                return float(f.frames) / float(f.samplerate) if f.samplerate > 0 else None
        except Exception:  # pedalboard raises several kinds for files it cannot read
            return None

    def _on_open(self, msg, reply: _Reply) -> None:
        usage = "s:path or i:id s:path, optionally followed by s:masking"
        masking = "auto"
        if len(msg.params) == 1:
            (path_text,) = _args(msg, "s", usage)
            id_ = self._new_id()
        elif len(msg.params) == 2 and isinstance(msg.params[0], str):
            path_text, masking = _args(msg, "ss", usage)
            id_ = self._new_id()
        elif len(msg.params) == 2:
            id_, path_text = _args(msg, "is", usage)
        else:
            id_, path_text, masking = _args(msg, "iss", usage)
        from ..masking import MODES

        if masking not in MODES:
            raise _ArgError(f"/idm/open masking must be one of {', '.join(MODES)}, not {masking!r}")
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            raise _ArgError(f"/idm/open needs an absolute path; {path_text!r} is relative to nothing the client knows")
        path = self.access.readable_file(path, self._is_remote(reply))
        seconds = self._probe_seconds(path)
        if seconds is not None and seconds > self.max_stream_s:
            raise OscError(f"{path_text}: {seconds:.1f} s is longer than this server's limit of "
                           f"{self.max_stream_s:.0f} s per file or stream (serve --max-stream-s); "
                           "open a shorter section")
        self._submit(_Job(id_, f"{_safe_name(path.stem)}-{id_}", path, reply, masking=masking))

    def _on_begin(self, msg, reply: _Reply) -> None:
        id_, rate, channels, frames, timeline = parse_begin(msg)  # frames 0: until /idm/audio/end
        if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
            raise OscError(f"stream {id_}: sample rate {rate} Hz is out of range {SAMPLE_RATES[0]}..{SAMPLE_RATES[1]}")
        if not 1 <= channels <= MAX_CHANNELS:
            raise OscError(f"stream {id_}: {channels} channels is out of range 1..{MAX_CHANNELS}")
        if frames > self.max_stream_s * rate:
            raise OscError(f"stream {id_}: {frames / rate:.1f} s is longer than this server's limit of "
                           f"{self.max_stream_s:.0f} s per stream (serve --max-stream-s); send a shorter section")
        stream = _Stream(id_, rate, channels, frames, reply, owner=self._owner(reply), timeline=timeline)
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

    def _take_stream(self, id_: int, reply: _Reply) -> _Stream:
        """Stream ``id_`` if ``reply``'s client opened it (call under the lock)."""
        stream = self._streams.get(id_)
        if stream is None or stream.owner != self._owner(reply):
            raise OscError(f"stream {id_}: no such open stream; send /idm/audio/begin first")
        return stream

    def _abort(self, id_: int, reason: str) -> OscError:
        with self._lock:
            self._streams.pop(id_, None)
        return OscError(f"stream {id_}: {reason}; the stream was aborted, send it again from /idm/audio/begin")

    def _on_chunk(self, msg, reply: _Reply) -> None:
        id_, seq, data = _args(msg, "iib", "i:id i:seq b:float32-le-interleaved")
        with self._lock:
            stream = self._take_stream(id_, reply)
            stream.last_seen = time.monotonic()
            if seq != stream.next_seq:
                what = "repeated or out-of-order" if seq < stream.next_seq else "missing"
                raise self._abort(id_, f"{what} chunk: expected seq {stream.next_seq}, got {seq}")
            if len(data) % (4 * stream.channels):
                raise self._abort(id_, f"chunk {seq} holds {len(data)} bytes, not a whole number of "
                                       f"{stream.channels}-channel float32 frames")
            if stream.frames and len(stream.buf) + len(data) > stream.n_bytes:
                raise self._abort(id_, f"chunk {seq} overruns the declared {stream.frames} frames")
            if not stream.frames:  # open-ended: bounded by the per-stream and all-streams limits
                if len(stream.buf) + len(data) > self.max_stream_s * stream.sample_rate * stream.channels * 4:
                    raise self._abort(id_, f"chunk {seq} makes the stream longer than this server's limit of "
                                           f"{self.max_stream_s:.0f} s (serve --max-stream-s)")
                if sum(s.n_bytes for s in self._streams.values()) + len(data) > self.max_total_bytes:
                    raise self._abort(id_, f"chunk {seq} would pass the server's memory limit for streams "
                                           f"({self.max_total_bytes / 2**20:.0f} MiB)")
            stream.buf += data
            stream.next_seq += 1

    def _on_end(self, msg, reply: _Reply) -> None:
        (id_,) = _args(msg, "i", "i:id")
        with self._lock:
            stream = self._take_stream(id_, reply)
            if not stream.frames and not stream.buf:
                raise self._abort(id_, "ended before any audio arrived")
            if len(stream.buf) != stream.n_bytes:
                got = len(stream.buf) // (4 * stream.channels)
                raise self._abort(id_, f"ended after {got} of {stream.frames} frames ({stream.next_seq} chunks)")
            del self._streams[id_]
        n_frames = len(stream.buf) // (4 * stream.channels)
        samples = np.frombuffer(bytes(stream.buf), dtype="<f4").reshape(n_frames, stream.channels).T
        if not np.isfinite(samples).all():
            raise OscError(f"stream {id_}: the audio contains NaN or infinite samples; send float32 in -1..1")
        audio = Audio(np.ascontiguousarray(samples, dtype=np.float32), stream.sample_rate)
        self._submit(_Job(id_, f"stream-{id_}", audio, reply, timeline=stream.timeline))

    def _on_cancel(self, msg, reply: _Reply) -> None:
        (id_,) = _args(msg, "i", "i:id")
        owner = self._owner(reply)
        with self._lock:
            stream = self._streams.get(id_)
            if stream is not None and stream.owner == owner:
                del self._streams[id_]
            else:
                stream = None
            job = self._jobs.get(id_)
            if job is not None and job.owner != owner:
                job = None  # another client's job: as if there were none
        if job is not None:
            job.cancel.set()  # the worker replies when it stops
        elif stream is not None:
            self._error(reply, id_, f"stream {id_}: cancelled")
        else:
            raise OscError(f"id {id_}: nothing to cancel (no open stream or running job)")

    def _result(self, id_: int, reply: _Reply) -> _Result:
        """The finished analysis ``id_`` if ``reply``'s client asked for it (another client's
        result gets the same reply as no result)."""
        with self._lock:
            res = self._results.get(id_)
        if res is None or res.owner != self._owner(reply):
            raise OscError(f"id {id_}: no finished analysis with this id (the server keeps the last "
                           f"{self._keep_results}); analyse the audio first")
        return res

    def engine_time_s(self, id_: int) -> float | None:
        """Seconds the engine spent on job ``id_`` before its hits existed (for latency measures)."""
        with self._lock:
            res = self._results.get(id_)
        return None if res is None else res.engine_s

    def _on_export_midi(self, msg, reply: _Reply) -> None:
        from ..midi import write_midi

        usage = "i:id s:path s:drum_map [i:overwrite]"
        if len(msg.params) == 4:
            id_, path_text, drum_map, overwrite = _args(msg, "issi", usage)
        else:
            id_, path_text, drum_map = _args(msg, "iss", usage)
            overwrite = 0
        from ..drum_maps import load_drum_map

        res = self._result(id_, reply)
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            raise _ArgError(f"/idm/export/midi needs an absolute path, got {path_text!r}")
        path = self.access.writable(path, self._is_remote(reply))
        dmap = self._preset_arg(drum_map or "gm", reply, load_drum_map)
        write_midi(res.transcription, path, drum_map=dmap, overwrite=bool(overwrite))
        self._send(reply, "/idm/midi", id_, str(path))

    def _on_midi_notes(self, msg, reply: _Reply) -> None:
        from ..midi import note_events

        from ..drum_maps import load_drum_map

        id_, drum_map = _args(msg, "is", "i:id s:drum_map")
        res = self._result(id_, reply)
        dmap = self._preset_arg(drum_map or "gm", reply, load_drum_map)
        events = note_events(res.transcription, drum_map=dmap)
        for k, e in enumerate(events):
            self._send(reply, "/idm/midi/note", e.note, e.velocity, float(e.time_s))
            if isinstance(reply, _UdpReply) and k % 64 == 63:
                time.sleep(0.0005)  # pace bursts so a client's receive buffer keeps up
        self._send(reply, "/idm/midi/end", id_, len(events))

    def _on_render(self, msg, reply: _Reply) -> None:
        id_, kit, fx, out_dir = _args(msg, "isss", "i:id s:kit s:fx s:out_dir")
        res = self._result(id_, reply)
        out = Path(out_dir).expanduser()
        if not out.is_absolute():
            raise _ArgError(f"/idm/render needs an absolute out_dir, got {out_dir!r}")
        out = self.access.writable(out, self._is_remote(reply))
        if res.kit is None or not res.audio_info:
            raise OscError(f"id {id_}: this analysis has no kit to render with")
        fx_map = _parse_fx(fx)
        # check presets now, so a typo is answered at once rather than after queueing
        from ..kit_presets import load_kit

        kit_preset = self._preset_arg(kit, reply, load_kit) if kit else None
        from ..fx import validate_effects

        def checked(preset: str) -> str:
            validate_effects(preset)
            return preset

        for cls, preset in list(fx_map.items()):
            if preset is not None:
                fx_map[cls] = self._preset_arg(preset, reply, checked)

        def action(job: _Job) -> None:
            self._render(job, res, kit_preset, fx_map, out)

        render_id = self._new_id()
        self._submit(_Job(render_id, f"render-{id_}", Path(out), reply, action=action), announce_id=id_)

    def _render(self, job: _Job, res: _Result, kit_preset, fx_map: dict[str, str | None], out: Path) -> None:
        from ..render import export_stems, render
        from ..session import Compound, Session, SetEffects, SourceInfo

        source, rate, channels, n_frames = res.audio_info
        assert res.kit is not None  # _on_render refuses a result without one
        info = SourceInfo.for_file(source, sample_rate=rate, duration_s=n_frames / float(rate), channels=channels)
        session = Session.from_transcription(res.transcription, res.kit, info, track_gains=res.track_gains,
                                             model=res.model)
        cmds = []
        if kit_preset is not None:
            from ..kit_presets import kit_command

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

