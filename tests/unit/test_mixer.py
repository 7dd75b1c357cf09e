"""One mixer for everything that makes sound: the GUI's stem preview, render, and export agree
sample for sample under gain, pan, mute, solo, the residual strip and the master fader and mute."""
from __future__ import annotations

import math

import numpy as np
import pytest

from idm_host.audio import load_audio
from idm_host.render import pan_gains, render
from idm_host.session import Session, SetMixer, SetStems
from idm_host.types import Stems
from sessionkit import SR, make_analysis


@pytest.mark.parametrize("pan", [-1.0, -0.6, -0.25, 0.0, 0.3, 0.75, 1.0])
def test_pan_law_is_constant_power_with_unity_at_centre(pan):
    left, right = pan_gains(pan)
    assert left ** 2 + right ** 2 == pytest.approx(2.0, abs=1e-12)
    assert left >= 0 and right >= 0
    if pan == 0.0:
        assert (left, right) == (1.0, 1.0)
    assert (left > right) == (pan < 0) or pan == 0.0
    assert pan_gains(-pan) == pytest.approx((right, left), abs=1e-12)


@pytest.fixture
def session():
    """A stereo session whose stems are exactly its kit's dry class tracks, so that the kit render
    and the stem preview carry the same signals into the mixer."""
    s = Session.from_analysis(make_analysis(duration_s=2.0, channels=2))
    dry = render(s, effects=False, channels=2)  # neutral mixer: the dry tracks themselves
    s.apply(SetStems(Stems(s.classes, dry.stems.copy(), s.stems.residual.copy(), SR)))
    return s


MIXES = {
    "neutral": [],
    "gain and pan": [("KD", {"gain_db": -6.0, "pan": -0.5}), ("SD", {"pan": 1.0}), ("HH_CHH", {"pan": -1.0})],
    "mute": [("KD", {"mute": True}), ("HH_CHH", {"pan": 0.4, "gain_db": 3.0})],
    "solo": [("SD", {"solo": True}), ("HH_CHH", {"solo": True, "pan": -0.3}), ("KD", {"pan": 0.8})],
    "residual solo": [("residual", {"mute": False, "solo": True, "pan": 0.2})],
    "residual muted": [("residual", {"mute": True}), ("SD", {"gain_db": -2.5})],
    "master gain": [("master", {"gain_db": -4.0}), ("SD", {"pan": -0.7})],
    "master mute": [("master", {"mute": True}), ("KD", {"solo": True})],
}


def _apply(s: Session, changes) -> None:
    for strip, params in changes:
        s.apply(SetMixer(strip, **params))


@pytest.mark.parametrize("name", list(MIXES))
def test_preview_render_and_export_agree_sample_for_sample(session, tmp_path, name):
    from gui import document

    _apply(session, MIXES[name])
    preview = document.mix_of_stems(session)  # what the GUI plays for "Stems"
    rendered = render(session, effects=False, channels=2).mix  # hits x kit through the mixer
    np.testing.assert_array_equal(preview, rendered)
    # export writes render's mix (32-bit float WAV: the round trip is exact)
    opts = document.ExportOptions(tmp_path, name="x", stems=False, midi=False, mix=True, bit_depth=32)
    (path,) = document.export(session, opts)
    exported = load_audio(path).samples
    np.testing.assert_array_equal(exported, render(session, channels=2).mix)
    if name == "master mute":
        assert not preview.any() and not exported.any()
    else:
        assert np.abs(preview).max() > 0.01


def test_the_mixer_law_by_hand(session):
    dry = {c: session.stems.stem(c) for c in session.classes}
    _apply(session, MIXES["gain and pan"] + [("master", {"gain_db": -3.0}), ("residual", {"mute": True})])
    mix = render(session, effects=False, channels=2).mix.astype(np.float64)
    expect = np.zeros_like(mix)
    for c in session.classes:
        m = session.mixer[c]
        theta = (m.pan + 1) * math.pi / 4
        g = 10 ** (m.gain_db / 20)
        expect[0] += g * math.sqrt(2) * math.cos(theta) * dry[c][0]
        expect[1] += g * math.sqrt(2) * math.sin(theta) * dry[c][1]
    expect *= 10 ** (-3 / 20)
    np.testing.assert_allclose(mix, expect, atol=1e-6)


def test_render_honours_the_master_mute_with_effects(session):
    session.apply(SetMixer("master", mute=True))
    assert not render(session).mix.any()
