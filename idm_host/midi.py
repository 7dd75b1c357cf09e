"""Transcriptions as MIDI: Standard MIDI Files (on mido) and MIDI ports.

This is the only module where velocities are MIDI's 1..127; everywhere else they are 0..1. Drum
notes go to General MIDI's percussion channel 10 (``channel=9`` in mido, which counts from 0),
through a :class:`~idm_host.drum_maps.DrumMap` that chooses the note of each class.

Example:
    >>> from idm_host import Transcription, write_midi, read_midi        # doctest: +SKIP
    >>> t = Transcription.from_times(["KD", "SD"], {"KD": [0.0, 1.0], "SD": [0.5]})  # doctest: +SKIP
    >>> write_midi(t, "beat.mid", drum_map="gm", tempo_bpm=120)           # doctest: +SKIP
    >>> read_midi("beat.mid", classes=("KD", "SD")).times("KD")           # doctest: +SKIP
    array([0., 1.])
"""
from __future__ import annotations

import io
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

from .classes import IDM_CLASSES, class_info
from .drum_maps import DrumMap, load_drum_map, note_name
from .errors import IdmError, MidiError
from .fsutil import atomic_write_bytes
from .tempo import Tempo, song_tempo
from .types import Hit, Transcription

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: mido's channel number of General MIDI's percussion channel 10.
DRUM_CHANNEL = 9
#: How long each written drum note lasts (s); drum instruments ignore note length, but a DAW shows it.
DEFAULT_NOTE_LENGTH_S = 0.05
#: Velocity curves by name: the exponent ``g`` in ``midi = 127 * velocity ** g``. ``soft`` lifts
#: quiet hits, ``hard`` pushes them down.
VELOCITY_CURVES = {"linear": 1.0, "soft": 0.6, "hard": 1.6}
LAYOUTS = ("single", "per-class")
#: Files larger than this are refused rather than read into memory.
MAX_MIDI_FILE_BYTES = 32 * 1024 * 1024

VelocityCurve = Union[str, float]


def _curve_exponent(curve: VelocityCurve) -> float:
    if isinstance(curve, str):
        if curve not in VELOCITY_CURVES:
            raise MidiError(
                f"unknown velocity curve {curve!r}; use one of {', '.join(VELOCITY_CURVES)} or an exponent > 0"
            )
        return VELOCITY_CURVES[curve]
    if isinstance(curve, bool) or not isinstance(curve, (int, float)) or not (0 < float(curve) < 100):
        raise MidiError(f"velocity curve {curve!r} is invalid; use a name or an exponent between 0 and 100")
    return float(curve)


def to_midi_velocity(velocity: float, curve: VelocityCurve = "linear") -> int:
    """A 0..1 velocity as MIDI 1..127 (a note-on never carries 0, which would mean note-off).

    Example:
        >>> to_midi_velocity(1.0), to_midi_velocity(0.5), to_midi_velocity(0.0)
        (127, 64, 1)
    """
    g = _curve_exponent(curve)
    v = min(max(float(velocity), 0.0), 1.0)
    return int(min(127, max(1, round(127.0 * v**g))))


def from_midi_velocity(midi_velocity: int, curve: VelocityCurve = "linear") -> float:
    """MIDI 1..127 as a 0..1 velocity (the inverse of :func:`to_midi_velocity`)."""
    g = _curve_exponent(curve)
    m = min(max(int(midi_velocity), 0), 127)
    return float((m / 127.0) ** (1.0 / g))


@dataclass(frozen=True)
class NoteEvent:
    """One drum note: ``time_s`` of the note-on, ``length_s`` until its note-off."""

    time_s: float
    length_s: float
    note: int
    velocity: int
    symbol: str


def note_events(
    transcription: Transcription,
    *,
    drum_map: "str | PathLike | DrumMap" = "gm",
    velocity_curve: VelocityCurve = "linear",
    note_length_s: float = DEFAULT_NOTE_LENGTH_S,
) -> list[NoteEvent]:
    """The notes a transcription becomes, sorted by time.

    A note is cut short where the same note sounds again sooner than ``note_length_s``.

    Raises:
        MidiError: the drum map has no note for one of the classes, or arguments are invalid.
    """
    if not isinstance(transcription, Transcription):
        raise MidiError(f"expected a Transcription, got {type(transcription).__name__}")
    if not (isinstance(note_length_s, (int, float)) and 0 < note_length_s <= 10):
        raise MidiError(f"note length {note_length_s!r} s is invalid; use a value in (0, 10] s")
    dmap = _drum_map(drum_map)
    _curve_exponent(velocity_curve)
    raw: list[tuple[float, int, int, str]] = []
    for symbol in transcription.classes:
        hits = transcription.hits[symbol]
        if not hits:
            continue
        try:
            note = dmap.note_for(symbol)
        except IdmError as exc:
            raise MidiError(str(exc)) from exc
        for h in hits:
            raw.append((h.time_s, note, to_midi_velocity(h.velocity, velocity_curve), symbol))
    raw.sort(key=lambda e: (e[0], e[1]))
    by_note: dict[int, list[tuple[float, int, int, str]]] = {}
    for e in raw:
        by_note.setdefault(e[1], []).append(e)
    out: list[NoteEvent] = []
    for events in by_note.values():
        for i, (t, note, vel, symbol) in enumerate(events):
            nxt = events[i + 1][0] if i + 1 < len(events) else math.inf
            out.append(NoteEvent(t, min(float(note_length_s), nxt - t), note, vel, symbol))
    out.sort(key=lambda e: (e.time_s, e.note))
    return out


def _drum_map(drum_map: "str | PathLike | DrumMap") -> DrumMap:
    try:
        return load_drum_map(drum_map)
    except IdmError as exc:
        raise MidiError(str(exc)) from exc


class _TempoMap:
    """Seconds -> ticks for a file whose bar lines fall where ``tempo``'s do.

    When the downbeat is not on a bar line counted from 0 s (``p = downbeat mod bar`` > 0), the file
    opens with a pickup bar of ``n = round(p / beat)`` beats (at least 1) whose own tempo makes it last
    exactly ``p``; the song's tempo and time signature start at the downbeat. So a DAW that imports
    the file lines its bars up with the song, and every hit keeps its time in seconds.
    """

    def __init__(self, tempo: Tempo, ppq: int, numerator: int, denominator: int):
        import mido

        self.ppq = ppq
        self.us_per_beat = mido.bpm2tempo(tempo.bpm)
        beat = self.us_per_beat / 1e6
        bar = numerator * beat * 4.0 / denominator
        p = tempo.downbeat_s % bar
        self.pickup_beats = 0
        self.pickup_s = 0.0
        if p * ppq / beat >= 1.0 and (bar - p) * ppq / beat >= 1.0:  # more than a tick from a bar line
            n = int(min(max(1, round(p / beat)), numerator))
            self.pickup_beats = n
            self.pickup_us = max(1, int(round(p * 1e6 / n)))
            self.pickup_s = n * self.pickup_us / 1e6
        self.numerator, self.denominator = numerator, denominator

    def tick(self, t: float) -> int:
        if t < self.pickup_s:
            return int(round(t * 1e6 * self.ppq / self.pickup_us))
        base = self.pickup_beats * self.ppq
        return base + int(round((t - self.pickup_s) * 1e6 * self.ppq / self.us_per_beat))

    def meta(self) -> list:
        import mido

        out = []
        if self.pickup_beats:
            out += [mido.MetaMessage("set_tempo", tempo=self.pickup_us, time=0),
                    mido.MetaMessage("time_signature", numerator=self.pickup_beats, denominator=4, time=0)]
            first = self.pickup_beats * self.ppq
        else:
            first = 0
        out += [mido.MetaMessage("set_tempo", tempo=self.us_per_beat, time=first),
                mido.MetaMessage("time_signature", numerator=self.numerator, denominator=self.denominator, time=0)]
        return out


def midi_file(
    transcription: Transcription,
    *,
    drum_map: "str | PathLike | DrumMap" = "gm",
    tempo: Tempo | None = None,
    tempo_bpm: float | None = None,
    ppq: int = 480,
    layout: str = "single",
    velocity_curve: VelocityCurve = "linear",
    time_signature: tuple[int, int] | None = None,
    note_length_s: float = DEFAULT_NOTE_LENGTH_S,
    channel: int = DRUM_CHANNEL,
):
    """Build the :class:`mido.MidiFile` that :func:`write_midi` saves (arguments as there)."""
    import mido

    if tempo_bpm is not None and (isinstance(tempo_bpm, bool) or not isinstance(tempo_bpm, (int, float))
                                  or not (20.0 <= float(tempo_bpm) <= 400.0)):
        raise MidiError(f"tempo {tempo_bpm!r} BPM is invalid; use 20..400 BPM")
    if tempo is not None and tempo_bpm is not None:
        raise MidiError("give the tempo as a Tempo or as a BPM, not both")
    if not isinstance(transcription, Transcription):
        raise MidiError(f"expected a Transcription, got {type(transcription).__name__}")
    try:
        song = song_tempo(transcription, tempo, bpm=tempo_bpm,
                          beats_per_bar=time_signature[0] if time_signature and tempo is None else None)
    except IdmError as exc:
        raise MidiError(str(exc)) from exc
    if isinstance(ppq, bool) or not isinstance(ppq, int) or not (24 <= ppq <= 32767):
        raise MidiError(f"PPQ {ppq!r} is invalid; use a whole number in 24..32767 (480 or 960 are usual)")
    if layout not in LAYOUTS:
        raise MidiError(f"unknown layout {layout!r}; use 'single' (one drum track) or 'per-class'")
    if not isinstance(channel, int) or not 0 <= channel <= 15:
        raise MidiError(f"MIDI channel {channel!r} is invalid; mido channels are 0..15 (9 is GM drums)")
    num, den = song.time_signature if time_signature is None else time_signature
    if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16, 32)):
        raise MidiError(f"time signature {num}/{den} is invalid")
    events = note_events(transcription, drum_map=drum_map, velocity_curve=velocity_curve,
                         note_length_s=note_length_s)
    tmap = _TempoMap(song, ppq, num, den)
    tick = tmap.tick

    mid = mido.MidiFile(type=1, ticks_per_beat=ppq)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name="idm-host", time=0))
    meta.extend(tmap.meta())
    mid.tracks.append(meta)

    groups: dict[str, list[NoteEvent]] = {}
    if layout == "single":
        groups["Drums"] = events
    else:
        for symbol in transcription.classes:
            groups[class_info(symbol).name] = [e for e in events if e.symbol == symbol]
    end_tick = tick(transcription.duration_s) if transcription.duration_s else 0
    for name, evs in groups.items():
        # (tick, order, message): note-offs sort before note-ons at the same tick.
        timed: list[tuple[int, int, object]] = []
        last_on: dict[int, tuple[int, int]] = {}  # note -> (tick, index of its note-on in timed)
        for e in evs:
            on = tick(e.time_s)
            prev = last_on.get(e.note)
            if prev is not None and prev[0] == on:
                # two hits on one note within one tick (e.g. two classes mapped to one note): keep the louder
                t0, k0, old = timed[prev[1]]
                if e.velocity > old.velocity:  # type: ignore[attr-defined]
                    timed[prev[1]] = (t0, k0, old.copy(velocity=e.velocity))  # type: ignore[attr-defined]
                continue
            off = max(on + 1, tick(e.time_s + e.length_s))
            last_on[e.note] = (on, len(timed))
            timed.append((on, 1, mido.Message("note_on", channel=channel, note=e.note, velocity=e.velocity)))
            timed.append((off, 0, mido.Message("note_off", channel=channel, note=e.note, velocity=0)))
        # note-offs sort before note-ons on the same tick, so a re-struck note is released first
        timed.sort(key=lambda x: (x[0], x[1]))
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        now = 0
        for t, _, msg in timed:
            track.append(msg.copy(time=t - now))  # type: ignore[attr-defined]
            now = t
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        mid.tracks.append(track)
    return mid


def midi_bytes(transcription: Transcription, **kwargs) -> bytes:
    """The Standard MIDI File :func:`write_midi` would write, as bytes (same keyword arguments)."""
    mid = midi_file(transcription, **kwargs)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def write_midi(
    transcription: Transcription,
    path: PathLike,
    *,
    drum_map: "str | PathLike | DrumMap" = "gm",
    tempo: Tempo | None = None,
    tempo_bpm: float | None = None,
    ppq: int = 480,
    layout: str = "single",
    velocity_curve: VelocityCurve = "linear",
    time_signature: tuple[int, int] | None = None,
    note_length_s: float = DEFAULT_NOTE_LENGTH_S,
    channel: int = DRUM_CHANNEL,
    overwrite: bool = False,
) -> Path:
    """Write a transcription as a Standard MIDI File (type 1), atomically.

    Track 0 holds the song's tempo, time signature and downbeat (:func:`idm_host.tempo.song_tempo`;
    a pickup bar before the downbeat when it is not on a bar line, see :class:`_TempoMap`) and the
    name; drum notes follow on channel 10, in one
    track (``layout="single"``) or one track per class (``layout="per-class"``). Each note lasts
    ``note_length_s`` (shorter where the same note is struck again sooner).

    Args:
        transcription: the hits to write.
        path: the ``.mid`` file to write.
        drum_map: a map name (``"gm"``, ``"superior-drummer-3"``, ...), a JSON path or a DrumMap.
        tempo: the song's :class:`~idm_host.tempo.Tempo` (a session's, estimated or edited):
            BPM, downbeat and beats per bar. ``None`` (with no ``tempo_bpm``): estimated from the hits.
        tempo_bpm: a BPM the user chose instead; the downbeat is estimated at that tempo.
            Hits keep their times in seconds whatever the tempo.
        ppq: ticks per quarter note (480 or 960 are usual).
        layout: ``"single"`` or ``"per-class"``.
        velocity_curve: ``"linear"``, ``"soft"``, ``"hard"`` or an exponent ``g`` in
            ``midi = 127 * velocity ** g``.
        time_signature: ``(numerator, denominator)``; default ``(tempo.beats_per_bar, 4)``.
        note_length_s: note length in seconds.
        channel: mido channel (0-based); 9 is GM drum channel 10.
        overwrite: replace an existing file; otherwise an existing file raises.

    Returns:
        The path written.

    Raises:
        MidiError: the file exists (without ``overwrite``), an argument is invalid, or the drum map
            lacks a class.

    Example:
        >>> write_midi(analysis.transcription, "drums.mid", drum_map="gm", tempo_bpm=96)  # doctest: +SKIP
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise MidiError(f"{p}: already exists; choose another name or pass overwrite=True (--overwrite)")
    if p.is_dir():
        raise MidiError(f"{p}: is a folder; give a .mid file name")
    data = midi_bytes(transcription, drum_map=drum_map, tempo=tempo, tempo_bpm=tempo_bpm, ppq=ppq, layout=layout,
                      velocity_curve=velocity_curve, time_signature=time_signature,
                      note_length_s=note_length_s, channel=channel)
    try:
        return atomic_write_bytes(p, data, overwrite=overwrite)
    except MidiError:
        raise
    except IdmError as exc:
        raise MidiError(str(exc)) from exc


def _load_midi_file(path: PathLike):
    import mido

    p = Path(path)
    if not p.exists():
        raise MidiError(f"{p}: MIDI file not found; check the path")
    if p.is_dir():
        raise MidiError(f"{p}: is a folder, not a MIDI file")
    size = p.stat().st_size
    if size == 0:
        raise MidiError(f"{p}: file is empty (0 bytes); export the MIDI again")
    if size > MAX_MIDI_FILE_BYTES:
        raise MidiError(f"{p}: {size} bytes is too large for a drum MIDI file (limit {MAX_MIDI_FILE_BYTES})")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MidiError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if not data.startswith(b"MThd"):
        raise MidiError(f"{p}: not a Standard MIDI File (no MThd header); export it from the DAW as .mid")
    try:
        return mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError on corrupt data
        raise MidiError(f"{p}: corrupt MIDI file ({type(exc).__name__}: {exc}); export it again") from exc


def read_midi(
    path: PathLike,
    *,
    drum_map: "str | PathLike | DrumMap" = "gm",
    classes: Sequence[str] = IDM_CLASSES,
    velocity_curve: VelocityCurve = "linear",
    channels: Iterable[int] | None = None,
    on_unmapped: str = "warn",
) -> Transcription:
    """Read a drum MIDI file (type 0 or 1, any PPQ, tempo changes) as a transcription.

    Note-ons with velocity 0 count as note-offs. Notes the drum map does not know are counted and
    logged (``on_unmapped="warn"``), skipped silently (``"ignore"``), or refused (``"error"``).
    Hits of one class closer than 1 ms are joined (the louder is kept).

    Args:
        path: a ``.mid`` file.
        drum_map: the map the file was written with (``"gm"``, a name, a path or a DrumMap).
        classes: the classes of the transcription returned (model classes or the 5 groups).
        velocity_curve: the curve the velocities were written with (see :func:`write_midi`).
        channels: mido channels (0-based) to read; ``None`` reads every channel.
        on_unmapped: ``"warn"``, ``"ignore"`` or ``"error"``.

    Returns:
        A :class:`Transcription` with times in seconds; ``duration_s`` is the file's length.

    Raises:
        MidiError: the file is missing, not MIDI, corrupt, type 2, or has unmapped notes with
            ``on_unmapped="error"``.

    Example:
        >>> t = read_midi("edited.mid", drum_map="superior-drummer-3")  # doctest: +SKIP
    """
    import mido

    if on_unmapped not in ("warn", "ignore", "error"):
        raise MidiError(f"on_unmapped={on_unmapped!r}; use 'warn', 'ignore' or 'error'")
    dmap = _drum_map(drum_map)
    classes = tuple(classes)
    _curve_exponent(velocity_curve)
    wanted = None if channels is None else {int(c) for c in channels}
    p = Path(path)
    mid = _load_midi_file(p)
    if mid.type == 2:
        raise MidiError(f"{p}: is a type 2 MIDI file (independent patterns); export it as type 0 or 1")
    ppq = mid.ticks_per_beat
    if not ppq or ppq <= 0:
        raise MidiError(f"{p}: invalid time division ({ppq}); export it again with 480 or 960 PPQ")
    tempo = 500000  # microseconds per beat until the first set_tempo (MIDI's 120 BPM default)
    now_s = 0.0
    hits: dict[str, list[Hit]] = {c: [] for c in classes}
    unmapped: Counter[int] = Counter()
    try:
        merged = mido.merge_tracks(mid.tracks)
    except Exception as exc:
        raise MidiError(f"{p}: corrupt MIDI tracks ({exc}); export it again") from exc
    for msg in merged:
        if msg.time:
            now_s += msg.time * tempo / (ppq * 1e6)
        if msg.type == "set_tempo":
            tempo = msg.tempo if msg.tempo > 0 else tempo
        elif msg.type == "note_on" and msg.velocity > 0:
            if wanted is not None and msg.channel not in wanted:
                continue
            symbol = dmap.class_for(msg.note, classes)
            if symbol is None:
                unmapped[msg.note] += 1
                continue
            hits[symbol].append(Hit(now_s, from_midi_velocity(msg.velocity, velocity_curve)))
    if unmapped:
        summary = ", ".join(f"{n} ({note_name(n)}) x{k}" for n, k in sorted(unmapped.items()))
        text = (f"{p}: {sum(unmapped.values())} notes are not in drum map {dmap.name!r} for classes "
                f"{', '.join(classes)} and were skipped: {summary}")
        if on_unmapped == "error":
            raise MidiError(text + "; choose the drum map the file was made with (--drum-map)")
        if on_unmapped == "warn":
            log.warning("%s", text)
    joined: dict[str, list[Hit]] = {}
    for symbol, hs in hits.items():
        hs.sort()
        out: list[Hit] = []
        for h in hs:
            if out and h.time_s - out[-1].time_s < 1e-3:
                if h.velocity > out[-1].velocity:
                    out[-1] = Hit(out[-1].time_s, h.velocity)
                continue
            out.append(h)
        joined[symbol] = out
    return Transcription(classes, joined, now_s if now_s > 0 else None)  # type: ignore[arg-type]


def unmapped_notes(path: PathLike, *, drum_map: "str | PathLike | DrumMap" = "gm",
                   classes: Sequence[str] = IDM_CLASSES) -> dict[int, int]:
    """Per note number, how many note-ons of ``path`` the drum map does not read as a class."""
    dmap = _drum_map(drum_map)
    mid = _load_midi_file(path)
    counts: Counter[int] = Counter()
    for track in mid.tracks:
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0 and dmap.class_for(msg.note, tuple(classes)) is None:
                counts[msg.note] += 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------- MIDI ports
#: The virtual output port idm-host opens when no port is named (where the backend allows).
VIRTUAL_PORT_NAME = "idm-host"
#: Environment variable naming a mido backend, e.g. ``mido.backends.rtmidi/UNIX_JACK``.
BACKEND_ENV = "IDM_HOST_MIDI_BACKEND"
_NO_MIDI_HINT = (
    "no MIDI system is available here ({detail}). Start JACK and choose its backend "
    f"({BACKEND_ENV}=mido.backends.rtmidi/UNIX_JACK, or --backend), or use the OSC bridge instead: "
    "`idm-host serve` answers /idm/midi/notes with the same notes as /idm/midi/note messages"
)


def _backend(backend: str | None = None):
    """A :class:`mido.Backend`: ``backend``, else ``$IDM_HOST_MIDI_BACKEND``, else mido's default."""
    import mido

    name = backend or os.environ.get(BACKEND_ENV) or None
    if name is None:
        return mido.backend
    try:
        be = mido.Backend(name, load=True)
    except Exception as exc:  # ImportError, or an unknown rtmidi API name
        raise MidiError(f"cannot load MIDI backend {name!r} ({exc}); e.g. mido.backends.rtmidi/UNIX_JACK") from exc
    return be


def list_midi_outputs(*, backend: str | None = None) -> list[str]:
    """Names of the MIDI output ports the backend sees.

    Raises:
        MidiError: there is no MIDI system (e.g. no ALSA sequencer); the message names the OSC bridge.
    """
    be = _backend(backend)
    try:
        return list(be.get_output_names())
    except Exception as exc:  # rtmidi raises its own SystemError when ALSA/JACK is missing
        raise MidiError(_NO_MIDI_HINT.format(detail=str(exc).strip() or type(exc).__name__)) from exc


def open_midi_output(port: str | None = None, *, backend: str | None = None, virtual: bool | None = None):
    """Open a mido output port.

    Args:
        port: an output port name, or a unique part of one (``"idm-in"`` matches
            ``"RtMidiIn Client:idm-in"``). ``None`` opens a virtual port named ``idm-host``.
        backend: a mido backend name; default ``$IDM_HOST_MIDI_BACKEND`` or mido's own default.
        virtual: open a virtual port named ``port`` (default: only when ``port`` is ``None``).

    Raises:
        MidiError: no MIDI system, no such port (the message lists the ports), an ambiguous name,
            or a backend without virtual ports.
    """
    be = _backend(backend)
    if virtual is None:
        virtual = port is None
    name = port or VIRTUAL_PORT_NAME
    try:
        if virtual:
            return be.open_output(name, virtual=True)
        names = list(be.get_output_names())
    except NotImplementedError as exc:
        raise MidiError(f"MIDI backend {be.name!r} cannot open virtual ports; name an existing port with --port") from exc
    except Exception as exc:
        raise MidiError(_NO_MIDI_HINT.format(detail=str(exc).strip() or type(exc).__name__)) from exc
    matches = [n for n in names if n == name] or [n for n in names if name in n]
    if not matches:
        raise MidiError(
            f"no MIDI output port matches {name!r}; available: {', '.join(names) or 'none'} "
            "(leave out --port to open a virtual port named idm-host)"
        )
    if len(matches) > 1:
        raise MidiError(f"MIDI port name {name!r} is ambiguous: {', '.join(matches)}; give the full name")
    try:
        return be.open_output(matches[0])
    except Exception as exc:
        raise MidiError(f"cannot open MIDI output {matches[0]!r} ({exc})") from exc


def _timed_messages(source: "Transcription | PathLike", *, drum_map, velocity_curve, channel):
    """``[(time_s, mido.Message)]`` sorted by time, from a transcription or a ``.mid`` file."""
    import mido

    if isinstance(source, Transcription):
        out = []
        for e in note_events(source, drum_map=drum_map, velocity_curve=velocity_curve):
            out.append((e.time_s, 1, mido.Message("note_on", channel=channel, note=e.note, velocity=e.velocity)))
            out.append((e.time_s + e.length_s, 0, mido.Message("note_off", channel=channel, note=e.note, velocity=0)))
        out.sort(key=lambda x: (x[0], x[1]))
        return [(t, m) for t, _, m in out]
    if not isinstance(source, (str, os.PathLike)):
        raise MidiError(f"cannot send a {type(source).__name__}; give a Transcription or a .mid file")
    p = Path(source)
    mid = _load_midi_file(p)
    if mid.type == 2:
        raise MidiError(f"{p}: is a type 2 MIDI file; export it as type 0 or 1")
    tempo, now_s, out2 = 500000, 0.0, []
    for msg in mido.merge_tracks(mid.tracks):
        if msg.time:
            now_s += msg.time * tempo / (mid.ticks_per_beat * 1e6)
        if msg.type == "set_tempo":
            tempo = msg.tempo if msg.tempo > 0 else tempo
        elif not msg.is_meta and msg.type != "sysex":
            out2.append((now_s, msg.copy(time=0)))
    return out2


def send_midi(
    source: "Transcription | PathLike",
    port=None,
    *,
    realtime: bool = False,
    drum_map: "str | PathLike | DrumMap" = "gm",
    velocity_curve: VelocityCurve = "linear",
    channel: int = DRUM_CHANNEL,
    backend: str | None = None,
    progress=None,
    clock=None,
    sleep=None,
    settle_s: float = 0.1,
) -> int:
    """Send a transcription (or a ``.mid`` file's notes) to a MIDI output port.

    Args:
        source: a :class:`Transcription` (mapped through ``drum_map``) or a ``.mid`` file (sent as is).
        port: an open mido output port, a port name (see :func:`open_midi_output`), or ``None`` for a
            virtual port named ``idm-host``. A port opened here is closed at the end.
        realtime: play in time (note-ons at their times from now); otherwise send everything at once.
        drum_map, velocity_curve, channel: as in :func:`write_midi`.
        backend: mido backend name, e.g. ``"mido.backends.rtmidi/UNIX_JACK"``.
        progress: ``progress(fraction, message)``; raising :class:`~idm_host.errors.Cancelled` from it
            stops playback (all sounding notes are released).
        settle_s: for a port opened here, how long to wait after opening (so the connection exists
            before the first note) and before closing (so the backend delivers what is queued: JACK
            sends in its next process cycle).

    Returns:
        The number of messages sent.

    Raises:
        MidiError: no MIDI system (the message names the OSC alternative), or no such port.

    Example:
        >>> send_midi(analysis.transcription, "Superior Drummer", drum_map="superior-drummer-3",
        ...           realtime=True)  # doctest: +SKIP
    """
    import time

    messages = _timed_messages(source, drum_map=drum_map, velocity_curve=velocity_curve, channel=channel)
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    owned = port is None or isinstance(port, str)
    out = open_midi_output(port, backend=backend) if owned else port
    if owned and settle_s > 0:
        time.sleep(settle_s)
    sounding: set[tuple[int, int]] = set()
    sent = 0
    try:
        t0 = clock()
        total = len(messages)
        for i, (t, msg) in enumerate(messages):
            if realtime:
                wait = t0 + t - clock()
                if wait > 0:
                    sleep(wait)
            out.send(msg)
            sent += 1
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.add((msg.channel, msg.note))
            elif msg.type in ("note_on", "note_off"):
                sounding.discard((msg.channel, msg.note))
            if progress is not None and (i % 64 == 0 or i == total - 1):
                progress((i + 1) / total, "sending MIDI")
    except BaseException as exc:  # Cancelled, KeyboardInterrupt, a failing port
        import mido

        for ch, note in sorted(sounding):  # never leave a note hanging
            try:
                out.send(mido.Message("note_off", channel=ch, note=note, velocity=0))
            except Exception:  # pragma: no cover - the port itself failed
                break
        if isinstance(exc, IdmError) or not isinstance(exc, Exception):
            raise
        raise MidiError(f"sending MIDI failed after {sent} messages ({exc})") from exc
    finally:
        if owned:
            if settle_s > 0:
                time.sleep(settle_s)
            out.close()
    return sent
