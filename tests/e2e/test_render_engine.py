"""The contract with the engine: rendering an analysis's hits with its own kit re-makes its synthetic stems."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host.audio import load_audio
from idm_host.render import render, render_synthetic_stems
from idm_host.session import Session, SetKitParams, SetMixer


@pytest.fixture(scope="module")
def synthetic(separator, demo_loop):
    return separator.analyze(load_audio(demo_loop), masking="none")


def test_render_matches_engine_synthetic_stems(synthetic):
    s = Session.from_analysis(synthetic)
    assert s.transcription().n_hits > 5
    expected = synthetic.stems.audio[:, 0]  # masking="none": the synthetic stems, on every channel
    r = render(s, channels=1, effects=False)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(r.stems[:, 0], expected, atol=1e-5 * scale)
    np.testing.assert_allclose(render_synthetic_stems(s), expected, atol=1e-5 * scale)


def test_wiener_stems_layer_and_residual_remake_the_mix(separator, demo_loop):
    audio = load_audio(demo_loop)
    an = separator.analyze(audio)
    s = Session.from_analysis(an)
    for c in s.classes:
        s.apply(SetKitParams(c, blend="layer", gain_db=-20.0))
    s.apply(SetMixer("residual", mute=False))
    layered = render(s, channels=2, effects=False)
    for c in s.classes:
        s.apply(SetKitParams(c, blend="sample"))
    s.apply(SetMixer("residual", mute=True))
    samples_only = render(s, channels=2, effects=False)
    # separated stems + residual null against the input, so what layering adds is exactly the mix
    np.testing.assert_allclose(layered.mix - samples_only.mix, audio.samples, atol=1e-5)
