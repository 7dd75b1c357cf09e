"""Effect chains: JSON <-> pedalboard round trips (bit-identical audio), validation, presets, VST3 hosting."""
from __future__ import annotations

import inspect
import json
import os
import signal
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from idm_host.errors import PresetError, SchemaTooNewError
from idm_host.fx import (BUILTIN_EFFECTS, PluginCrashedError, PluginHost, build_board, chain_to_json,
                         load_effect_chain, resolve_chain, save_effect_chain)
from idm_host.presets import list_presets, load_preset

SR = 44100
ZAM = Path("/usr/lib/vst3/ZamCompX2.vst3")


@pytest.fixture(scope="module")
def drums():
    rng = np.random.default_rng(0)
    x = np.zeros((2, SR), np.float32)
    for i in range(0, SR, SR // 8):
        n = min(4000, SR - i)
        x[:, i:i + n] += (rng.standard_normal(n) * np.exp(-np.arange(n) / 600.0) * 0.6).astype(np.float32)
    return x


def test_shipped_presets(drums):
    names = list_presets("fx")
    builtin_only = [n for n in names if n != "zam-bus-comp"]
    assert len(builtin_only) >= 8
    for name in names:
        data, path = load_preset("fx", name)
        assert data["schema_version"] == 1 and data["name"] == name == path.stem and data["description"]
        with load_effect_chain(name) as chain:
            out = chain.process(drums, SR)
        assert out.shape == drums.shape and np.isfinite(out).all()
        assert not np.array_equal(out, drums), f"{name} does nothing"
        assert np.abs(out).max() < 4.0, f"{name} is far too loud"


@pytest.mark.parametrize("name", sorted(n for n in list_presets("fx") if n != "zam-bus-comp"))
def test_preset_json_round_trip_is_bit_identical(name, drums):
    board = build_board(name)
    doc = chain_to_json(board, name=name)
    text = json.dumps(doc)
    again = build_board(json.loads(text))
    assert chain_to_json(again, name=name) == doc
    np.testing.assert_array_equal(board(drums, SR), again(drums, SR))


def _writable(cls):
    return {k for k in dir(cls) if isinstance(inspect.getattr_static(cls, k, None), property)
            and inspect.getattr_static(cls, k).fset is not None}


@pytest.mark.parametrize("effect", sorted(BUILTIN_EFFECTS))
def test_allow_list_matches_pedalboard(effect):
    cls = getattr(pedalboard, effect)
    expected = _writable(cls)
    if effect == "Convolution":
        expected |= {"impulse_response_filename"}
    assert set(BUILTIN_EFFECTS[effect]) == expected


def test_every_builtin_round_trips_with_non_default_values(tmp_path, drums):
    from idm_host.audio import save_audio

    ir = np.zeros(2000, np.float32)
    ir[0], ir[700] = 1.0, 0.3
    ir_path = save_audio(tmp_path / "ir.wav", ir, SR)
    board = pedalboard.Pedalboard([
        pedalboard.Bitcrush(bit_depth=12), pedalboard.Chorus(rate_hz=2.5, depth=0.3, mix=0.4),
        pedalboard.Clipping(threshold_db=-3), pedalboard.Compressor(threshold_db=-20, ratio=3.3, attack_ms=2),
        pedalboard.Convolution(str(ir_path), mix=0.7), pedalboard.Delay(delay_seconds=0.05, feedback=0.2, mix=0.3),
        pedalboard.Distortion(drive_db=7), pedalboard.Gain(gain_db=-1.7),
        pedalboard.HighShelfFilter(cutoff_frequency_hz=6000, gain_db=2, q=0.9),
        pedalboard.HighpassFilter(cutoff_frequency_hz=40), pedalboard.Invert(),
        pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.HPF24, cutoff_hz=300, resonance=0.2, drive=2),
        pedalboard.Limiter(threshold_db=-2, release_ms=50), pedalboard.LowShelfFilter(cutoff_frequency_hz=90, gain_db=1),
        pedalboard.LowpassFilter(cutoff_frequency_hz=12000), pedalboard.NoiseGate(threshold_db=-50),
        pedalboard.PeakFilter(cutoff_frequency_hz=1000, gain_db=-2, q=2), pedalboard.Phaser(rate_hz=0.5),
        pedalboard.PitchShift(semitones=0.5), pedalboard.Resample(target_sample_rate=22050),
        pedalboard.Reverb(room_size=0.4, wet_level=0.1),
        pedalboard.Mix([pedalboard.Chain([]), pedalboard.Chain([pedalboard.Gain(gain_db=-6)])]),
    ])
    doc = chain_to_json(board)
    assert {e["type"] for e in doc["effects"]} >= set(BUILTIN_EFFECTS) - {"MP3Compressor", "GSMFullRateCompressor"}
    again = build_board(json.loads(json.dumps(doc)))
    np.testing.assert_array_equal(board(drums, SR), again(drums, SR))


@pytest.mark.parametrize("chain, match", [
    ([{"type": "Flanger9000"}], "unknown effect 'Flanger9000'"),
    ([{"type": "Gain", "params": {"gain_db": 99}}], r"Gain.gain_db = 99 dB is out of range.*-60..36 dB"),
    ([{"type": "Gain", "params": {"gain": 1}}], "Gain has no parameter 'gain'"),
    ([{"type": "Gain", "params": {"gain_db": "loud"}}], "must be a number"),
    ([{"type": "Gain", "params": {"gain_db": True}}], "must be a number"),
    ([{"type": "Gain", "params": {"gain_db": float("nan")}}], "must be a number"),
    ([{"type": "LadderFilter", "params": {"mode": "LPF48"}}], "use one of LPF12"),
    ([{"type": "Convolution", "params": {}}], "impulse_response_filename"),
    ([{"type": "Convolution", "params": {"impulse_response_filename": "/no/such/ir.wav"}}], "not found"),
    ([{"type": "Mix", "chains": []}], "Mix needs"),
    ([{"type": "Mix", "chains": [[{"type": "Nope"}]]}], "unknown effect 'Nope'"),
    ([{"type": "VST3"}], "needs \"path\""),
    ([{"type": "VST3", "path": "/no/such.vst3"}], "not found"),
    ([{"type": "Gain", "wet": 1}], "unknown keys"),
    (["Gain"], "must be an object"),
    ({"schema_version": 1}, "no \"effects\" list"),
    ({"schema_version": 7, "effects": []}, "newer"),
    (42, "must be a preset name"),
    ("does-not-exist", "fx preset 'does-not-exist' not found; available: .*tight-kick"),
])
def test_bad_chains_are_rejected_clearly(chain, match):
    with pytest.raises(PresetError, match=match):
        load_effect_chain(chain)


def test_bad_preset_files(tmp_path):
    cases = {
        "broken.json": "{not json",
        "list.json": "[]",
        "noversion.json": json.dumps({"effects": []}),
        "newer.json": json.dumps({"schema_version": 2, "effects": []}),
        "badfx.json": json.dumps({"schema_version": 1, "effects": [{"type": "Reverb", "params": {"room_size": 5}}]}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for name in cases:
        with pytest.raises(PresetError) as exc:
            load_effect_chain(str(tmp_path / name))
        assert name in str(exc.value)
        if name == "newer.json":
            assert isinstance(exc.value, SchemaTooNewError)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_relative_ir_path_resolves_against_preset_folder(tmp_path, drums):
    from idm_host.audio import save_audio

    save_audio(tmp_path / "ir.wav", np.r_[1.0, np.zeros(99)].astype(np.float32), SR)
    (tmp_path / "conv.json").write_text(json.dumps({"schema_version": 1, "effects": [
        {"type": "Convolution", "params": {"impulse_response_filename": "ir.wav"}}]}))
    with load_effect_chain(str(tmp_path / "conv.json")) as chain:
        assert chain.process(drums, SR).shape == drums.shape


def test_save_effect_chain_never_overwrites(tmp_path):
    p = save_effect_chain({"schema_version": 1, "name": "mine", "effects": [{"type": "Gain", "params": {"gain_db": 1}}]},
                          tmp_path / "mine.json")
    before = p.read_bytes()
    with pytest.raises(PresetError, match="already exists"):
        save_effect_chain({"effects": []}, p)
    assert p.read_bytes() == before
    with pytest.raises(PresetError):
        save_effect_chain({"effects": [{"type": "Nope"}]}, tmp_path / "other.json")
    assert not (tmp_path / "other.json").exists()


def test_fresh_instances_per_chain(drums):
    a = load_effect_chain("room")
    b = load_effect_chain("room")
    assert a.board[0] is not b.board[0]
    np.testing.assert_array_equal(a.process(drums, SR), b.process(drums, SR))


# ----------------------------------------------------------------------------- VST3 in a child process
@pytest.fixture
def zam():
    """The zam-plugins VST3 (Makefile APT_PACKAGES); fails, never skips, when missing."""
    if not ZAM.exists():
        pytest.fail(f"{ZAM} is missing; install Debian's zam-plugins (make apt-deps does)")
    return ZAM


def test_vst3_hosted_processes_and_validates(zam, drums):
    chain = load_effect_chain([{"type": "Gain", "params": {"gain_db": 6.0}},
                               {"type": "VST3", "path": str(ZAM),
                                "params": {"threshold_db": -30.0, "ratio": 8.0, "attack_ms": 1.0}}])
    try:
        out = chain.process(drums, SR)
        assert out.shape == drums.shape and np.isfinite(out).all()
        boosted = drums * 10 ** (6 / 20)
        assert np.sqrt(np.mean(out ** 2)) < 0.9 * np.sqrt(np.mean(boosted ** 2))  # it compresses
        mono = chain.process(drums[:1], SR)
        assert mono.shape == (1, SR)
        doc = chain.to_json()
        assert doc["effects"][1]["state_b64"]
    finally:
        chain.close()
    with load_effect_chain(doc) as again:  # the saved state restores the same sound
        np.testing.assert_allclose(again.process(drums, SR), out, atol=1e-6)
    with pytest.raises(PresetError, match="out of range"):
        PluginHost(str(ZAM), {"threshold_db": 100.0})
    with pytest.raises(PresetError, match="no parameter 'wobble'"):
        PluginHost(str(ZAM), {"wobble": 1.0})


def test_a_crashing_plugin_does_not_take_the_app_down(zam, drums):
    host = PluginHost(str(ZAM), {"ratio": 4.0})
    try:
        assert host.process(drums, SR).shape == drums.shape
        os.kill(host.pid, signal.SIGKILL)  # what a segfaulting plugin looks like from here
        with pytest.raises(PluginCrashedError, match="crashed|no longer running"):
            host.process(drums, SR)
        with pytest.raises(PluginCrashedError):
            host.process(drums, SR)
    finally:
        host.close()
    assert os.getpid() and np.isfinite(build_board("room")(drums, SR)).all()  # we are still here


def test_vst3_that_is_not_a_plugin(tmp_path):
    fake = tmp_path / "Fake.vst3"
    fake.write_bytes(b"not a plugin")
    with pytest.raises(PresetError, match="failed to load"):
        PluginHost(str(fake))


def test_chain_validation_resolves_names():
    doc = resolve_chain("tight-kick")
    assert doc["name"] == "tight-kick" and doc["effects"][0]["type"] == "HighpassFilter"
