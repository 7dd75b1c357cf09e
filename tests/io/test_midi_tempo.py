"""Every MIDI file the project writes carries the song's tempo and downbeat, the same way
(:func:`idm_host.tempo.song_tempo`): the estimate, or the tempo the user set. Read back with mido,
with midicsv (an independent C parser) and with pretty_midi's bar lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import mido
import numpy as np
import pretty_midi
import pytest
from osckit import SR, UdpPeer, click_analyze, click_audio, stream_audio

from idm_host.midi import read_midi, write_midi
from idm_host.tempo import Tempo, estimate_tempo, song_tempo
from idm_host.types import Transcription


def midicsv(path) -> list[list[str]]:
    out = subprocess.run(["midicsv", str(path)], capture_output=True, text=True, check=True).stdout
    return [[f.strip() for f in line.split(",")] for line in out.splitlines() if line.strip()]


def song_of(path) -> tuple[int, int, list[float]]:
    """(microseconds per beat at the last tempo change, beats per bar there, bar-line times) as the file says them,
    checked to agree between mido, midicsv and pretty_midi."""
    mid = mido.MidiFile(path)
    metas = [m for m in mid.tracks[0] if m.type in ("set_tempo", "time_signature")]
    us = [m.tempo for m in metas if m.type == "set_tempo"]
    sigs = [(m.numerator, m.denominator) for m in metas if m.type == "time_signature"]
    rows = midicsv(path)
    assert [int(r[3]) for r in rows if r[2] == "Tempo"] == us
    assert [(int(r[3]), 2 ** int(r[4])) for r in rows if r[2] == "Time_signature"] == sigs
    pm = pretty_midi.PrettyMIDI(str(path))
    _, bpms = pm.get_tempo_changes()
    assert bpms[-1] == pytest.approx(mido.tempo2bpm(us[-1]), rel=1e-9)
    assert sigs[-1][1] == 4
    return us[-1], sigs[-1][0], [float(t) for t in pm.get_downbeats()]


def assert_carries(path, tempo: Tempo, duration_s: float) -> None:
    """The file's tempo is ``tempo``'s (to the microsecond per beat) and its bar lines are the
    song's: every ``bar_s`` from the downbeat (a pickup bar may come first)."""
    us, beats, downbeats = song_of(path)
    assert us == mido.bpm2tempo(tempo.bpm) and beats == tempo.beats_per_bar
    expect = tempo.downbeat_s % tempo.bar_s + tempo.bar_s * np.arange(0, int(duration_s / tempo.bar_s) + 1)
    expect = expect[expect < duration_s - 1e-6]
    got = np.array([t for t in downbeats if t > 1e-3 or tempo.downbeat_s % tempo.bar_s < 1e-3])
    got = got[got < duration_s - 1e-6]
    # pretty_midi lists bars up to the last event
    assert len(got) >= min(len(expect), 2)
    n = min(len(got), len(expect))
    # MIDI stores a tempo as whole microseconds per beat: each beat may be 0.5 us off the song's
    beats_so_far = (expect[:n] / tempo.beat_s) + 1
    assert np.all(np.abs(got[:n] - expect[:n]) <= 0.5e-6 * beats_so_far + 1e-6), (got[:n], expect[:n])


def groove(bpm: float, downbeat_s: float, bars: int, beats_per_bar: int = 4) -> Transcription:
    beat = 60.0 / bpm
    n = bars * beats_per_bar
    kd = [downbeat_s + k * beat for k in range(n) if k % beats_per_bar == 0]
    sd = [downbeat_s + k * beat for k in range(n) if k % beats_per_bar == beats_per_bar // 2]
    hh = [downbeat_s + k * beat / 2 for k in range(2 * n)]
    return Transcription.from_times(("KD", "SD", "HH_CHH"), {"KD": kd, "SD": sd, "HH_CHH": hh},
                                    downbeat_s + n * beat + 0.5)


@pytest.mark.parametrize("tempo", [Tempo(120.0, 0.0, 4), Tempo(105.5, 0.37, 4), Tempo(96.0, 0.25, 3),
                                   Tempo(140.0, 1.9, 7), Tempo(88.0, 0.003, 4), Tempo(100.0, 2.395, 4)])
def test_the_tempo_map_puts_bars_on_the_songs_bar_lines(tmp_path, tempo):
    tr = groove(tempo.bpm, tempo.downbeat_s % tempo.bar_s, bars=4, beats_per_bar=tempo.beats_per_bar)
    path = write_midi(tr, tmp_path / "t.mid", tempo=tempo)
    assert_carries(path, tempo, tr.duration_s)
    back = read_midi(path, classes=tr.classes)  # and the hits keep their times in seconds
    one_tick = 60.0 / tempo.bpm / 480
    for c in tr.classes:
        assert back.times(c) == pytest.approx(tr.times(c), abs=one_tick)


def test_without_a_tempo_the_estimate_is_written(tmp_path):
    tr = groove(105.5, 0.41, bars=8)
    est = estimate_tempo(tr.hits, duration_s=tr.duration_s)
    assert est.bpm == pytest.approx(105.5, abs=0.2) and est.downbeat_s == pytest.approx(0.41, abs=0.01)
    assert song_tempo(tr) == est
    assert_carries(write_midi(tr, tmp_path / "e.mid"), est, tr.duration_s)
    # a BPM the user typed (no downbeat given) counts bars from 0 s
    assert_carries(write_midi(tr, tmp_path / "u.mid", tempo_bpm=90.0), Tempo(90.0, 0.0), tr.duration_s)


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "idm_host", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


@pytest.mark.slow
def test_separate_and_transcribe_write_the_same_estimated_tempo(official_model, demo_loop, tmp_path):
    r = _cli("separate", str(demo_loop), "--out", str(tmp_path / "sep"), "--model", official_model, "--quiet")
    assert r.returncode == 0, r.stderr
    (mid,) = list((tmp_path / "sep").rglob("transcription.mid"))
    tr = Transcription.from_json(next(mid.parent.glob("onsets.json")).read_text())
    est = estimate_tempo(tr.hits, duration_s=tr.duration_s)
    assert_carries(mid, est, tr.duration_s)
    out = tmp_path / "t.mid"
    r = _cli("transcribe", str(demo_loop), "--midi", str(out), "--model", official_model, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tempo_bpm"] == est.bpm
    assert_carries(out, est, tr.duration_s)
    assert mido.MidiFile(out).tracks[0][:4] == mido.MidiFile(mid).tracks[0][:4]


def test_osc_export_and_job_midi_carry_the_estimate(tmp_path):
    from idm_host.osc import OscServer

    beat = 60.0 / 105.5
    kicks = [0.3 + k * beat for k in range(0, 16, 2)]
    snares = [0.3 + k * beat for k in range(1, 16, 2)]
    audio = click_audio(kicks, length_s=0.3 + 16 * beat + 0.5, negative=snares)
    # what click_analyze will find: each click at its own sample
    exact = Transcription.from_times(("KD", "SD"), {
        "KD": [(round(t * SR) / SR, 0.9) for t in kicks], "SD": [(round(t * SR) / SR, 0.9) for t in snares]},
        audio.shape[1] / SR)
    est = song_tempo(exact)
    srv = OscServer(analyze=click_analyze, port=0, out_dir=tmp_path / "osc-out").start()
    try:
        udp = UdpPeer(srv.udp_address)
        stream_audio(udp, 5, audio)
        job_mid = udp.wait_for("/idm/midi", where=lambda m: m.params[0] == 5)[0].params[1]
        udp.wait_for("/idm/done")
        out = tmp_path / "export.mid"
        udp.send("/idm/export/midi", 5, str(out), "gm")
        udp.wait_for("/idm/midi", where=lambda m: m.params[1] == str(out))
        udp.close()
    finally:
        srv.stop()
    for path in (job_mid, out):
        assert_carries(path, est, exact.duration_s)
