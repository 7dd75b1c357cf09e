"""Mixture + stem + onset-target rendering, augmentation consistency, data configs, datasets on disk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from idm_host.audio import load_audio
from idm_host.classes import IDM_CLASSES
from idm_host.errors import IdmError
from idm_host.train.data import (Augment, ClipStream, DataConfig, FRAME_RATE, _reverb, n_model_frames,
                                 render_clip, render_dataset)
from idm_host.train.kits import load_kit, synthetic_kit
from idm_host.train.patterns import Pattern, PatternSource

from .kitbuild import SR, write_folder, write_hydrogen, write_sf2

K = len(IDM_CLASSES)


def test_render_clip_places_samples_and_targets(tmp_path):
    kit = load_kit(write_hydrogen(tmp_path / "hk"))  # KD, SD, HH_CHH, CY_CR
    hits = [(0.5, 36, 1.0), (1.0, 38, 0.5), (1.25, 42, 0.8), (1.5, 51, 1.0),  # ride: not in this kit
            (0.9, 44, 0.6)]  # pedal hat -> the kit's closed hat
    pattern = Pattern.from_hits(hits, 2.0)
    clip = render_clip(kit, pattern, rng=np.random.default_rng(0), with_stems=True)
    n = 2 * SR
    assert clip.mixture.shape == (n,) and clip.stems.shape == (K, n)
    assert clip.onsets.shape == (K, n_model_frames(n)) == (K, -(-n // 256) + 13)
    np.testing.assert_allclose(clip.stems.sum(0), clip.mixture, atol=1e-6)
    kd, sd, hh, rd = (IDM_CLASSES.index(c) for c in ("KD", "SD", "HH_CHH", "CY_RD"))
    assert np.flatnonzero(clip.onsets[kd]).tolist() == [int(0.5 * FRAME_RATE)]
    assert np.flatnonzero(clip.onsets[sd]).tolist() == [int(np.floor(1.0 * FRAME_RATE))]
    assert np.flatnonzero(clip.onsets[hh]).tolist() == [int(0.9 * FRAME_RATE), int(1.25 * FRAME_RATE)]
    assert clip.onsets[rd].sum() == 0 and not clip.stems[rd].any()  # ride dropped: the kit has none
    assert clip.velocities[sd].max() == pytest.approx(0.5)
    # the kick stem is silent before its hit and starts exactly at sample 0.5 * SR
    start = int(0.5 * SR)
    assert not clip.stems[kd, :start].any() and clip.stems[kd, start:start + 20].any()
    assert clip.transcription.n_hits == 4 and clip.transcription.duration_s == 2.0
    assert np.abs(clip.mixture).max() == pytest.approx(0.9, rel=1e-5)  # peak-normalised, no gain aug


def test_pre_roll_tail_sounds_but_is_not_targeted(tmp_path):
    kit = load_kit(write_hydrogen(tmp_path / "hk"))
    pattern = Pattern.from_hits([(0.9, 49, 1.0), (1.5, 36, 1.0)], 3.0)  # crash 0.1 s before the clip
    clip = render_clip(kit, pattern, rng=np.random.default_rng(0), offset_s=1.0, duration_s=2.0, with_stems=True)
    cr = IDM_CLASSES.index("CY_CR")
    assert clip.onsets[cr].sum() == 0 and np.abs(clip.stems[cr, :1000]).max() > 0.01
    assert [h.time_s for h in clip.transcription.hits["KD"]] == pytest.approx([0.5])


def test_group_level_classes(tmp_path):
    kit = synthetic_kit(0)
    pattern = Pattern.from_hits([(0.1, 42, 1.0), (0.3, 46, 1.0), (0.5, 50, 1.0), (0.7, 43, 1.0)], 1.0)
    clip = render_clip(kit, pattern, classes=("KD", "SD", "HH", "TT", "CY"), rng=np.random.default_rng(0))
    assert clip.onsets.sum(axis=1).tolist() == [0, 0, 2, 2, 0]


def test_reverb_is_linear_so_stems_and_mix_agree():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(SR).astype(np.float32) * np.exp(-np.arange(SR) / 4000).astype(np.float32)
            for _ in range(2))
    room = {"room_size": 0.4, "damping": 0.5, "wet_level": 0.2, "dry_level": 0.8, "width": 0.0}
    per_stem = _reverb(a[None], room)[0] + _reverb(b[None], room)[0]
    together = _reverb((a + b)[None], room)[0]
    assert np.abs(per_stem - together).max() < 1e-5


def test_augmented_clip_stays_consistent():
    kit = synthetic_kit(1)
    aug = Augment(room_prob=1.0, compress_prob=1.0, gain_prob=1.0)
    stream = ClipStream([kit], PatternSource(), duration_s=3.0, seed=3, augment=aug, with_stems=True)
    clip = next(iter(stream))
    assert "room" in clip.meta and "compressor" in clip.meta and 0.3 <= clip.meta["gain"] <= 1.0
    np.testing.assert_allclose(clip.stems.sum(0), clip.mixture, atol=1e-5)
    assert np.abs(clip.mixture).max() == pytest.approx(0.9 * clip.meta["gain"], rel=1e-4)
    # the training path (mix only, reverb applied once) gives the same mixture
    mix_only = next(iter(ClipStream([kit], PatternSource(), duration_s=3.0, seed=3, augment=aug)))
    np.testing.assert_allclose(mix_only.mixture, clip.mixture, atol=2e-4)
    np.testing.assert_array_equal(mix_only.onsets, clip.onsets)


def test_stream_is_seeded_and_uses_every_kit():
    kits = [synthetic_kit(0), synthetic_kit(1)]
    s1 = iter(ClipStream(kits, PatternSource(), duration_s=2.0, seed=5))
    s2 = iter(ClipStream(kits, PatternSource(), duration_s=2.0, seed=5))
    clips = [next(s1) for _ in range(8)]
    again = [next(s2) for _ in range(8)]
    for a, b in zip(clips, again):
        np.testing.assert_array_equal(a.mixture, b.mixture)
    assert {c.kit_id for c in clips} == {0, 1}
    assert all(c.onsets.sum() > 0 for c in clips)


def test_data_config(tmp_path):
    write_hydrogen(tmp_path / "kits" / "hk")
    write_sf2(tmp_path / "kits" / "t.sf2")
    write_folder(tmp_path / "kits" / "val")
    cfg_path = tmp_path / "data.json"
    cfg_path.write_text(json.dumps({
        "schema_version": 1,
        "kits": ["kits/hk", {"path": "kits/t.sf2", "preset": "all"}],
        "validation_kits": [{"path": "kits/val", "name": "my-val"}],
        "patterns": {"generator_weight": 1.0, "styles": ["rock", "funk"]},
        "crop_s": 4.0, "augment": {"room_prob": 0.5}, "seed": 7,
    }))
    cfg = DataConfig.load(cfg_path)
    assert cfg.kit_names == ("hk", "t:Tiny Drums") and cfg.validation_kits[0].label == "my-val"
    assert cfg.crop_s == 4.0 and cfg.augment.room_prob == 0.5 and cfg.styles == ("rock", "funk")
    assert [k.load().kind for k in cfg.kits] == ["hydrogen", "sf2"]
    assert DataConfig.from_dict(cfg.to_dict(), cfg_path).to_dict() == cfg.to_dict()
    assert cfg.kit_weights is None  # no entry sets one: every kit drawn equally


def test_kit_weights_of_a_data_config(tmp_path):
    write_hydrogen(tmp_path / "kits" / "hk")
    write_sf2(tmp_path / "kits" / "t.sf2")
    cfg_path = tmp_path / "data.json"
    cfg_path.write_text(json.dumps({"kits": [{"path": "kits/hk", "weight": 3}, {"path": "kits/t.sf2", "preset": "all"}]}))
    cfg = DataConfig.load(cfg_path)
    assert cfg.kit_weights == (3.0, 1.0)
    assert DataConfig.from_dict(cfg.to_dict(), cfg_path).kit_weights == (3.0, 1.0)


@pytest.mark.parametrize("data, message", [
    ({"kits": []}, "\"kits\" is empty"),
    ({"kits": ["a"], "bogus": 1}, r"unknown keys \['bogus'\]"),
    ({"kits": ["a"], "schema_version": 9}, "newer than this idm-host"),
    ({"kits": [{"file": "a"}]}, "has no \"path\""),
    ({"kits": ["/usr/share/hydrogen/data/drumkits/BJA_Pacific"]}, "keeps for independent evaluation"),
    ({"kits": ["/x/The Black Pearl 1.0"]}, "keeps for independent evaluation"),
    ({"kits": ["a"], "patterns": {"midi": ["/usr/share/mma/grooves"]}}, "keeps for independent evaluation"),
    ({"kits": ["a"], "validation_kits": ["a"]}, "are also training kits"),
    ({"kits": ["a"], "augment": {"wet": 1}}, "augment settings have unknown keys"),
    ({"kits": ["a"], "patterns": {"styles": ["polka"]}}, "unknown groove styles"),
    ({"kits": [{"path": "a", "weight": 0}]}, "\"weight\" must be a positive number"),
    ({"kits": [{"path": "a", "weight": "2"}]}, "\"weight\" must be a positive number"),
])
def test_bad_data_configs(tmp_path, data, message):
    p = tmp_path / "d.json"
    p.write_text(json.dumps(data))
    with pytest.raises(IdmError, match=message):
        DataConfig.load(p)


def test_bad_config_files(tmp_path):
    with pytest.raises(IdmError, match="data config not found"):
        DataConfig.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(IdmError, match="must be JSON"):
        DataConfig.load(tmp_path / "x.json")


def test_render_dataset_on_disk(tmp_path):
    out = render_dataset(tmp_path / "ds", [synthetic_kit(0)], PatternSource(), n_clips=2, duration_s=2.0, seed=1)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["clips"] == ["clip-0000", "clip-0001"] and manifest["classes"] == list(IDM_CLASSES)
    clip = out / "clip-0001"
    mix = load_audio(clip / "mix.wav", sample_rate=None).samples[0]
    stems = np.stack([load_audio(clip / "stems" / f"{c}.wav", sample_rate=None).samples[0] for c in IDM_CLASSES])
    assert mix.shape == (2 * SR,)
    np.testing.assert_allclose(stems.sum(0), mix, atol=1e-6)  # float WAV: exact
    onsets = json.loads((clip / "onsets.json").read_text())
    assert onsets["classes"] == list(IDM_CLASSES) and sum(len(v) for v in onsets["hits"].values()) > 0
    with pytest.raises(IdmError, match="already exists and is not empty"):
        render_dataset(out, [synthetic_kit(0)], PatternSource(), n_clips=1)


def test_the_documented_data_config_is_valid(tmp_path):
    """docs/TRAINING.md's example config parses (paths are not loaded: CI has no Debian kits)."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "TRAINING.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))
    p = tmp_path / "data.json"
    p.write_text(json.dumps({**example, "kits": [k for k in example["kits"] if "preset" not in str(k) or
                                                 k.get("preset") != "all"]}))
    cfg = DataConfig.load(p)
    assert len(cfg.kits) == 11 and cfg.validation_kits[0].label == "rumpf_kit_z01_h2"
    assert cfg.crop_s == 6.0 and cfg.augment.gain_prob == 0.8
