"""``idm-host transcribe`` and ``idm-host midi``: real model, real files, real ports, subprocess exits."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import mido
import pytest

from idm_host.cli import main
from idm_host.midi import read_midi
from idm_host.types import Transcription


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idm_host", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


@pytest.mark.slow
def test_transcribe_writes_midi_and_onsets(official_model, separator, demo_loop, tmp_path):
    mid, js = tmp_path / "drums.mid", tmp_path / "onsets.json"
    r = cli("transcribe", str(demo_loop), "--midi", str(mid), "--onsets-json", str(js),
            "--drum-map", "superior-drummer-3", "--tempo", "100", "--model", official_model, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["drum_map"] == "superior-drummer-3" and summary["tempo_bpm"] == 100.0
    expected = separator.transcribe(demo_loop)
    from_json = Transcription.from_json(js.read_text())
    assert from_json.n_hits == expected.n_hits == sum(summary["hits"].values())
    back = read_midi(mid, drum_map="superior-drummer-3", on_unmapped="error")
    one_tick = 60 / 100 / 480
    for c in expected.classes:
        assert back.times(c) == pytest.approx(expected.times(c), abs=one_tick)
    assert mido.MidiFile(mid).tracks[0][1].tempo == mido.bpm2tempo(100)
    # refuses to overwrite, leaves the file alone
    before = mid.read_bytes()
    r = cli("transcribe", str(demo_loop), "--midi", str(mid), "--model", official_model)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "already exists" in r.stderr
    assert mid.read_bytes() == before


def test_transcribe_bad_input_one_line_errors(tmp_path):
    for args, needle in [
        (["transcribe", str(tmp_path / "missing.wav"), "--midi", str(tmp_path / "o.mid")], "file not found"),
        (["transcribe", str(tmp_path)], "nothing to write"),
        (["transcribe", __file__, "--midi", str(tmp_path / "o.mid"), "--drum-map", "nope"], "unknown drum map"),
        (["transcribe", __file__, "--midi", str(tmp_path / "o.mid"), "--tempo", "fast"], "not a number"),
    ]:
        r = cli(*args, timeout=60)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("idm-host: error:") and r.stderr.count("\n") == 1 and needle in r.stderr
    assert not (tmp_path / "o.mid").exists()


def test_midi_maps_lists_both_note_conventions(capsys):
    assert main(["midi", "maps", "--json"]) == 0
    maps = json.loads(capsys.readouterr().out)
    assert len(maps) >= 8
    gm = next(m for m in maps if m["name"] == "gm")
    kick = next(n for n in gm["notes"] if n["class"] == "KD")
    assert kick == {"class": "KD", "note": 36, "name": "Bass Drum 1", "daw": "C1", "fl_studio": "C3"}
    assert main(["midi", "maps", "ableton-drum-rack"]) == 0
    out = capsys.readouterr().out
    assert "C1" in out and "C3" in out and "FL" in out


def test_midi_send_to_jack_port(jack_server, tmp_path, capsys):
    be = mido.Backend(jack_server)
    inp = be.open_input("idm-cli-in", virtual=True)
    try:
        t = Transcription.from_times(["KD", "SD"], {"KD": [0.0, 0.5], "SD": [0.25]})
        js = tmp_path / "onsets.json"
        js.write_text(t.to_json())
        assert main(["midi", "send", str(js), "--port", "idm-cli-in", "--backend", jack_server, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["messages"] == 6
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 6 and time.monotonic() < deadline:
            got += list(inp.iter_pending())
            time.sleep(0.01)
        assert [(m.type, m.note) for m in got if m.type == "note_on"] == [("note_on", 36), ("note_on", 38), ("note_on", 36)]
    finally:
        inp.close()


def test_midi_send_without_midi_system_points_to_osc(tmp_path, monkeypatch):
    monkeypatch.delenv("IDM_HOST_MIDI_BACKEND", raising=False)
    mid = tmp_path / "x.mid"
    from idm_host.midi import write_midi

    write_midi(Transcription.from_times(["KD"], {"KD": [0.0]}), mid)
    if os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")  # the message path needs a machine without one
    r = cli("midi", "send", str(mid), timeout=60)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]  # ALSA itself prints a line before ours
    assert last.startswith("idm-host: error: no MIDI system") and "idm-host serve" in last


def _notes(path, bpm):
    """(seconds, note, velocity) of every note-on, read with mido alone."""
    m = mido.MidiFile(path)
    ticks, out = 0, []
    for msg in mido.merge_tracks(m.tracks):
        ticks += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out.append((mido.tick2second(ticks, m.ticks_per_beat, mido.bpm2tempo(bpm)), msg.note, msg.velocity))
    return out


@pytest.mark.slow
def test_transcribe_takes_its_hits_from_the_transcription_network_when_asked(tmp_path):
    """``--transcriber default``: the bundled loop's fill ends on two floor toms (9.00, 9.14 s,
    velocity ~0.88) that the network writes as GM high floor toms at about their velocity, with
    every drum of the loop in the file; ``--transcriber none`` writes the IDM head's other hits."""
    from pathlib import Path

    from idm_host.demo import pattern

    loop = Path(__file__).resolve().parents[2] / "examples" / "drum-loop.flac"
    files = {}
    for choice in ("default", "none"):
        files[choice] = tmp_path / f"{choice}.mid"
        assert main(["transcribe", str(loop), "--midi", str(files[choice]), "--transcriber", choice,
                     "--tempo", "100", "--quiet"]) == 0
    net = _notes(files["default"], 100)
    for t, v in pattern()["TT_HFT"][-2:]:
        hit = [n for n in net if n[1] == 43 and abs(n[0] - t) <= 0.011]
        assert hit and 0.75 * v * 127 <= hit[0][2] <= 1.25 * v * 127, (t, v, hit)
    assert {36, 38, 42, 46, 43, 47, 50, 49, 51} <= {n[1] for n in net}  # GM notes of all 9 classes
    assert _notes(files["none"], 100) != net
