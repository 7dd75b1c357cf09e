"""The engine's contract: exact overrides, chunking equivalence, stereo, progress and cancel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from idm_host.audio import load_audio
from idm_host.engine import Separator
from idm_host.errors import Cancelled, IdmError
from idm_host.types import Transcription

SR = 44100


@pytest.fixture(scope="module")
def loop(demo_loop):
    return load_audio(demo_loop)


def test_analysis_shapes_and_null(separator, loop):
    an = separator.analyze(loop)
    k = len(separator.classes)
    assert an.stems.audio.shape == (k, 2, loop.n_frames)
    assert an.stems.residual.shape == (2, loop.n_frames)
    np.testing.assert_allclose(an.stems.audio.sum(0) + an.stems.residual, loop.samples, atol=1e-5)
    assert an.kit.one_shots.shape == (k, 44100)
    assert an.transcription.n_hits > 10
    assert set(an.transcription.classes) == set(separator.classes)
    for hits in an.transcription.hits.values():
        for h in hits:
            assert 0 <= h.time_s < loop.duration_s and 0 < h.velocity <= 1


def test_deterministic_and_kit_reused(separator, loop):
    a = separator.analyze(loop)
    b = separator.analyze(loop)
    np.testing.assert_array_equal(a.stems.audio, b.stems.audio)
    assert a.kit.one_shots is b.kit.one_shots  # computed once, reused


def test_chunked_equals_unchunked(official_model, loop):
    whole = Separator(official_model, device="cpu", chunk_s=60, block_s=60)
    chunked = Separator(official_model, device="cpu", chunk_s=1.5, overlap_s=2.0, block_s=0.7)
    ew, ec = whole.encode(loop), chunked.encode(loop)
    np.testing.assert_allclose(ec.probabilities, ew.probabilities, atol=1e-4)
    np.testing.assert_allclose(ec.velocity, ew.velocity, atol=1e-4)
    np.testing.assert_allclose(ec.track_gains, ew.track_gains, atol=1e-5)
    tw, tc = whole.transcription_from(ew), chunked.transcription_from(ec)
    for c in tw.classes:
        assert [h.time_s for h in tw.hits[c]] == [h.time_s for h in tc.hits[c]]
        np.testing.assert_allclose([h.velocity for h in tw.hits[c]], [h.velocity for h in tc.hits[c]], atol=1e-5)
    sw = whole.separate(loop, tw)
    sc = chunked.separate(loop, tw)
    np.testing.assert_allclose(sc.audio, sw.audio, atol=2e-5)


@pytest.mark.parametrize("masking", ["power", "wiener", "adaptive", "none"])
def test_blocks_masked_in_threads_equal_blocks_one_after_another(official_model, loop, masking):
    """The CPU masks two blocks at once (Separator.block_threads): the same bytes as one at a time,
    streamed in order; the streaming consumer may stop early without waiting for the rest."""
    sep = Separator(official_model, device="cpu", block_s=0.7)
    analysis = sep.analyze(loop, masking="none")
    outs = {}
    for threads in (1, 2):
        sep.block_threads = threads
        outs[threads] = list(sep.iter_blocks(analysis.audio, analysis.transcription, analysis.kit, masking=masking))
    assert len(outs[1]) == len(outs[2]) > 2
    for (s1, b1, r1), (s2, b2, r2) in zip(outs[1], outs[2]):
        assert s1 == s2 and b1.tobytes() == b2.tobytes() and r1.tobytes() == r2.tobytes()
    # written in place by the workers (out=): the same bytes, the yielded blocks are views of it
    c, n = analysis.audio.samples.shape
    stems = np.full((len(sep.classes), c, n), np.nan, np.float32)
    residual = np.full((c, n), np.nan, np.float32)
    placed = list(sep.iter_blocks(analysis.audio, analysis.transcription, analysis.kit, masking=masking,
                                  out=(stems, residual)))
    assert [s for s, _, _ in placed] == [s for s, _, _ in outs[1]]
    assert all(np.shares_memory(b, stems) and np.shares_memory(r, residual) for _, b, r in placed)
    assert stems.tobytes() == np.concatenate([b for _, b, _ in outs[1]], axis=2).tobytes()
    assert residual.tobytes() == np.concatenate([r for _, _, r in outs[1]], axis=1).tobytes()
    it = sep.iter_blocks(analysis.audio, analysis.transcription, analysis.kit, masking=masking)
    assert next(it)[0] == 0
    it.close()  # the pool shuts down; no thread is left computing


def test_user_transcription_is_used_exactly(separator):
    """Hits 10 ms apart, off the frame grid, with their own velocities: each one sounds where it is."""
    n = 2 * SR
    silence = np.zeros((1, n), np.float32)
    times = [0.1003, 0.1103, 0.5, 0.51, 0.52, 1.2345]
    vels = [1.0, 0.5, 0.25, 0.75, 1.0, 0.1]
    tr = Transcription.from_times(separator.classes, {"SD": list(zip(times, vels))})
    kit = separator.extract_kit(silence, sample_rate=SR)
    syn = separator.separate(silence, tr, sample_rate=SR, masking="none", kit=kit)
    shot = kit.one_shot("SD") * kit.velocity_scale * kit.gain("SD")
    ref = np.zeros(n, np.float32)
    for t, v in zip(times, vels):
        p = int(round(t * SR))
        seg = shot[: n - p]
        ref[p:p + seg.size] += v * seg
    np.testing.assert_allclose(syn.stem("SD")[0], ref, atol=1e-5)
    others = [c for c in separator.classes if c != "SD"]
    assert all(np.abs(syn.stem(c)).max() == 0 for c in others)


def test_override_validates_classes(separator):
    tr = Transcription.from_times(["COWBELL"], {"COWBELL": [0.1]})
    with pytest.raises(IdmError, match="COWBELL"):
        separator.separate(np.zeros(SR, np.float32), tr, sample_rate=SR)


def test_stereo_masks_apply_to_each_channel(separator, loop):
    # the synthetic-stem masks (wiener, power) are cut from the mid: the same on every channel
    an = separator.analyze(loop, masking="power")
    left = separator.separate(loop.samples[:1], an.transcription, sample_rate=SR, kit=an.kit, masking="power")
    # same masks (from the mid); applied to the left channel alone they give the left channel's stems
    mixed = separator.separate(loop.samples.mean(0, keepdims=True), an.transcription, sample_rate=SR,
                               kit=an.kit, masking="power")
    np.testing.assert_allclose(an.stems.audio[:, :1], left.audio, atol=1e-5)
    assert mixed.audio.shape[1] == 1


def test_other_rates_and_tensors(separator, loop):
    from idm_host.audio import resample

    x48 = resample(loop.samples, SR, 48000)
    stems = separator.separate(torch.from_numpy(x48), sample_rate=48000)
    assert stems.sample_rate == SR and stems.audio.shape[2] == pytest.approx(loop.n_frames, abs=2)


def test_silence_gives_silent_stems(separator):
    x = np.zeros((2, 3 * SR), np.float32)
    an = separator.analyze(x, sample_rate=SR)
    assert an.transcription.n_hits == 0
    assert np.abs(an.stems.audio).max() == 0 and np.abs(an.stems.residual).max() == 0


def test_progress_is_monotonic_and_cancel_stops(separator, loop):
    seen = []
    separator.analyze(loop, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(seen, seen[1:]))

    calls = []

    def cancel(fraction, message):
        calls.append(fraction)
        if fraction > 0.3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        separator.analyze(loop, progress=cancel)
    assert calls[-1] < 1.0


def test_tiny_input(separator):
    an = separator.analyze(np.full(300, 0.1, np.float32), sample_rate=SR)
    assert an.stems.audio.shape == (9, 1, 300)


def test_bad_arguments(separator):
    with pytest.raises(IdmError, match="masking"):
        separator.separate(np.zeros(SR, np.float32), sample_rate=SR, masking="ideal")
    with pytest.raises(IdmError, match="device"):
        Separator("default", device="tpu")


def test_saturated_kit_embedding_snaps_to_its_kit(separator):
    e = np.array([0.0, 0.0, 0.0, 0.995, 0.0, 0.005], np.float32)
    np.testing.assert_array_equal(separator.synth_embedding(e), [0, 0, 0, 1, 0, 0])
    mixed = np.array([0.5, 0.0, 0.0, 0.5, 0.0, 0.0], np.float32)
    np.testing.assert_array_equal(separator.synth_embedding(mixed), mixed)
    assert separator.one_shots(e) is separator.one_shots(np.eye(6, dtype=np.float32)[3])
