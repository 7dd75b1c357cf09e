"""Drum maps: every shipped map loads, covers every model class, names its source, and survives a MIDI
round trip; broken map files are refused with a clear PresetError."""
from __future__ import annotations

import json

import mido
import pytest

from idm_host.classes import IDM_CLASSES
from idm_host.drum_maps import (
    DrumMap,
    drum_maps_dir,
    list_drum_maps,
    load_drum_map,
    note_name,
)
from idm_host.errors import PresetError, SchemaTooNewError
from idm_host.midi import read_midi, write_midi
from idm_host.types import Transcription

EXPECTED = {
    "gm", "superior-drummer-3", "ezdrummer-3", "addictive-drums-2", "steven-slate-drums-5", "bfd3",
    "ableton-drum-rack", "mt-power-drumkit-2",
}


def test_all_expected_maps_ship():
    files = {p.stem for p in drum_maps_dir().glob("*.json")}
    assert EXPECTED <= files
    assert EXPECTED <= {m.name for m in list_drum_maps()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_map_covers_every_class_and_names_its_source(name):
    m = load_drum_map(name)
    assert m.name == name and m.path is not None and m.path.stem == name
    assert set(IDM_CLASSES) <= set(m.notes)
    assert len(m.source) > 40 and len(m.verified) > 20
    for c in IDM_CLASSES:
        note = m.note_for(c)
        assert 0 <= note <= 127
        assert m.class_for(note) == c, f"{name}: note {note} of {c} reads back as {m.class_for(note)}"
        d = m.describe(c)
        assert d["daw"] == note_name(note) and d["fl_studio"] == note_name(note, "fl_studio")
        assert d["name"], f"{name}: note {note} has no name"
    # the raw file states both naming conventions for every note it uses
    raw = json.loads(m.path.read_text())
    assert raw["schema_version"] == 1
    for key, entry in raw["note_names"].items():
        assert {"name", "daw", "fl_studio"} <= set(entry)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_map_midi_round_trip(tmp_path, name):
    t = Transcription.from_times(IDM_CLASSES, {c: [(0.5 * i + 0.1, 0.8)] for i, c in enumerate(IDM_CLASSES)})
    path = write_midi(t, tmp_path / f"{name}.mid", drum_map=name)
    written = {m.note for m in mido.MidiFile(path).tracks[1] if m.type == "note_on"}
    assert written == {load_drum_map(name).note_for(c) for c in IDM_CLASSES}
    back = read_midi(path, drum_map=name, on_unmapped="error")
    for c in IDM_CLASSES:
        assert len(back.hits[c]) == 1, (name, c)


def test_note_name_conventions():
    assert note_name(36) == "C1" and note_name(36, "fl_studio") == "C3"
    assert note_name(60) == "C3" and note_name(60, "fl_studio") == "C5"
    assert note_name(0) == "C-2" and note_name(127) == "G8"
    with pytest.raises(PresetError):
        note_name(128)
    with pytest.raises(PresetError):
        note_name(36, "yamaha")


def _gm() -> dict:
    return load_drum_map("gm").to_dict()


@pytest.mark.parametrize(
    "mutate,match,exc",
    [
        (lambda d: d["notes"].pop("TT_HMT"), "no note for TT_HMT", PresetError),
        (lambda d: d["notes"].update(KD=128), "not a MIDI note", PresetError),
        (lambda d: d["notes"].update(KD="C1"), "not a MIDI note", PresetError),
        (lambda d: d["notes"].update(COWBELL=56), "unknown class", PresetError),
        (lambda d: d["read_notes"].update(SD=[36]), "read as both", PresetError),
        (lambda d: d["note_names"]["36"].update(daw="C2"), "is 'C1'", PresetError),
        (lambda d: d["note_names"]["36"].update(fl_studio="C1"), "is 'C3'", PresetError),
        (lambda d: d.update(schema_version=99), "newer", SchemaTooNewError),
        (lambda d: d.update(schema_version="1"), "schema_version", PresetError),
        (lambda d: d.pop("name"), "name", PresetError),
        (lambda d: d.update(notes=[36, 38]), "notes", PresetError),
    ],
)
def test_broken_maps_are_refused(tmp_path, mutate, match, exc):
    data = _gm()
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(exc, match=match):
        load_drum_map(path)


@pytest.mark.parametrize("text,match", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_files_that_are_no_map_are_refused(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(PresetError, match=match):
        load_drum_map(path)


def test_missing_files_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(PresetError, match="not found"):
        load_drum_map(tmp_path / "missing.json")
    with pytest.raises(PresetError, match="known maps: .*superior-drummer-3"):
        load_drum_map("roland-td-99")
    with pytest.raises(PresetError):
        load_drum_map(42)  # type: ignore[arg-type]


def test_custom_map_from_path_and_presets_env(tmp_path, monkeypatch):
    data = _gm()
    data["name"] = "my-kit"
    data["notes"]["KD"] = 24
    data["note_names"]["24"] = {"name": "Kick (my kit)", "daw": "C0", "fl_studio": "C2"}
    folder = tmp_path / "drum_maps"
    folder.mkdir()
    (folder / "my-kit.json").write_text(json.dumps(data))
    m = load_drum_map(folder / "my-kit.json")
    assert isinstance(m, DrumMap) and m.note_for("KD") == 24 and m.class_for(24) == "KD"
    assert m.class_for(36) is None  # 36 is no longer a kick in this map
    monkeypatch.setenv("IDM_HOST_PRESETS", str(tmp_path))
    assert load_drum_map("my-kit").note_for("KD") == 24
    # a broken file in the folder is skipped by the listing, not fatal
    (folder / "zz-broken.json").write_text("{}")
    names = [m.name for m in list_drum_maps()]
    assert "my-kit" in names and "gm" in names and "zz-broken" not in names


def test_group_symbols_use_representatives():
    m = load_drum_map("gm")
    assert [m.note_for(g) for g in ("KD", "SD", "HH", "TT", "CY")] == [36, 38, 42, 47, 49]
    assert m.class_for(46, ("KD", "SD", "HH", "TT", "CY")) == "HH"
    with pytest.raises(PresetError, match="no note for class 'COWBELL'"):
        m.note_for("COWBELL")
