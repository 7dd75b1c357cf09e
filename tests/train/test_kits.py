"""Kit loaders on tiny kits the tests write: Hydrogen, SFZ, SF2, one-shot folder; and bad kits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from idm_host.classes import IDM_CLASSES
from idm_host.errors import PresetError
from idm_host.train.kits import (GM_KIT_NOTES, KitError, PATTERN_NOTES, detect_kit_kind, list_sf2_presets,
                                 load_kit, load_sf2_kit, note_for_name, parse_note, synthetic_kit)

from .kitbuild import SR, drum, write_folder, write_hydrogen, write_sf2, write_sfz

RNG = np.random.default_rng(0)


def peak(x):
    return float(np.abs(x).max())


def test_gm_map_covers_every_class_and_is_complete():
    assert set(GM_KIT_NOTES.values()) == set(IDM_CLASSES)
    assert GM_KIT_NOTES[44] == "HH_CHH" and GM_KIT_NOTES[45] == "TT_LMT" and GM_KIT_NOTES[48] == "TT_HMT"
    assert GM_KIT_NOTES[41] == GM_KIT_NOTES[43] == "TT_HFT"
    assert 58 not in GM_KIT_NOTES and PATTERN_NOTES[58] == "TT_HFT" and 39 not in PATTERN_NOTES


@pytest.mark.parametrize("component_layout", [False, True])
def test_hydrogen_kit(tmp_path, component_layout):
    kit = load_kit(write_hydrogen(tmp_path / "hk", component_layout=component_layout))
    assert kit.kind == "hydrogen" and kit.name == "Test Kit" and kit.sample_rate == SR
    assert kit.classes == ("CY_CR", "HH_CHH", "KD", "SD")  # the clap is skipped
    assert set(kit.instruments) == {36, 38, 42, 49}  # 'Thing' classified by midiOutNote, 'Crash' by name
    kick = kit.instruments[36][0]
    assert len(kick.layers) == 2
    soft, hard = kick.pick(0.25, RNG), kick.pick(1.0, RNG)
    assert peak(soft) == pytest.approx(0.4 * 0.25, rel=2e-3)  # soft layer, scaled by velocity
    assert peak(hard) == pytest.approx(0.9, rel=2e-3)
    assert peak(kit.instruments[38][0].pick(1.0, RNG)) == pytest.approx(0.8 * 0.5, rel=2e-3)  # instrument gain
    assert soft.dtype == np.float32 and soft.ndim == 1  # stereo files become mono
    # samples start at the attack: no leading silence
    assert abs(soft[0]) < 0.05 and np.argmax(np.abs(hard) > 0.01) < 50


def test_sfz_kit(tmp_path):
    kit = load_kit(write_sfz(tmp_path / "sfz"))
    assert kit.kind == "sfz"
    assert set(kit.instruments) == {36, 38, 47, 48}
    kick = kit.instruments[36][0]
    assert [round(l.max_velocity, 3) for l in kick.layers] == [round(64 / 127, 3), 1.0]
    assert peak(kick.pick(0.2, RNG)) == pytest.approx(0.3 * 0.2, rel=2e-3)
    assert peak(kick.pick(0.9, RNG)) == pytest.approx(0.9 * 0.9, rel=2e-3)
    snare = kit.instruments[38][0]
    assert len(snare.layers) == 1  # the release-triggered region is skipped
    assert peak(snare.pick(1.0, RNG)) == pytest.approx(0.7 * 10 ** (-6 / 20), rel=5e-3)
    # key 47 plays the tom rooted at 48 a semitone lower: longer by 2**(1/12)
    n48 = kit.instruments[48][0].layers[0].samples.size
    n47 = kit.instruments[47][0].layers[0].samples.size
    assert n47 / n48 == pytest.approx(2 ** (1 / 12), rel=0.01)


def test_sf2_kit(tmp_path):
    path = write_sf2(tmp_path / "tiny.sf2")
    presets = list_sf2_presets(path)
    assert [(p.bank, p.program, p.name) for p in presets] == [(128, 0, "Tiny Drums")]
    assert [p.name for p in list_sf2_presets(path, bank=None)] == ["Piano", "Tiny Drums"]
    kit = load_kit(path)
    assert kit.kind == "sf2" and kit.classes == ("HH_CHH", "KD", "SD")
    assert set(kit.instruments) == {35, 36, 38, 42}
    kick = kit.instruments[36][0]
    assert len(kick.layers) == 2
    assert peak(kick.pick(0.3, RNG)) == pytest.approx(0.4 * 0.3, rel=0.03)
    assert peak(kick.pick(1.0, RNG)) == pytest.approx(0.9, rel=0.03)
    # 22.05 kHz data played at 44.1 kHz: about 0.2 s long, like the original sound
    assert kick.layers[1].samples.size == pytest.approx(0.2 * SR, rel=0.02)
    # key 35 is a semitone below the root key 36
    n35 = kit.instruments[35][0].layers[1].samples.size
    assert n35 / kick.layers[1].samples.size == pytest.approx(2 ** (1 / 12), rel=0.01)
    # 60 cB attenuation = -6 dB
    assert peak(kit.instruments[38][0].pick(1.0, RNG)) == pytest.approx(0.8 * 10 ** (-0.3), rel=0.03)
    assert load_sf2_kit(path, "tiny drums").classes == kit.classes
    with pytest.raises(KitError, match=r"no preset 5 in bank 128; available: 0 'Tiny Drums'"):
        load_sf2_kit(path, 5)


def test_an_sf2_set_with_timpani_where_a_gm_kit_has_toms_is_read_as_the_gs_orchestra_set(tmp_path):
    # the same layout, told apart by the sample on key 42: timpani there is no hi-hat of the model
    assert load_kit(write_sf2(tmp_path / "gm.sf2", hat_name="Hi-Hat Closed")).classes == ("HH_CHH", "KD", "SD")
    orchestra = load_kit(write_sf2(tmp_path / "orch.sf2", hat_name="Timpani 2(L)"))
    assert orchestra.classes == ("KD", "SD") and set(orchestra.instruments) == {35, 36, 38}


FLUID, TIMGM = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


@pytest.mark.skipif(not (FLUID.is_file() and TIMGM.is_file()), reason="Debian fluid-soundfont-gm, timgm6mb-soundfont")
def test_the_debian_orchestra_kits_teach_no_timpani_as_toms_hats_or_ride():
    # FluidR3's Orchestra Kit (a training kit) holds timpani on keys 41-53: read as a GM kit it taught
    # them as toms, hats, crash and ride. TimGM6mb's preset 48 is a GM kit under the same name.
    fluid = load_sf2_kit(FLUID, 48)
    assert fluid.classes == ("CY_CR", "KD", "SD") and set(fluid.instruments) == {35, 36, 37, 38, 40, 55, 57}
    assert set(load_sf2_kit(TIMGM, 48).instruments) == set(load_sf2_kit(TIMGM, 0).instruments)


def test_folder_kit(tmp_path):
    kit = load_kit(write_folder(tmp_path / "shots"))
    assert kit.kind == "folder"
    assert kit.classes == ("CY_RD", "KD", "SD")  # ride from its folder's name; vocal.wav skipped
    kick = kit.instruments[36][0]
    assert [(l.min_velocity, l.max_velocity) for l in kick.layers] == [(0.0, 0.5), (0.5, 1.0)]
    assert peak(kick.pick(1.0, RNG)) == pytest.approx(0.9, rel=2e-3)
    snare = kit.instruments[38][0]
    assert [(l.min_velocity, l.max_velocity) for l in snare.layers] == [(0.0, 1.0), (0.0, 1.0)]
    rng = np.random.default_rng(1)
    peaks = {round(peak(snare.pick(1.0, rng)), 2) for _ in range(20)}
    assert peaks == {0.5, 0.6}  # round robin uses both files


def test_variant_and_note_fallback(tmp_path):
    kit = load_kit(write_hydrogen(tmp_path / "hk"))
    assert kit.resolve_note(40) == 38  # second snare falls back to the snare
    assert kit.resolve_note(57) == 49 and kit.resolve_note(44) == 42
    assert kit.resolve_note(51) is None  # no ride in this kit
    assert kit.resolve_note(39) is None  # clap: no class
    v = kit.variant(np.random.default_rng(0))
    assert all(len(alts) == 1 for alts in v.instruments.values())


def test_synthetic_kit_has_every_class():
    kit = synthetic_kit(3)
    assert kit.classes == tuple(sorted(IDM_CLASSES))
    x = synthetic_kit(3).instruments[36][0].layers[0].samples
    np.testing.assert_array_equal(x, kit.instruments[36][0].layers[0].samples)  # seeded


def test_note_names():
    assert parse_note("c4") == 60 and parse_note("C#2") == 37 and parse_note("db2") == 37 and parse_note("36") == 36
    assert note_for_name("Hi-Hat Pedal") == 44 and note_for_name("Snare Roll") is None
    assert note_for_name("c4 - middle tom") == 47 and note_for_name("cymbal") is None


# ------------------------------------------------------------------ bad kits
def test_bad_kits_give_clear_errors(tmp_path):
    with pytest.raises(KitError, match="kit not found"):
        load_kit(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(KitError, match="unknown kit format"):
        load_kit(tmp_path / "x.txt")
    # malformed drumkit.xml
    hk = write_hydrogen(tmp_path / "hk")
    (hk / "drumkit.xml").write_text("<drumkit_info><name>broken</name><instrumentList>")
    with pytest.raises(KitError, match=r"drumkit.xml: not valid XML"):
        load_kit(hk)
    # a sample the xml names is missing
    hk2 = write_hydrogen(tmp_path / "hk2")
    (hk2 / "snare.flac").unlink()
    with pytest.raises(KitError, match=r"sample .*snare.flac is missing"):
        load_kit(hk2)
    # a sample that is not audio
    hk3 = write_hydrogen(tmp_path / "hk3")
    (hk3 / "hat.wav").write_bytes(b"RIFF0000WAVEjunkjunk")
    with pytest.raises(KitError, match=r"sample hat.wav cannot be read"):
        load_kit(hk3)
    # a Hydrogen song is not a drumkit
    (tmp_path / "song").mkdir()
    (tmp_path / "song" / "drumkit.xml").write_text("<song><name>x</name></song>")
    with pytest.raises(KitError, match="not a Hydrogen drumkit"):
        load_kit(tmp_path / "song")
    # SF2: garbage, truncated
    (tmp_path / "bad.sf2").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    with pytest.raises(KitError, match=r"bad.sf2: no RIFF 'sfbk' header"):
        load_kit(tmp_path / "bad.sf2")
    good = write_sf2(tmp_path / "good.sf2").read_bytes()
    (tmp_path / "trunc.sf2").write_bytes(good[: len(good) // 2])
    with pytest.raises(KitError, match=r"trunc.sf2: .*not a valid SoundFont 2"):
        load_kit(tmp_path / "trunc.sf2")
    # SFZ without regions, with a bad value, with a missing sample
    (tmp_path / "empty.sfz").write_text("// nothing here\n<control> default_path=x/\n")
    with pytest.raises(KitError, match="no <region> found"):
        load_kit(tmp_path / "empty.sfz")
    (tmp_path / "badval.sfz").write_text("<region> sample=a.wav key=banana\n")
    with pytest.raises(KitError, match="bad value"):
        load_kit(tmp_path / "badval.sfz")
    (tmp_path / "missing.sfz").write_text("<region> sample=gone.wav key=36\n")
    with pytest.raises(KitError, match="gone.wav is missing"):
        load_kit(tmp_path / "missing.sfz")
    # folders: empty, or with no drum names
    (tmp_path / "empty").mkdir()
    with pytest.raises(KitError, match="holds no audio files"):
        load_kit(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    from idm_host.audio import save_audio
    save_audio(tmp_path / "other" / "vocals.wav", drum("snare"), SR)
    with pytest.raises(KitError, match="no usable drum found"):
        load_kit(tmp_path / "other")
    with pytest.raises(KitError, match="'preset' applies to SoundFonts only"):
        load_kit(write_folder(tmp_path / "f2"), preset=3)
    assert issubclass(KitError, PresetError)


def test_detect_kind(tmp_path):
    assert detect_kit_kind(write_hydrogen(tmp_path / "h")) == "hydrogen"
    assert detect_kit_kind(write_hydrogen(tmp_path / "h") / "drumkit.xml") == "hydrogen"
    assert detect_kit_kind(write_sfz(tmp_path / "s")) == "sfz"
    assert detect_kit_kind(write_sf2(tmp_path / "k.sf2")) == "sf2"
    assert detect_kit_kind(write_folder(tmp_path / "f")) == "folder"
