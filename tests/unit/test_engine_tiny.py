"""Engine contracts on a tiny random-weights model (tests/conftest.py's ``tiny_separator``): they hold
for any weights, so they run without the official checkpoint (the golden tests keep that)."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host.engine import Separator
from idm_host.errors import Cancelled, IdmError
from idm_host.types import Transcription

SR = 44100


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    """2.5 s of stereo: decaying noise bursts every 250 ms over a low floor."""
    rng = np.random.default_rng(11)
    n = int(2.5 * SR)
    x = 0.01 * rng.standard_normal((2, n)).astype(np.float32)
    burst = (rng.standard_normal(2048) * np.exp(-np.arange(2048) / 300.0)).astype(np.float32)
    for start in range(0, n - 2048, SR // 4):
        x[:, start:start + 2048] += 0.5 * burst
    return x


@pytest.fixture(scope="module")
def hits(tiny_separator) -> Transcription:
    return Transcription.from_times(tiny_separator.classes, {
        "KD": [(0.0, 1.0), (0.5, 0.8), (1.0, 1.0)], "SD": [(0.25, 0.6), (0.7503, 1.0)], "HH_CHH": [(1.2345, 0.3)]})


@pytest.mark.parametrize("masking", ["none", "wiener", "power"])
def test_stems_and_residual_add_up_to_the_mix(tiny_separator, mix, hits, masking):
    an = tiny_separator.analyze(mix, hits, sample_rate=SR, masking=masking)
    k = len(tiny_separator.classes)
    assert an.stems.audio.shape == (k, 2, mix.shape[1]) and an.stems.residual.shape == mix.shape
    # float32 sums of k + 1 signals of magnitude <= ~1: a few roundings of 2**-24 each
    np.testing.assert_allclose(an.stems.audio.sum(0) + an.stems.residual, mix, atol=(k + 1) * 4 * 2.0 ** -24 * 4)
    assert an.kit.one_shots.shape == (k, int(0.05 * SR))


def test_given_hits_sound_exactly_where_they_are(tiny_separator, hits):
    n = int(1.5 * SR)
    silence = np.zeros((1, n), np.float32)
    kit = tiny_separator.extract_kit(silence, sample_rate=SR)
    stems = tiny_separator.separate(silence, hits, sample_rate=SR, masking="none", kit=kit)
    for c in tiny_separator.classes:
        ref = np.zeros(n, np.float32)
        shot = kit.one_shot(c) * kit.velocity_scale * kit.gain(c)
        for h in hits.hits.get(c, ()):
            p = int(round(h.time_s * SR))
            ref[p:p + shot.size] += h.velocity * shot[: n - p]
        np.testing.assert_allclose(stems.stem(c)[0], ref, atol=1e-6 * max(1.0, np.abs(ref).max()))


def test_chunked_encoding_equals_one_pass(tiny_model_path, mix):
    one = Separator(str(tiny_model_path), device="cpu", chunk_s=60, block_s=60).encode(mix, sample_rate=SR)
    chunked = Separator(str(tiny_model_path), device="cpu", chunk_s=0.8, overlap_s=0.5).encode(mix, sample_rate=SR)
    np.testing.assert_allclose(chunked.probabilities, one.probabilities, atol=1e-4)
    np.testing.assert_allclose(chunked.velocity, one.velocity, atol=1e-4)


def test_repeatable(tiny_separator, mix, hits):
    a = tiny_separator.analyze(mix, hits, sample_rate=SR)
    b = tiny_separator.analyze(mix, hits, sample_rate=SR)
    np.testing.assert_array_equal(a.stems.audio, b.stems.audio)
    np.testing.assert_array_equal(a.kit.one_shots, b.kit.one_shots)


def test_progress_rises_to_one_and_a_cancel_stops(tiny_separator, mix, hits):
    seen: list[float] = []
    tiny_separator.analyze(mix, hits, sample_rate=SR, progress=lambda f, m: seen.append(f))
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)

    def stop(fraction, message):
        if fraction > 0.3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        tiny_separator.analyze(mix, hits, sample_rate=SR, progress=stop)


def test_unknown_classes_and_maskings_are_refused(tiny_separator):
    with pytest.raises(IdmError, match="COWBELL"):
        tiny_separator.separate(np.zeros(SR, np.float32), Transcription.from_times(["COWBELL"], {"COWBELL": [0.1]}),
                                sample_rate=SR)
    with pytest.raises(IdmError, match="masking"):
        tiny_separator.separate(np.zeros(SR, np.float32), sample_rate=SR, masking="ideal")


def test_kit_synthesis_reports_each_block_and_a_cancel_there_stops_it(tiny_model_path, mix, hits, tmp_path,
                                                                     monkeypatch):
    """The synthesis of a kit not yet cached reports after each synthesiser block, so a cancel (a
    Dask worker's stop flag, a GUI's Stop) takes effect inside it instead of after it; nothing is
    cached by a cancelled synthesis, and reporting changes no bit of the one-shots."""
    monkeypatch.setenv("IDM_HOST_MODELS", str(tmp_path / "models"))  # an empty one-shot cache
    sep = Separator(str(tiny_model_path), device="cpu", block_s=0.5)
    n_blocks = sep.config.synth_blocks
    e = sep.synth_embedding(sep.encode(mix, sample_rate=SR).kit_embedding)
    seen: list[tuple[float, str]] = []
    with_progress = sep.synthesize(e, progress=lambda f, m: seen.append((f, m)))
    assert seen == [((i + 1) / n_blocks, "synthesising the kit") for i in range(n_blocks)]
    np.testing.assert_array_equal(with_progress, sep.synthesize(e))

    steps: list[str] = []

    def stop_in_synthesis(fraction, message):
        steps.append(message)
        if message == "synthesising the kit" and steps.count(message) == 2:  # 1: the stage's start; 2: a block
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        sep.analyze(mix, hits, sample_rate=SR, masking="power", progress=stop_in_synthesis)
    assert "kit ready" not in steps
    assert not list((tmp_path / "models").rglob("*.npz")) and not sep._kits  # nothing of it kept
    analysis = sep.analyze(mix, hits, sample_rate=SR, masking="power")  # then the same synthesis runs whole and is cached
    np.testing.assert_array_equal(analysis.kit.one_shots, with_progress)
