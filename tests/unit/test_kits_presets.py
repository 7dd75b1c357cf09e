"""Kits: the shipped synthesised kits, kitgen's determinism, kit presets and folders, bad kits."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from idm_host.audio import load_audio, save_audio
from idm_host.classes import IDM_CLASSES
from idm_host.errors import PresetError
from idm_host.kitgen import KITS, synthesize_kit, write_kit
from idm_host.kit_presets import kit_command, load_kit
from idm_host.presets import list_presets, shipped_dir
from idm_host.render import render
from idm_host.session import Session
from sessionkit import SR, make_analysis


@pytest.mark.parametrize("name", KITS)
def test_shipped_kits_are_complete_small_and_match_the_generator(name):
    kit = load_kit(name)
    assert set(kit.samples) == set(IDM_CLASSES)
    shots = synthesize_kit(name)
    for cls, path in kit.samples.items():
        a = load_audio(path, sample_rate=None)
        assert a.sample_rate == SR and a.channels == 1 and a.n_frames <= SR
        assert path.stat().st_size <= 2 * SR + 512  # 16-bit mono, <= 1 s (plus header)
        np.testing.assert_allclose(a.samples[0], shots[cls], atol=3.0 / 32768)  # what kitgen writes, to 16-bit precision
        assert np.abs(a.samples).max() > 0.3 and abs(a.samples[0, -1]) < 1e-3  # loud enough, ends silent
    assert kit.settings["HH_OHH"]["choked_by"] == ("HH_CHH",)


def test_kits_differ_and_kitgen_is_deterministic():
    a, b = synthesize_kit("synth-electro"), synthesize_kit("synth-acoustic")
    assert all(not np.array_equal(a[c][:1000], b[c][:1000]) for c in IDM_CLASSES)
    again = synthesize_kit("synth-electro")
    assert all(np.array_equal(a[c], again[c]) for c in IDM_CLASSES)


def test_write_kit_never_overwrites(tmp_path):
    path = write_kit("synth-electro", tmp_path)
    assert load_kit(str(path)).name == "synth-electro"
    before = path.read_bytes()
    with pytest.raises(Exception, match="already exists"):
        write_kit("synth-electro", tmp_path)
    assert path.read_bytes() == before


def test_kit_command_is_one_undo_step():
    s = Session.from_analysis(make_analysis(duration_s=2.0))
    before = s.state
    s.apply(kit_command(s, "synth-acoustic"))
    assert all(s.kit[c].origin == "file" for c in IDM_CLASSES)
    assert s.kit["HH_OHH"].choked_by == ("HH_CHH",) and s.kit["KD"].velocity_curve == "exponential"
    r = render(s, channels=1)
    assert np.isfinite(r.mix).all() and np.abs(r.mix).max() > 0.1
    s.undo()
    assert s.state == before


def test_folder_kit_with_any_rate_and_channels(tmp_path):
    stereo48 = np.stack([np.hanning(480), -np.hanning(480)]).astype(np.float32) * 0.5 + 0.25
    save_audio(tmp_path / "Kick.flac", stereo48, 48000)
    save_audio(tmp_path / "sd.wav", np.hanning(300).astype(np.float32), 22050)
    save_audio(tmp_path / "closed-hi-hat.wav", np.hanning(100).astype(np.float32), SR)
    (tmp_path / "notes.txt").write_text("ignored")
    kit = load_kit(tmp_path)
    assert set(kit.samples) == {"KD", "SD", "HH_CHH"}
    s = Session.from_analysis(make_analysis(duration_s=2.0))
    s.apply(kit_command(s, kit))
    assert abs(s.kit["KD"].one_shot.size - 441) <= 1 and abs(s.kit["SD"].one_shot.size - 600) <= 1
    assert s.kit["CY_CR"].origin == "extracted"


@pytest.mark.parametrize("doc, match", [
    ({"schema_version": 1}, "\"samples\" must map"),
    ({"schema_version": 1, "samples": {"XX": "a.wav"}}, "unknown class 'XX'"),
    ({"schema_version": 1, "samples": {"KD": "missing.wav"}}, "not found"),
    ({"schema_version": 1, "samples": {"KD": "k.wav"}, "colour": "red"}, "unknown keys"),
    ({"schema_version": 1, "samples": {"KD": "k.wav"}, "gain_db": {"SD": 1}}, "has no sample"),
    ({"schema_version": 1, "samples": {"KD": "k.wav"}, "choke": {"KD": "SD"}}, "choke entry"),
    ({"schema_version": 3, "samples": {"KD": "k.wav"}}, "newer"),
    ({"samples": {"KD": "k.wav"}}, "schema_version"),
])
def test_bad_kit_presets(tmp_path, doc, match):
    save_audio(tmp_path / "k.wav", np.hanning(100).astype(np.float32), SR)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    before = p.read_bytes()
    with pytest.raises(PresetError, match=match):
        load_kit(str(p))
    assert p.read_bytes() == before


def test_unknown_kit_and_empty_folder(tmp_path):
    with pytest.raises(PresetError, match="available: .*synth-electro"):
        load_kit("no-such-kit")
    with pytest.raises(PresetError, match="no samples named"):
        load_kit(tmp_path)


def test_bad_sample_file_fails_before_any_edit(tmp_path):
    kit_dir = tmp_path / "kit"
    shutil.copytree(shipped_dir() / "kits" / "synth-electro", kit_dir)
    (kit_dir / "SD.wav").write_bytes(b"RIFF....WAVEjunk")
    s = Session.from_analysis(make_analysis(duration_s=1.0))
    before = s.state
    with pytest.raises(Exception) as exc:
        s.apply(kit_command(s, kit_dir))
    assert "SD.wav" in str(exc.value)
    assert s.state is before and not s.can_undo


def test_listed():
    assert set(KITS) <= set(list_presets("kits"))
