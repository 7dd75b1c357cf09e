"""MIDI files: written by idm_host, read back by mido, by midicsv (an independent C parser) and by
pretty_midi (its own tick-to-seconds arithmetic), and imported again by read_midi."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idm_host.classes import GROUPS, IDM_CLASSES
from idm_host.errors import MidiError
from idm_host.midi import (
    from_midi_velocity,
    midi_bytes,
    read_midi,
    to_midi_velocity,
    unmapped_notes,
    write_midi,
)
from idm_host.drum_maps import load_drum_map
from idm_host.types import Transcription

GM = {"CY_CR": 49, "CY_RD": 51, "HH_CHH": 42, "HH_OHH": 46, "KD": 36, "SD": 38,
      "TT_HFT": 43, "TT_HMT": 50, "TT_LMT": 47}


def groove(duration_s: float = 4.0) -> Transcription:
    """A two-bar rock beat with every class and varied velocities."""
    times: dict[str, list[tuple[float, float]]] = {c: [] for c in IDM_CLASSES}
    for i in range(16):
        t = i * 0.25
        times["HH_CHH"].append((t, 0.3 + 0.04 * (i % 4)))
        if i % 4 == 0:
            times["KD"].append((t, 1.0))
        if i % 4 == 2:
            times["SD"].append((t, 0.85))
    times["HH_OHH"].append((3.875, 0.7))
    times["CY_CR"].append((0.0, 0.9))
    times["CY_RD"].append((2.125, 0.5))
    times["TT_HMT"].append((3.5, 0.6))
    times["TT_LMT"].append((3.625, 0.62))
    times["TT_HFT"].append((3.75, 0.64))
    return Transcription.from_times(IDM_CLASSES, times, duration_s)


def midicsv_rows(path: Path) -> list[list[str]]:
    exe = shutil.which("midicsv")
    assert exe, "midicsv is missing: apt-get install midicsv (listed in the Makefile's APT_PACKAGES)"
    out = subprocess.run([exe, str(path)], check=True, capture_output=True, text=True).stdout
    return [[f.strip() for f in line.split(",")] for line in out.splitlines() if line.strip()]


def assert_same_hits(a: Transcription, b: Transcription, tol_s: float, vel_tol: float = 0.5 / 127 + 1e-9):
    assert a.classes == b.classes
    for c in a.classes:
        ha, hb = a.hits[c], b.hits[c]
        assert len(ha) == len(hb), (c, ha, hb)
        for x, y in zip(ha, hb):
            assert abs(x.time_s - y.time_s) <= tol_s, (c, x, y)
            assert abs(x.velocity - y.velocity) <= vel_tol, (c, x, y)


@pytest.mark.parametrize("layout", ["single", "per-class"])
@pytest.mark.parametrize("ppq,bpm", [(480, 120.0), (960, 93.5)])
def test_round_trip_mido_midicsv_pretty_midi(tmp_path, layout, ppq, bpm):
    t = groove()
    path = write_midi(t, tmp_path / "g.mid", tempo_bpm=bpm, ppq=ppq, layout=layout)
    one_tick_s = 60.0 / bpm / ppq

    # 1. mido: file structure
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == ppq
    assert len(mid.tracks) == (2 if layout == "single" else 1 + len(IDM_CLASSES))
    metas = {m.type: m for m in mid.tracks[0] if m.is_meta}
    assert metas["set_tempo"].tempo == mido.bpm2tempo(bpm)
    assert (metas["time_signature"].numerator, metas["time_signature"].denominator) == (4, 4)
    ons = [m for tr in mid.tracks for m in tr if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in ons} == {9}
    assert len(ons) == t.n_hits
    assert abs(mid.length - 4.0) < one_tick_s

    # 2. midicsv (independent C parser): header, tempo and every note-on tick/note/velocity
    rows = midicsv_rows(path)
    header = next(r for r in rows if r[2] == "Header")
    assert header[3:] == ["1", str(len(mid.tracks)), str(ppq)]
    assert any(r[2] == "Tempo" and int(r[3]) == mido.bpm2tempo(bpm) for r in rows)
    csv_ons = sorted((int(r[1]), int(r[4]), int(r[5])) for r in rows if r[2] == "Note_on_c" and int(r[5]) > 0)
    assert all(r[3] == "9" for r in rows if r[2] in ("Note_on_c", "Note_off_c"))
    expected = sorted(
        (round(h.time_s * ppq * bpm / 60.0), GM[c], to_midi_velocity(h.velocity))
        for c in IDM_CLASSES for h in t.hits[c]
    )
    assert csv_ons == expected
    # every note-on has a later note-off of the same note
    offs = [(int(r[1]), int(r[4])) for r in rows if r[2] == "Note_off_c"]
    assert len(offs) == len(csv_ons)

    # 3. pretty_midi: its own tempo map gives the note times in seconds
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    assert all(inst.is_drum for inst in pm.instruments)
    pm_notes = sorted((n.start, n.pitch) for inst in pm.instruments for n in inst.notes)
    ours = sorted((h.time_s, GM[c]) for c in IDM_CLASSES for h in t.hits[c])
    assert len(pm_notes) == len(ours)
    for (ts, p), (to, q) in zip(pm_notes, ours):
        assert p == q and abs(ts - to) <= one_tick_s

    # 4. our importer gives the same hits within one tick
    back = read_midi(path)
    assert_same_hits(t, back, tol_s=one_tick_s)
    assert back.duration_s == pytest.approx(4.0, abs=one_tick_s)


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "mine.mid"
    path.write_bytes(b"user data")
    with pytest.raises(MidiError, match="already exists"):
        write_midi(groove(), path)
    assert path.read_bytes() == b"user data"
    write_midi(groove(), path, overwrite=True)
    assert mido.MidiFile(path).type == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.mid"]  # no temp files left


def test_bad_arguments_write_nothing(tmp_path):
    t = groove()
    for kwargs, match in [
        ({"tempo_bpm": 0}, "tempo"), ({"tempo_bpm": float("nan")}, "tempo"), ({"ppq": 7}, "PPQ"),
        ({"layout": "stacked"}, "layout"), ({"velocity_curve": "loud"}, "velocity curve"),
        ({"velocity_curve": -1.0}, "velocity curve"), ({"drum_map": "no-such-map"}, "unknown drum map"),
        ({"channel": 16}, "channel"), ({"note_length_s": 0}, "note length"),
        ({"time_signature": (4, 3)}, "time signature"),
    ]:
        with pytest.raises(MidiError, match=match):
            write_midi(t, tmp_path / "x.mid", **kwargs)
    with pytest.raises(MidiError, match="Transcription"):
        write_midi({"KD": [0.0]}, tmp_path / "x.mid")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_empty_transcription_writes_meta_only(tmp_path):
    t = Transcription(IDM_CLASSES, {}, 2.5)
    path = write_midi(t, tmp_path / "empty.mid")
    back = read_midi(path)
    assert back.n_hits == 0 and back.duration_s == pytest.approx(2.5, abs=1e-3)


def test_velocity_curves_round_trip():
    for curve in ("linear", "soft", "hard", 2.0):
        for m in range(1, 128):
            assert to_midi_velocity(from_midi_velocity(m, curve), curve) == m
    assert to_midi_velocity(0.25, "soft") > to_midi_velocity(0.25) > to_midi_velocity(0.25, "hard")
    assert to_midi_velocity(0.0) == 1  # never a note-on with velocity 0


def test_soft_curve_file_round_trip(tmp_path):
    t = groove()
    path = write_midi(t, tmp_path / "soft.mid", velocity_curve="soft")
    back = read_midi(path, velocity_curve="soft")
    # quantisation error in the soft domain: |dv| <= 0.5/127 * dv/dm, bounded generously
    assert_same_hits(t, back, tol_s=1 / 960, vel_tol=0.02)


def test_close_repeats_are_cut_short_and_shared_notes_keep_the_louder(tmp_path):
    t = Transcription.from_times(["HH_CHH", "HH_OHH"],
                                 {"HH_CHH": [(1.0, 0.2), (1.01, 0.3)], "HH_OHH": [(1.0, 0.9)]})
    m = load_drum_map("gm").to_dict()
    m["name"] = "one-hat"
    m["notes"]["HH_OHH"] = 42  # both hats on one note
    m["read_notes"]["HH_OHH"] = []
    del m["read_notes"]["HH_OHH"]
    mid = mido.MidiFile(file=__import__("io").BytesIO(midi_bytes(t, drum_map=_as_file(tmp_path, m))))
    events = [(msg.type, msg.note, msg.velocity) for msg in mid.tracks[1] if msg.type.startswith("note")]
    # at t=1.0 the louder of the two hits on note 42 wins; the first note ends before the re-strike
    assert events[0] == ("note_on", 42, to_midi_velocity(0.9))
    assert events[1][0] == "note_off" and events[2] == ("note_on", 42, to_midi_velocity(0.3))
    ticks = []
    now = 0
    for msg in mid.tracks[1]:
        now += msg.time
        if msg.type.startswith("note"):
            ticks.append(now)
    assert ticks[1] <= ticks[2]


def _as_file(tmp_path: Path, data: dict) -> Path:
    import json

    p = tmp_path / f"{data['name']}.json"
    p.write_text(json.dumps(data))
    return p


def test_merged_groups_write_and_read(tmp_path):
    t = groove().merged()
    path = write_midi(t, tmp_path / "g5.mid")
    notes = {m.note for m in mido.MidiFile(path).tracks[1] if m.type == "note_on"}
    assert notes == {36, 38, 42, 47, 49}  # group representatives in GM
    back = read_midi(path, classes=GROUPS)
    assert back.classes == GROUPS
    assert [len(back.hits[g]) for g in GROUPS] == [len(t.hits[g]) for g in GROUPS]


# ------------------------------------------------------------------ import of DAW-made files
def _type0_with_tempo_change(path: Path, ppq: int = 96) -> None:
    """Type 0, odd PPQ, a tempo change, note-on velocity 0 as note-off, a non-drum channel, and a
    note outside the map."""
    mid = mido.MidiFile(type=0, ticks_per_beat=ppq)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    tr.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0))       # 0.0 s
    tr.append(mido.Message("note_on", channel=9, note=36, velocity=0, time=10))        # note-off
    tr.append(mido.Message("note_on", channel=0, note=38, velocity=90, time=ppq - 10))  # 0.5 s, ch 1
    tr.append(mido.Message("note_on", channel=0, note=38, velocity=0, time=10))
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=ppq - 10))  # at 1.0 s
    tr.append(mido.Message("note_on", channel=9, note=44, velocity=64, time=ppq))      # 2.0 s pedal hat
    tr.append(mido.Message("note_off", channel=9, note=44, velocity=0, time=10))
    tr.append(mido.Message("note_on", channel=9, note=75, velocity=64, time=0))        # claves: unmapped
    tr.append(mido.Message("note_off", channel=9, note=75, velocity=0, time=ppq - 10))
    tr.append(mido.MetaMessage("end_of_track", time=0))
    mid.save(path)


def test_import_type0_tempo_changes_any_ppq(tmp_path, caplog):
    path = tmp_path / "daw.mid"
    _type0_with_tempo_change(path)
    with caplog.at_level(logging.WARNING, logger="idm_host.midi"):
        t = read_midi(path)
    assert t.times("KD").tolist() == [0.0]
    assert t.times("SD") == pytest.approx([0.5])
    assert t.times("HH_CHH") == pytest.approx([2.0])  # pedal hat (44) reads as closed hat
    assert t.hits["KD"][0].velocity == pytest.approx(100 / 127)
    assert t.duration_s == pytest.approx(3.0)
    # an independent tempo map agrees
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    starts = sorted(n.start for inst in pm.instruments for n in inst.notes)
    assert starts == pytest.approx([0.0, 0.5, 2.0, 2.0 + 10 / 96])  # 75 starts 10 ticks after 44
    assert "75 (D#4)" in caplog.text and "not in drum map 'gm'" in caplog.text
    assert unmapped_notes(path) == {75: 1}
    # only the drum channel
    assert read_midi(path, channels=[9], on_unmapped="ignore").times("SD").size == 0
    with pytest.raises(MidiError, match="75 \\(D#4\\)"):
        read_midi(path, on_unmapped="error")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"RIFF....WAVEfmt ", "not a Standard MIDI File"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\xff\xff\x00", "corrupt"),
        (b"MThd\x00\x00\x00\x06\x00\x01", "corrupt"),
    ],
)
def test_bad_files_raise_midi_error(tmp_path, content, match):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MidiError, match=match):
        read_midi(path)
    assert path.read_bytes() == content


def test_missing_folder_and_type2(tmp_path):
    with pytest.raises(MidiError, match="not found"):
        read_midi(tmp_path / "nope.mid")
    with pytest.raises(MidiError, match="folder"):
        read_midi(tmp_path)
    mid = mido.MidiFile(type=2)
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=1)]))
    mid.save(tmp_path / "t2.mid")
    with pytest.raises(MidiError, match="type 2"):
        read_midi(tmp_path / "t2.mid")


hit_lists = st.lists(
    st.tuples(st.floats(0.0, 30.0, allow_nan=False), st.integers(1, 127)), max_size=12
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.fixed_dictionaries({c: hit_lists for c in IDM_CLASSES}),
       bpm=st.floats(40.0, 240.0), ppq=st.sampled_from([96, 480, 960]))
def test_round_trip_property(tmp_path, data, bpm, ppq):
    # hits of one class at least 2 ticks apart (closer ones are joined by design)
    one_tick_s = 60.0 / bpm / ppq
    times: dict[str, list[tuple[float, float]]] = {}
    for c, hits in data.items():
        kept: list[tuple[float, float]] = []
        for t, v in sorted(hits):
            if not kept or t - kept[-1][0] > max(3 * one_tick_s, 2e-3):
                kept.append((t, v / 127))
        times[c] = kept
    t = Transcription.from_times(IDM_CLASSES, times)
    path = tmp_path / f"p{bpm:.3f}-{ppq}.mid"
    write_midi(t, path, tempo_bpm=bpm, ppq=ppq, overwrite=True)
    back = read_midi(path)
    assert_same_hits(t, back, tol_s=one_tick_s * 0.5 + 1e-9, vel_tol=1e-9)
