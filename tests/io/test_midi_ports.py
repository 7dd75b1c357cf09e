"""MIDI out through real ports: python-rtmidi on a private JACK server (dummy driver), no mocks."""
from __future__ import annotations

import os
import time
from pathlib import Path

import mido
import pytest

from idm_host.classes import IDM_CLASSES
from idm_host.errors import Cancelled, MidiError
from idm_host.midi import (
    list_midi_outputs,
    open_midi_output,
    send_midi,
    to_midi_velocity,
    write_midi,
)
from idm_host.types import Transcription


def beat() -> Transcription:
    return Transcription.from_times(
        IDM_CLASSES, {"KD": [(0.0, 1.0), (0.3, 0.6)], "SD": [(0.15, 0.8)], "HH_CHH": [(0.0, 0.4), (0.15, 0.5)]}
    )


def expected_note_ons(t: Transcription) -> list[tuple[int, int]]:
    gm = {"KD": 36, "SD": 38, "HH_CHH": 42}
    ons = sorted((h.time_s, gm[c], to_midi_velocity(h.velocity)) for c in gm for h in t.hits[c])
    return [(n, v) for _, n, v in ons]


def drain(inp, n_expected: int, timeout_s: float = 5.0) -> list[tuple[float, mido.Message]]:
    got: list[tuple[float, mido.Message]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n_expected and time.monotonic() < deadline:
        for msg in inp.iter_pending():
            got.append((time.monotonic(), msg))
        time.sleep(0.002)
    return got


@pytest.fixture
def receiver(jack_server):
    be = mido.Backend(jack_server)
    inp = be.open_input("idm-test-in", virtual=True)
    yield be, inp
    inp.close()


def test_send_all_at_once_to_named_port(receiver, jack_server):
    be, inp = receiver
    assert any("idm-test-in" in n for n in list_midi_outputs(backend=jack_server))
    t = beat()
    n = send_midi(t, "idm-test-in", backend=jack_server)
    assert n == 2 * t.n_hits
    got = drain(inp, n)
    msgs = [m for _, m in got]
    assert len(msgs) == n
    assert all(m.channel == 9 for m in msgs)
    ons = [(m.note, m.velocity) for m in msgs if m.type == "note_on" and m.velocity > 0]
    assert ons == expected_note_ons(t)
    offs = [m for m in msgs if m.type == "note_off"]
    assert len(offs) == t.n_hits


def test_realtime_playback_keeps_time(receiver, jack_server):
    be, inp = receiver
    got: list[tuple[float, mido.Message]] = []
    inp.callback = lambda msg: got.append((time.monotonic(), msg))  # stamped on arrival
    t = Transcription.from_times(IDM_CLASSES, {"KD": [0.0, 0.25], "SD": [0.5]})
    start = time.monotonic()
    send_midi(t, "idm-test-in", backend=jack_server, realtime=True)
    deadline = time.monotonic() + 5
    while len(got) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    ons = [(ts - start, m.note) for ts, m in got if m.type == "note_on"]
    assert [n for _, n in ons] == [36, 36, 38]
    # it really waits (no upper bound on speed here: timing targets live in benchmarks)
    assert ons[1][0] - ons[0][0] >= 0.2 and ons[2][0] - ons[0][0] >= 0.45


def test_realtime_schedule_with_injected_clock(receiver, jack_server):
    be, inp = receiver
    now = [100.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(round(s, 6))
        now[0] += s

    t = Transcription.from_times(IDM_CLASSES, {"KD": [0.0, 1.0], "SD": [0.5]})
    send_midi(t, "idm-test-in", backend=jack_server, realtime=True, clock=lambda: now[0], sleep=sleep)
    # note-offs 50 ms after each note-on; three notes at 0, 0.5 and 1.0 s
    assert waits == [0.05, 0.45, 0.05, 0.45, 0.05]
    assert len(drain(inp, 6)) == 6


def test_virtual_output_port_named_idm_host(jack_server):
    be = mido.Backend(jack_server)
    out = open_midi_output(backend=jack_server)  # virtual, named idm-host
    try:
        names = be.get_input_names()
        src = [n for n in names if n.endswith(":idm-host")]
        assert src, names
        inp = be.open_input(src[0])  # a DAW would connect to it like this
        try:
            send_midi(beat(), out)  # an open port is used and left open
            got = drain(inp, 2 * beat().n_hits)
            assert [(m.note, m.velocity) for _, m in got if m.type == "note_on"] == expected_note_ons(beat())
            assert not out.closed
        finally:
            inp.close()
    finally:
        out.close()


def test_send_midi_file_as_is(receiver, jack_server, tmp_path):
    be, inp = receiver
    t = beat()
    path = write_midi(t, tmp_path / "b.mid", drum_map="superior-drummer-3")
    n = send_midi(path, "idm-test-in", backend=jack_server)
    got = drain(inp, n)
    assert len(got) == n == 2 * t.n_hits
    assert sorted({m.note for _, m in got}) == [36, 38, 42]


def test_cancel_releases_sounding_notes(receiver, jack_server):
    be, inp = receiver

    def progress(fraction, message):
        raise Cancelled("stop")

    t = Transcription.from_times(IDM_CLASSES, {"KD": [0.0, 5.0]})
    with pytest.raises(Cancelled):
        send_midi(t, "idm-test-in", backend=jack_server, realtime=True, progress=progress)
    got = [m for _, m in drain(inp, 2)]
    assert [m.type for m in got] == ["note_on", "note_off"] and got[1].note == 36


def test_unknown_port_lists_what_exists(receiver, jack_server):
    with pytest.raises(MidiError, match="no MIDI output port matches 'nope'.*idm-test-in"):
        send_midi(beat(), "nope", backend=jack_server)


def test_no_midi_system_names_the_osc_alternative(monkeypatch):
    monkeypatch.delenv("IDM_HOST_MIDI_BACKEND", raising=False)
    if Path("/dev/snd/seq").exists():  # a machine with ALSA: the default backend must work
        assert isinstance(list_midi_outputs(), list)
        return
    with pytest.raises(MidiError, match="no MIDI system.*OSC bridge.*/idm/midi/note"):
        list_midi_outputs()
    with pytest.raises(MidiError, match="no MIDI system.*OSC"):
        send_midi(beat(), None)


def test_jack_backend_without_server(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"no-such-server-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(MidiError, match="no MIDI system"):
        open_midi_output(backend="mido.backends.rtmidi/UNIX_JACK")


def test_bad_backend_name():
    with pytest.raises(MidiError, match="cannot load MIDI backend"):
        list_midi_outputs(backend="no.such.backend")
