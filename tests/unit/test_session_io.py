"""Session save/load: round trip, overwrite rules, schema checks, corrupt files, source relinking."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from idm_host.audio import save_audio
from idm_host.errors import SchemaTooNewError, SessionError
from idm_host.session import (AddHits, ReplaceSample, Session, SetEffects, SetKitParams, SetMixer, SetTempo)
from idm_host.session import SESSION_SCHEMA_VERSION
from sessionkit import SR, make_analysis


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def source(tmp_path, signals):
    return save_audio(tmp_path / "loop.wav", signals.noise_burst(1.0), SR)


@pytest.fixture
def edited(source):
    a = make_analysis(source=source)
    s = Session.from_analysis(a, source=source)
    s.apply(AddHits("TT_HFT", [(0.123456789, 0.77)]))
    s.apply(ReplaceSample("SD", samples=np.hanning(300).astype(np.float32), sample_rate=22050, name="tone"))
    s.apply(SetKitParams("SD", blend="replace", tune_semitones=-1.5, velocity_curve="fixed"))
    s.apply(SetMixer("KD", gain_db=-3.25, pan=0.4, solo=True))
    s.apply(SetEffects("SD", "fat-snare"))
    s.apply(SetEffects("KD", {"effects": [{"type": "Compressor", "params": {"ratio": 3.0}}]}))
    s.apply(SetTempo(bpm=123.4, downbeat_s=0.05))
    return s


def test_save_load_round_trip(edited, tmp_path):
    path = edited.save(tmp_path / "song")
    assert path.name == "song.idmsession" and (path / "session.json").is_file()
    assert not edited.modified
    back = Session.load(path)
    assert back.state == edited.state
    assert back.classes == edited.classes and back.source == edited.source and back.model == edited.model
    assert back.source_problem is None and not back.modified
    for c in edited.classes:
        a, ga = edited.extracted_one_shot(c)
        b, gb = back.extracted_one_shot(c)
        assert np.array_equal(a, b) and ga == gb
    assert back.stems.classes == edited.stems.classes
    np.testing.assert_allclose(back.stems.audio, edited.stems.audio, atol=1e-6)  # 24-bit FLAC, stems stored at 1/2^k scale
    np.testing.assert_allclose(back.stems.residual, edited.stems.residual, atol=1e-6)  # 24-bit FLAC, stems stored at 1/2^k scale
    # ids continue after the saved ones
    new = back.apply(AddHits("KD", [(1.0, 1.0)])).hit_ids[0]
    assert new > max(h.id for hs in edited.hits.values() for h in hs)
    doc = json.loads((path / "session.json").read_text())
    assert doc["schema_version"] == SESSION_SCHEMA_VERSION == 2 and doc["source"]["sha256"] == edited.source.sha256


def test_resave_keeps_unchanged_files_and_removes_stale(edited, tmp_path):
    path = edited.save(tmp_path / "song.idmsession")
    stems_before = {p.name: p.stat().st_ino for p in (path / "stems").iterdir()}
    edited.apply(ReplaceSample("SD", samples=np.ones(50, np.float32) * 0.5, sample_rate=SR))
    assert edited.modified
    edited.save(path)  # its own folder: no flag needed
    assert {p.name: p.stat().st_ino for p in (path / "stems").iterdir()} == stems_before
    kit_files = list((path / "kit").iterdir())
    assert len(kit_files) == 1  # the old SD sample was removed after the commit
    assert np.array_equal(Session.load(path).kit["SD"].one_shot, np.ones(50, np.float32) * 0.5)


def test_no_overwrite_without_flag(edited, tmp_path):
    path = edited.save(tmp_path / "a.idmsession")
    other = Session.from_analysis(make_analysis(seed=3))
    before = _tree(path)
    with pytest.raises(SessionError, match="already exists"):
        other.save(path)
    assert _tree(path) == before
    other.save(path, overwrite=True)
    assert Session.load(path).state == other.state
    user_dir = tmp_path / "photos.idmsession"
    user_dir.mkdir()
    (user_dir / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(SessionError, match="not an idm-host session"):
        other.save(user_dir, overwrite=True)
    assert (user_dir / "cat.jpg").read_bytes() == b"meow"


def test_newer_schema_refused(edited, tmp_path):
    path = edited.save(tmp_path / "s.idmsession")
    doc = json.loads((path / "session.json").read_text())
    doc["schema_version"] = 99
    (path / "session.json").write_text(json.dumps(doc))
    before = _tree(path)
    with pytest.raises(SchemaTooNewError, match="newer idm-host"):
        Session.load(path)
    assert _tree(path) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not-object", "no-version", "missing-key",
                                    "bad-hit", "missing-wav", "corrupt-wav", "dup-id", "escape"])
def test_corrupt_sessions_give_clear_errors_and_stay_untouched(edited, tmp_path, damage):
    path = edited.save(tmp_path / "s.idmsession")
    jp = path / "session.json"
    text = jp.read_text()
    doc = json.loads(text)
    if damage == "truncate":
        jp.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        jp.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "not-object":
        jp.write_text("[1, 2]")
    elif damage == "no-version":
        del doc["schema_version"]
        jp.write_text(json.dumps(doc))
    elif damage == "missing-key":
        del doc["mixer"]
        jp.write_text(json.dumps(doc))
    elif damage == "bad-hit":
        doc["hits"]["KD"][0]["velocity"] = 7
        jp.write_text(json.dumps(doc))
    elif damage == "missing-wav":
        next((path / "extracted").iterdir()).unlink()
    elif damage == "corrupt-wav":
        f = next((path / "kit").iterdir())
        f.write_bytes(b"RIFF" + b"\x00" * 10)
    elif damage == "dup-id":
        doc["hits"]["SD"][0]["id"] = doc["hits"]["KD"][0]["id"]
        jp.write_text(json.dumps(doc))
    elif damage == "escape":
        doc["extracted"]["KD"]["file"] = "../../etc/passwd"
        jp.write_text(json.dumps(doc))
    before = _tree(path)
    with pytest.raises(SessionError) as exc:
        Session.load(path)
    assert str(path) in str(exc.value)
    assert _tree(path) == before


def test_load_errors_for_non_sessions(tmp_path):
    with pytest.raises(SessionError, match="no such session"):
        Session.load(tmp_path / "nothing.idmsession")
    (tmp_path / "empty.idmsession").mkdir()
    with pytest.raises(SessionError, match="no session.json"):
        Session.load(tmp_path / "empty.idmsession")


def test_moved_and_changed_source_and_relink(edited, tmp_path, source, signals):
    path = edited.save(tmp_path / "s.idmsession")
    moved = tmp_path / "moved" / "loop.wav"
    moved.parent.mkdir()
    shutil.move(source, moved)
    s = Session.load(path)
    assert s.source_problem and "missing" in s.source_problem and str(source) in s.source_problem
    seen = []
    s.subscribe(seen.append)
    s.relink(moved)
    assert s.source.path == str(moved.resolve()) and s.source_problem is None and seen[0].parts == {"source"}
    assert s.modified
    s.save(path)
    assert Session.load(path).source_problem is None
    # a changed file is reported and needs allow_changed
    save_audio(moved, signals.noise_burst(1.0, seed=9), SR, overwrite=True)
    s2 = Session.load(path)
    assert "changed" in s2.source_problem
    with pytest.raises(SessionError, match="differs"):
        s2.relink(moved)
    s2.relink(moved, allow_changed=True)
    assert s2.source_problem is None
    with pytest.raises(SessionError, match="cannot relink"):
        s2.relink(tmp_path / "nope.wav")


def test_session_without_stems(tmp_path):
    s = Session.from_analysis(make_analysis(), keep_stems=False)
    path = s.save(tmp_path / "x")
    assert not (path / "stems").exists()
    assert Session.load(path).stems is None
