"""Rendering: numpy references, click replacement at exact hit times, blends, choke, tune, mixer, export."""
from __future__ import annotations

import json

import numpy as np
import pytest

from idm_host.audio import load_audio, save_audio
from idm_host.errors import AudioError, IdmError
from idm_host.render import export_stems, render, render_hits, render_synthetic_stems
from idm_host.session import (AddHits, DeleteHits, ReplaceSample, Session, SetEffects, SetKitParams, SetMixer)
from sessionkit import SR, make_analysis


def _reference(frames, gains, shot, n):
    """Plain numpy: an impulse train convolved with the one-shot, truncated."""
    train = np.zeros(n)
    for f, g in zip(frames, gains):
        if 0 <= f < n:
            train[f] += g
    return np.convolve(train, shot.astype(np.float64))[:n]


@pytest.mark.parametrize("method", ["fft", "direct", "auto"])
def test_render_hits_matches_numpy_convolution(method):
    rng = np.random.default_rng(1)
    shot = rng.standard_normal(3001).astype(np.float32)
    frames = np.sort(rng.integers(0, 20000, 60))
    gains = rng.uniform(0, 1, 60)
    out = render_hits(frames, gains, shot, 20000, method=method)
    np.testing.assert_allclose(out, _reference(frames, gains, shot, 20000), atol=2e-5)


def test_render_hits_window_with_early_hits():
    shot = np.arange(1, 101, dtype=np.float32)
    out = render_hits(np.array([-10, 5]), np.array([1.0, 2.0]), shot, 50, method="fft")
    expect = np.zeros(50, np.float32)
    expect[:90 if 90 < 50 else 50] += shot[10:60]
    expect[5:] += 2 * shot[:45]
    np.testing.assert_allclose(out, expect, atol=1e-3)


@pytest.fixture
def session():
    return Session.from_analysis(make_analysis(duration_s=3.0))


def test_model_kit_renders_the_synthetic_stems(session):
    a = make_analysis(duration_s=3.0)
    r = render(session, effects=False, channels=1)
    np.testing.assert_allclose(r.stems[:, 0], a.stems.audio[:, 0], atol=1e-6)
    np.testing.assert_allclose(render_synthetic_stems(session), a.stems.audio[:, 0], atol=1e-6)
    np.testing.assert_allclose(r.mix[0], a.stems.audio[:, 0].sum(0), atol=1e-5)


def test_click_sample_puts_energy_exactly_at_hit_times(session, tmp_path):
    click = np.zeros(64, np.float32)
    click[0] = 1.0
    path = save_audio(tmp_path / "click.wav", click, SR, bit_depth=32)
    session.apply(DeleteHits([h.id for h in session.hits["SD"]]))
    times = [0.1, 0.3337, 1.00001, 2.5]
    vels = [1.0, 0.5, 0.25, 0.8]
    session.apply(AddHits("SD", list(zip(times, vels))))
    session.apply(ReplaceSample("SD", path))
    r = render(session, classes=["SD"], effects=False, channels=1)
    x = r.stem("SD")[0]
    nz = np.flatnonzero(np.abs(x) > 1e-6)
    assert nz.tolist() == [round(t * SR) for t in times]
    np.testing.assert_allclose(x[nz], vels, atol=1e-6)  # linear curve, level 1, 0 dB
    session.apply(SetKitParams("SD", velocity_curve="fixed", gain_db=-6.0))
    x = render(session, classes=["SD"], effects=False, channels=1).stem("SD")[0]
    np.testing.assert_allclose(x[nz], 10 ** (-6 / 20), atol=1e-6)
    session.apply(SetKitParams("SD", velocity_curve="exponential", curve_amount=2.0, gain_db=0.0))
    x = render(session, classes=["SD"], effects=False, channels=1).stem("SD")[0]
    np.testing.assert_allclose(x[nz], np.square(vels), atol=1e-6)


def test_time_range_and_single_class_audition(session):
    full = render(session, effects=False, channels=1)
    part = render(session, classes=["HH_CHH"], start_s=1.0, end_s=2.0, effects=False, channels=1)
    assert part.classes == ("HH_CHH",) and part.n_frames == SR and part.start_s == 1.0
    np.testing.assert_allclose(part.stems[0, 0], full.stem("HH_CHH")[0, SR:2 * SR], atol=1e-6)
    with pytest.raises(IdmError):
        render(session, start_s=2.0, end_s=1.0)
    with pytest.raises(IdmError):
        render(session, classes=["XX"])


def test_mute_solo_gain_pan(session):
    base = render(session, effects=False, channels=2)
    session.apply(SetMixer("KD", gain_db=-6.0, pan=-1.0))
    r = render(session, effects=False, channels=2)
    kd = base.stem("KD")
    # constant-power pan law, unity at centre: hard left is sqrt(2) on the left, nothing on the right
    np.testing.assert_allclose(r.stem("KD")[0], kd[0] * 10 ** (-6 / 20) * np.sqrt(2), atol=1e-6)
    assert np.abs(r.stem("KD")[1]).max() < 1e-6 * np.abs(kd).max()
    session.apply(SetMixer("SD", solo=True))
    r = render(session, effects=False, channels=2)
    assert np.abs(r.mix - r.stem("SD")).max() < 1e-6 and np.abs(r.stem("KD")).max() == 0
    session.apply(SetMixer("SD", mute=True))
    assert np.abs(render(session, effects=False).mix).max() == 0.0


def test_residual_strip(session):
    a = make_analysis(duration_s=3.0)
    session.apply(SetMixer("residual", mute=False))
    r = render(session, effects=False, channels=1)
    np.testing.assert_allclose(r.mix[0], a.stems.audio[:, 0].sum(0) + a.stems.residual[0], atol=1e-5)
    np.testing.assert_allclose(r.mix[0], a.audio.samples[0], atol=1e-5)  # the original mix, re-made


def test_blends(session):
    a = make_analysis(duration_s=3.0)
    stem = a.stems.stem("SD")[0]
    click = np.zeros(10, np.float32)
    click[0] = 1.0
    session.apply(ReplaceSample("SD", samples=click, sample_rate=SR))
    sample = render(session, classes=["SD"], effects=False, channels=1).stem("SD")[0]
    session.apply(SetKitParams("SD", blend="layer", stem_gain_db=-6.0))
    layer = render(session, classes=["SD"], effects=False, channels=1).stem("SD")[0]
    np.testing.assert_allclose(layer, sample + stem * 10 ** (-6 / 20), atol=1e-6)
    session.apply(SetKitParams("SD", blend="replace", stem_gain_db=0.0))
    repl = render(session, classes=["SD"], effects=False, channels=1).stem("SD")[0]
    hits = [round(h.time_s * SR) for h in session.hits["SD"]]
    for f in hits:  # the stem is gated out right at the hit (the 10-sample click plays alone)
        np.testing.assert_allclose(repl[f:f + 10], sample[f:f + 10], atol=1e-7)
    far = hits[0] + 2000  # between hits the stem still plays
    assert repl[far] == pytest.approx(stem[far], abs=1e-7) and stem[far] != 0


def test_choke_cuts_open_hat(session):
    ring = np.ones(SR // 2, np.float32) * 0.5
    session.apply(DeleteHits([h.id for h in session.hits["HH_OHH"]] + [h.id for h in session.hits["HH_CHH"]]))
    session.apply(AddHits("HH_OHH", [(0.5, 1.0)]))
    session.apply(AddHits("HH_CHH", [(0.6, 1.0)]))
    session.apply(ReplaceSample("HH_OHH", samples=ring, sample_rate=SR))
    free = render(session, classes=["HH_OHH"], effects=False, channels=1).stem("HH_OHH")[0]
    session.apply(SetKitParams("HH_OHH", choked_by=["HH_CHH"]))
    cut = render(session, classes=["HH_OHH"], effects=False, channels=1).stem("HH_OHH")[0]
    a, c = round(0.5 * SR), round(0.6 * SR)
    assert free[c + 100] == pytest.approx(0.5) and np.all(cut[c:] == 0.0)
    np.testing.assert_array_equal(cut[a:c - 300], free[a:c - 300])
    assert 0 < cut[c - 100] < 0.5  # faded, not clicked


def test_tune_changes_pitch_and_length(session):
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR)).astype(np.float32)
    session.apply(DeleteHits([h.id for h in session.hits["TT_HMT"]]))
    session.apply(AddHits("TT_HMT", [(0.0, 1.0)]))
    session.apply(ReplaceSample("TT_HMT", samples=tone, sample_rate=SR))
    session.apply(SetKitParams("TT_HMT", tune_semitones=12.0))
    x = render(session, classes=["TT_HMT"], effects=False, channels=1).stem("TT_HMT")[0]
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    assert abs(nz[-1] - SR // 4) < 200  # an octave up plays twice as fast
    spec = np.abs(np.fft.rfft(x[: SR // 4]))
    peak_hz = np.argmax(spec) * SR / (SR // 4)
    assert abs(peak_hz - 880) < 10


def test_effects_apply_and_fresh_instances_render_identically(session):
    dry = render(session, channels=1)
    session.apply(SetEffects("KD", "room"))
    session.apply(SetEffects("master", [{"type": "Gain", "params": {"gain_db": -6.0}}]))
    a = render(session, channels=1)
    b = render(session, channels=1)
    np.testing.assert_array_equal(a.mix, b.mix)  # fresh plugins: no state leaks between renders
    assert not np.allclose(a.stem("KD"), dry.stem("KD"))
    np.testing.assert_allclose(a.mix, a.stems.sum(0) * 10 ** (-6 / 20), atol=1e-5)


def test_fx_json_round_trip_renders_bit_identical_audio(session):
    from idm_host.fx import build_board, chain_to_json

    chain = chain_to_json(build_board("fat-snare"))
    session.apply(SetEffects("SD", "fat-snare"))
    a = render(session, channels=2)
    session.apply(SetEffects("SD", json.loads(json.dumps(chain))))
    b = render(session, channels=2)
    np.testing.assert_array_equal(a.mix, b.mix)


@pytest.mark.parametrize("fmt, depth", [("wav", 16), ("wav", 24), ("wav", 32), ("flac", 24)])
def test_export_stems_formats(session, tmp_path, fmt, depth):
    r = render(session, channels=2)
    files = export_stems(r, tmp_path / "out", format=fmt, bit_depth=depth)
    assert {f.name for f in files} == {f"{c}.{fmt}" for c in session.classes} | {f"mix.{fmt}"}
    back = load_audio(tmp_path / "out" / f"mix.{fmt}", sample_rate=None)
    assert back.samples.shape == r.mix.shape and back.sample_rate == SR
    tol = {16: 1e-4, 24: 1e-6, 32: 0.0}[depth]
    np.testing.assert_allclose(back.samples, np.clip(r.mix, -1, 1) if depth != 32 else r.mix, atol=tol)


def test_export_refuses_to_overwrite(session, tmp_path):
    r = render(session, channels=1)
    export_stems(r, tmp_path)
    before = (tmp_path / "mix.wav").read_bytes()
    with pytest.raises(AudioError, match="already exists"):
        export_stems(r, tmp_path)
    assert (tmp_path / "mix.wav").read_bytes() == before
    export_stems(r, tmp_path, overwrite=True)
    with pytest.raises(AudioError):
        export_stems(r, tmp_path / "x", format="mp3")


@pytest.mark.parametrize("preset, floor_db", [("plate", -100.0), ("tom-boom", -100.0), ("lo-fi", -300.0)])
def test_silence_skipping_matches_whole_track_processing(preset, floor_db):
    """Sparse tracks skip long silences in their chains; the result stays within floor_db of exact."""
    hits = {"TT_HFT": [(0.2, 1.0), (9.0, 0.7), (9.3, 0.5)], "KD": [(0.0, 1.0)]}
    s = Session.from_analysis(make_analysis(duration_s=16.0, hits=hits))
    s.apply(SetEffects("TT_HFT", preset))
    exact = render(s, classes=["TT_HFT"], channels=1, tail_s=None).stem("TT_HFT")
    fast = render(s, classes=["TT_HFT"], channels=1).stem("TT_HFT")
    err = np.abs(exact - fast).max() / np.abs(exact).max()
    assert 20 * np.log10(err + 1e-30) < floor_db
