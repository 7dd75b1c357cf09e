"""Drum MIDI reading (files written with mido here) and the seeded groove generator."""
from __future__ import annotations

import mido
import numpy as np
import pytest

from idm_host.classes import IDM_CLASSES
from idm_host.errors import MidiError
from idm_host.train.kits import PATTERN_NOTES
from idm_host.train.patterns import (MAX_BPM, MIN_BPM, STYLES, Pattern, PatternSource, find_midi_files,
                                     generate_groove, read_drum_midi)


def write_midi(path, notes, *, channel=9, bpm=100.0, tpb=480):
    """notes: (beat, note, velocity 1..127)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta, track = mido.MidiTrack(), mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    mid.tracks += [meta, track]
    events = []
    for beat, note, vel in notes:
        events.append((int(beat * tpb), "note_on", note, vel))
        events.append((int(beat * tpb) + 60, "note_off", note, 0))
    events.sort()
    now = 0
    for tick, kind, note, vel in events:
        track.append(mido.Message(kind, note=note, velocity=vel, channel=channel, time=tick - now))
        now = tick
    mid.save(str(path))
    return path


def test_read_drum_midi(tmp_path):
    path = write_midi(tmp_path / "a.mid", [(0, 36, 127), (1, 38, 64), (1, 42, 100), (2, 44, 50), (3, 39, 90)])
    p = read_drum_midi(path)
    assert p.tempo_bpm == pytest.approx(100.0)
    np.testing.assert_allclose(p.times_s, [0.0, 0.6, 0.6, 1.2, 1.8], atol=1e-6)
    assert list(p.notes) == [36, 38, 42, 44, 39]
    np.testing.assert_allclose(p.velocities, [1.0, 64 / 127, 100 / 127, 50 / 127, 90 / 127], rtol=1e-6)
    tr = p.to_transcription(IDM_CLASSES)
    assert [h.time_s for h in tr.hits["HH_CHH"]] == pytest.approx([0.6, 1.2])  # 42 and pedal 44
    assert tr.n_hits == 4  # the clap (39) has no class


def test_midi_on_another_channel_and_bad_files(tmp_path):
    p = read_drum_midi(write_midi(tmp_path / "ch1.mid", [(0, 36, 100)], channel=0))
    assert list(p.notes) == [36]
    (tmp_path / "junk.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(MidiError, match="junk.mid: not a readable MIDI file"):
        read_drum_midi(tmp_path / "junk.mid")
    empty = mido.MidiFile()
    empty.tracks.append(mido.MidiTrack())
    empty.save(str(tmp_path / "empty.mid"))
    with pytest.raises(MidiError, match="holds no notes"):
        read_drum_midi(tmp_path / "empty.mid")
    with pytest.raises(MidiError, match="not found"):
        find_midi_files([tmp_path / "nope"])


@pytest.mark.parametrize("style", STYLES)
def test_every_style(style):
    p = generate_groove(np.random.default_rng(5), style=style, duration_s=6.0)
    assert p.style == style and p.duration_s == 6.0
    assert MIN_BPM <= p.tempo_bpm <= MAX_BPM
    assert np.all(np.diff(p.times_s) >= 0) and p.times_s.min() >= 0 and p.times_s.max() < 6.0
    assert np.all((p.velocities > 0) & (p.velocities <= 1))
    assert {"KD", "SD"} <= p.classes_present()
    assert all(int(n) in PATTERN_NOTES for n in p.notes)


def test_generator_is_seeded_and_varied():
    a = generate_groove(np.random.default_rng(11), duration_s=8.0)
    b = generate_groove(np.random.default_rng(11), duration_s=8.0)
    np.testing.assert_array_equal(a.times_s, b.times_s)
    np.testing.assert_array_equal(a.notes, b.notes)
    c = generate_groove(np.random.default_rng(12), duration_s=8.0)
    assert a.n_hits != c.n_hits or not np.array_equal(a.times_s, c.times_s)


def test_generator_plays_every_class_often_enough():
    rng = np.random.default_rng(0)
    counts = {c: 0 for c in IDM_CLASSES}
    n = 140
    ghosts = 0
    for i in range(n):
        p = generate_groove(rng, style=STYLES[i % len(STYLES)], duration_s=6.0)
        for c in p.classes_present():
            counts[c] += 1
        ghosts += int(np.sum((p.velocities < 0.4) & np.isin(p.notes, [37, 38, 40])))
    share = {c: counts[c] / n for c in IDM_CLASSES}
    assert min(share[c] for c in ("TT_HFT", "TT_LMT", "TT_HMT")) > 0.15, share
    assert share["CY_CR"] > 0.6 and share["CY_RD"] > 0.15 and share["HH_OHH"] > 0.3, share
    assert ghosts > n  # ghost notes are common


def test_humanised_timing_is_off_grid_but_electronic_is_not():
    p = generate_groove(np.random.default_rng(3), style="electronic", duration_s=6.0, tempo_bpm=120.0)
    step = 60 / 120 / 4
    np.testing.assert_allclose(p.times_s / step, np.round(p.times_s / step), atol=1e-9)
    q = generate_groove(np.random.default_rng(3), style="rock", duration_s=6.0, tempo_bpm=120.0)
    dev = np.abs(q.times_s / step - np.round(q.times_s / step)) * step
    assert 0.001 < np.median(dev) < 0.02


def test_bad_generator_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown groove style"):
        generate_groove(rng, style="polka")
    with pytest.raises(ValueError, match="outside 60..200"):
        generate_groove(rng, style="rock", tempo_bpm=250)


def test_pattern_source_mixes_midi_and_generator(tmp_path):
    (tmp_path / "m").mkdir()
    write_midi(tmp_path / "m" / "x.mid", [(b / 2, 36 if b % 2 == 0 else 38, 100) for b in range(64)], bpm=120)
    src = PatternSource([tmp_path / "m"], generator_weight=0.5)
    assert len(src.files) == 1
    rng = np.random.default_rng(0)
    styles = {src.sample(rng, 3.0).style for _ in range(30)}
    assert "midi" in styles and len(styles) > 1
    w = src.sample(np.random.default_rng(1), 3.0)
    assert w.duration_s == 3.0 and (w.times_s < 3.0).all()


def test_crop_and_transcription_join():
    p = Pattern.from_hits([(0.5, 42, 0.5), (0.5004, 44, 0.9), (1.5, 36, 1.0), (2.5, 38, 0.7)], 3.0)
    c = p.crop(1.0, 2.0)
    np.testing.assert_allclose(c.times_s, [0.5, 1.5])
    tr = p.to_transcription(IDM_CLASSES)
    assert len(tr.hits["HH_CHH"]) == 1 and tr.hits["HH_CHH"][0].velocity == pytest.approx(0.9)
