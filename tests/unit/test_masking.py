"""Masking modes (idm_host.masking and the engine): null, determinism, exact hits, the adaptive fit,
chunking, silence where nothing plays, and the corrected kit."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host.engine import Separator
from idm_host.errors import IdmError
from idm_host.masking import MODES, AdaptiveConfig, AdaptiveMasker, hit_activations, hit_operator, resolve_mode
from idm_host.dsp import WienerFilter
from idm_host.types import Audio, Hit, Transcription

SR = 44100
MASKED = ("wiener", "power", "adaptive")


def _drum(kind: str, seed: int) -> np.ndarray:
    """A fixed one-shot that is not the model's: a pitched thump, a noisy crack, a bright tick."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.4 * SR)) / SR
    if kind == "kick":
        return (0.9 * np.sin(2 * np.pi * (50 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 9)).astype(np.float32)
    if kind == "snare":
        tone = 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
        return (tone + 0.5 * rng.standard_normal(t.size) * np.exp(-t * 14)).astype(np.float32)
    noise = np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t * 60)
    return (0.25 * noise).astype(np.float32)


HITS = {"KD": [0.05, 0.52, 1.13, 1.61, 2.2], "SD": [0.31, 0.83, 1.37, 1.9, 2.45],
        "HH_CHH": [0.05 + 0.137 * i for i in range(20)]}
KINDS = {"KD": "kick", "SD": "snare", "HH_CHH": "hat"}


PANS = {"KD": (1.0, 1.0), "SD": (1.0, 0.6), "HH_CHH": (0.5, 1.0)}


def _true_stems(n: int) -> dict[str, np.ndarray]:
    """Per drum, its stereo stem: the drum at its hits, panned, with fixed velocities."""
    out = {}
    for c, times in HITS.items():
        s = np.zeros((2, n), np.float32)
        shot = _drum(KINDS[c], 3)
        for k, t in enumerate(times):
            p = int(round(t * SR))
            m = min(n - p, shot.size)
            v = 0.6 + 0.4 * ((k * 7) % 5) / 4
            for ch in range(2):
                s[ch, p:p + m] += PANS[c][ch] * v * shot[:m]
        out[c] = s
    return out


@pytest.fixture(scope="module")
def clip():
    """3 s stereo: three drums that are not the model's at known times (panned apart), plus a
    low hum no class explains."""
    n = 3 * SR
    x = np.sum(list(_true_stems(n).values()), axis=0)
    x += (0.02 * np.sin(2 * np.pi * 120 * np.arange(n) / SR)).astype(np.float32)
    return Audio(x.astype(np.float32), SR)


@pytest.fixture(scope="module")
def hits(separator):
    vel = {c: [0.6 + 0.4 * ((k * 7) % 5) / 4 for k in range(len(t))] for c, t in HITS.items()}
    tr = {c: [Hit(t, v) for t, v in zip(HITS[c], vel[c])] for c in HITS}
    return Transcription(separator.classes, {c: tr.get(c, []) for c in separator.classes}, 3.0)


@pytest.fixture(scope="module")
def analyses(separator, clip, hits):
    return {m: separator.analyze(clip, hits, masking=m) for m in MODES}


def test_modes_are_the_documented_ones():
    from idm_host.commands.separate import MASKING_CHOICES

    assert MASKING_CHOICES == MODES == ("auto", "wiener", "power", "adaptive", "none")


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_nulls_and_keeps_user_hits(analyses, clip, hits, mode):
    an = analyses[mode]
    np.testing.assert_allclose(an.stems.audio.sum(0) + an.stems.residual, clip.samples, atol=1e-5)
    assert an.stems.audio.shape == (len(hits.classes), 2, clip.n_frames)
    for c in hits.classes:
        assert [(h.time_s, h.velocity) for h in an.transcription.hits[c]] == \
               [(h.time_s, h.velocity) for h in hits.hits[c]]


def test_auto_uses_adaptive_for_user_hits(analyses):
    assert analyses["auto"].extra["masking"] == "adaptive"
    np.testing.assert_array_equal(analyses["auto"].stems.audio, analyses["adaptive"].stems.audio)
    assert resolve_mode("auto", user_hits=False) == "power"
    assert resolve_mode("auto", user_hits=True) == "adaptive"
    assert resolve_mode("wiener", user_hits=True) == "wiener"


@pytest.mark.parametrize("mode", MASKED)
def test_each_mode_is_deterministic(separator, analyses, clip, hits, mode):
    again = separator.analyze(clip, hits, masking=mode)
    np.testing.assert_array_equal(again.stems.audio, analyses[mode].stems.audio)
    np.testing.assert_array_equal(again.kit.one_shots, analyses[mode].kit.one_shots)


@pytest.mark.parametrize("mode", MODES)
def test_classes_without_hits_are_silent(analyses, hits, mode):
    an = analyses[mode]
    for i, c in enumerate(hits.classes):
        if not hits.hits[c]:
            assert not an.stems.audio[i].any(), c
    assert all(np.abs(an.stems.audio[hits.classes.index(c)]).max() > 1e-3 for c in HITS)


@pytest.mark.parametrize("mode", MODES)
def test_no_hits_at_all_gives_the_input_as_residual(separator, clip, mode):
    empty = Transcription(separator.classes, {c: [] for c in separator.classes}, 3.0)
    an = separator.analyze(clip, empty, masking=mode)
    assert not an.stems.audio.any()
    np.testing.assert_array_equal(an.stems.residual, clip.samples)


def test_power_masks_are_sharper_than_wiener(analyses):
    """Same synthetic stems, exponent 2 against 1: the stems differ, and both null."""
    assert not np.allclose(analyses["power"].stems.audio, analyses["wiener"].stems.audio, atol=1e-4)


def test_adaptive_fit_lowers_its_divergence(separator, clip, hits):
    kit = separator.analyze(clip, hits, masking="none").kit
    plan = separator.fit_adaptive(clip, hits, kit, record_divergence=True)
    d = np.array(plan.divergence)
    assert d.size == AdaptiveConfig().n_iter + 1
    assert d[-1] < 0.5 * d[0]  # the model's one-shots are far from these drums; the fit closes much of it
    assert np.all(np.diff(d) <= 1e-3 * d[0])  # no update makes it noticeably worse


def test_adaptive_separates_better_than_the_synthetic_masks(analyses, clip):
    """Against the clip's true stems (rebuilt here), the fitted templates beat wiener and power."""
    truth = _true_stems(clip.n_frames)

    def sdr(mode):
        an = analyses[mode]
        out = []
        for c, ref in truth.items():
            est = an.stems.audio[an.stems.classes.index(c)]
            out.append(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))
        return np.array(out)

    assert sdr("adaptive").mean() > sdr("power").mean() + 3.0
    assert sdr("adaptive").mean() > sdr("wiener").mean() + 3.0


def test_adaptive_chunked_equals_unchunked(official_model, clip, hits):
    whole = Separator(official_model, device="cpu", block_s=60)
    blocked = Separator(official_model, device="cpu", block_s=0.7)
    a = whole.analyze(clip, hits, masking="adaptive")
    b = blocked.analyze(clip, hits, masking="adaptive")
    np.testing.assert_allclose(b.stems.audio, a.stems.audio, atol=2e-5)
    np.testing.assert_allclose(b.stems.residual, a.stems.residual, atol=2e-5)


def test_long_inputs_fit_on_excerpts_chosen_by_length(official_model, clip, hits):
    """With a fit budget shorter than the input, the templates come from fixed excerpts, and the
    result is still independent of the block size."""
    cfg = AdaptiveConfig(fit_max_s=2.0, fit_window_s=1.0)
    masker = AdaptiveMasker(WienerFilter(), SR, cfg)
    ranges = masker.fit_excerpts(clip.n_frames)
    assert len(ranges) == 2 and ranges[0][0] == 0 and ranges[-1][1] == clip.n_frames
    assert all(a % 256 == 0 for a, _ in ranges)
    assert masker.fit_excerpts(clip.n_frames) == ranges
    whole = Separator(official_model, device="cpu", block_s=60, adaptive=cfg)
    blocked = Separator(official_model, device="cpu", block_s=0.5, adaptive=cfg)
    a = whole.analyze(clip, hits, masking="adaptive")
    b = blocked.analyze(clip, hits, masking="adaptive")
    np.testing.assert_allclose(b.stems.audio, a.stems.audio, atol=2e-5)
    np.testing.assert_allclose(a.stems.audio.sum(0) + a.stems.residual, clip.samples, atol=1e-5)


def test_mono_input_and_bad_mode(separator, clip, hits):
    mono = Audio(clip.samples[:1], SR)
    an = separator.analyze(mono, hits, masking="adaptive")
    assert an.stems.audio.shape[1] == 1
    np.testing.assert_allclose(an.stems.audio.sum(0) + an.stems.residual, mono.samples, atol=1e-5)
    with pytest.raises(IdmError, match="masking"):
        separator.analyze(mono, hits, masking="ideal")
    with pytest.raises(IdmError, match="masking"):
        resolve_mode("soft", user_hits=True)


def test_corrected_kit_sounds_more_like_the_record(analyses, separator):
    """The adapted one-shots are closer, in log spectrum, to the drums that were really played than
    the model's synthetic ones; the synthetic kit stays available, and silent classes keep it."""
    an = analyses["adaptive"]
    synthetic = an.extra["synthetic_kit"]
    np.testing.assert_array_equal(synthetic.one_shots, analyses["none"].kit.one_shots)
    assert an.kit.one_shots.shape == synthetic.one_shots.shape
    assert np.isfinite(an.kit.one_shots).all()
    np.testing.assert_array_equal(an.kit.track_gains, synthetic.track_gains)

    def log_spec(x):
        spec = np.abs(np.fft.rfft(x[: int(0.3 * SR)], 8192))
        bands = np.add.reduceat(spec ** 2, np.geomspace(1, 4096, 40).astype(int))
        return 10 * np.log10(bands + 1e-12)

    for c in HITS:
        i = separator.classes.index(c)
        true = log_spec(_drum(KINDS[c], 3))
        d_syn = np.abs(log_spec(synthetic.one_shots[i]) - log_spec(synthetic.one_shots[i]).max()
                       - (true - true.max())).mean()
        d_fit = np.abs(log_spec(an.kit.one_shots[i]) - log_spec(an.kit.one_shots[i]).max()
                       - (true - true.max())).mean()
        assert d_fit < d_syn, (c, d_fit, d_syn)
    for i, c in enumerate(separator.classes):
        if c not in HITS:
            np.testing.assert_array_equal(an.kit.one_shots[i], synthetic.one_shots[i])


def test_hit_operator_is_the_convolution():
    """The sparse Toeplitz product equals a dense convolution of activations and templates."""
    rng = np.random.default_rng(0)
    k, f, t, n = 3, 5, 7, 40
    hits = [(np.array([0, 300, 2000, 9000]), np.array([1.0, 0.5, 0.25, 2.0], np.float32)),
            (np.array([], np.int64), np.array([], np.float32)),
            (np.array([255, 256, 257]), np.array([1.0, 1.0, 1.0], np.float32))]
    acts = hit_activations(hits, 256, 2)
    w = rng.random((k, f, t)).astype(np.float32)
    for n0 in (0, 5, 30):
        m = hit_operator(acts, t, n0, n)
        got = (m.T @ w.transpose(0, 2, 1).reshape(k * t, f)).T
        want = np.zeros((f, n))
        for ci, (fr, v) in enumerate(acts):
            h = np.zeros(n0 + n + t + 10)
            np.add.at(h, fr + 5, v)  # offset 5: frames may be negative (pre_frames)
            for ff in range(f):
                want[ff] += np.convolve(h, w[ci, ff])[5 + n0:5 + n0 + n]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_cli_separate_with_onsets_writes_both_kits(analyses, clip, hits, official_model, tmp_path):
    """``idm-host separate --onsets`` (auto: adaptive for the user's hits) writes the corrected
    one-shots to kit/ and the model's to kit/synthetic/; the stems null against the input."""
    from idm_host.audio import load_audio, save_audio
    from idm_host.cli import main

    wav = save_audio(tmp_path / "clip.wav", clip.samples, SR, bit_depth=32)
    onsets = tmp_path / "onsets.json"
    onsets.write_text(hits.to_json())
    assert main(["separate", str(wav), "--out", str(tmp_path / "out"), "--onsets", str(onsets),
                 "--model", official_model, "--device", "cpu", "--bit-depth", "32", "--quiet"]) == 0
    out = tmp_path / "out" / "clip"
    an = analyses["adaptive"]
    total = load_audio(out / "residual.wav", sample_rate=None).samples
    for i, c in enumerate(an.stems.classes):
        stem = load_audio(out / f"{c}.wav", sample_rate=None).samples
        np.testing.assert_allclose(stem, an.stems.audio[i], atol=1e-5)
        total = total + stem
        np.testing.assert_allclose(load_audio(out / "kit" / f"{c}.wav", sample_rate=None).samples[0],
                                   an.kit.one_shots[i], atol=2e-4)
        np.testing.assert_allclose(load_audio(out / "kit" / "synthetic" / f"{c}.wav", sample_rate=None).samples[0],
                                   an.extra["synthetic_kit"].one_shots[i], atol=2e-4)
    np.testing.assert_allclose(total, clip.samples, atol=1e-5)


def test_overlapping_fits_restore_torch_threads_as_they_were():
    """Two fits that overlap in two threads (the second starts while the first runs, the first ends
    first) both run on one torch thread, and the count in force before them is back afterwards."""
    import threading

    import torch

    from idm_host.masking import _one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inside: list[int] = []
        first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

        def first():
            with _one_torch_thread():
                first_in.set()
                second_in.wait(10)
                inside.append(torch.get_num_threads())
            first_out.set()

        def second():
            first_in.wait(10)
            with _one_torch_thread():
                second_in.set()
                first_out.wait(10)
                inside.append(torch.get_num_threads())  # the first fit has ended: still one thread

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert inside == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_tom_templates_cannot_learn_the_wash_they_ring_under(separator, official_model):
    """A tom heard only under a bright wash that no class has (a burst of noise at every hit): with
    the default limit its template stays within ``max_gain`` x its one-shot (at the fitted level)
    above the cut-off, on the mid and on each channel, and its stem takes less of the wash than an
    unlimited fit's; both null against the input."""
    rng = np.random.default_rng(5)
    n = 3 * SR
    t = np.arange(int(0.5 * SR)) / SR
    tom = (0.8 * np.sin(2 * np.pi * (110 + 40 * np.exp(-t * 30)) * t) * np.exp(-t * 8)).astype(np.float32)
    wash = (0.3 * np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t * 5)).astype(np.float32)
    times = [0.1, 0.8, 1.5, 2.2]
    x = np.zeros((2, n), np.float32)
    for s in times:
        p = int(s * SR)
        x[:, p:p + t.size] += tom + wash
    clip = Audio(x, SR)
    hits = Transcription(separator.classes, {c: [Hit(s, 0.9) for s in times] if c == "TT_LMT" else []
                                             for c in separator.classes}, 3.0)
    cfg = AdaptiveConfig()
    assert cfg.max_gain > 0 and cfg.max_gain_groups == ("TT",)
    free = Separator(official_model, device="cpu", adaptive=AdaptiveConfig(max_gain=0.0))
    kit = separator.analyze(clip, hits, masking="none").kit
    k = separator.classes.index("TT_LMT")
    lo = int(np.ceil(cfg.max_gain_above_hz * 1024 / SR))

    def over_the_limit(plan) -> float:
        """The largest ratio of a template bin above the cut-off to the limit there (<= 1: within)."""
        w0 = plan.initial[k]
        worst = 0.0
        for w in [plan.mid_templates[k], *plan.templates[:, k]]:
            limit = cfg.max_gain * np.vdot(w, w0) / np.vdot(w0, w0) * w0[lo:]
            worst = max(worst, float((w[lo:] / limit).max()))
        return worst

    # the limit is set at the level before each clip, which the clip itself lowers by a little
    assert over_the_limit(separator.fit_adaptive(clip, hits, kit)) <= 1.05
    assert over_the_limit(free.fit_adaptive(clip, hits, kit)) > 2  # unlimited, it does learn the wash

    def wash_in_tom_stem(sep) -> float:
        an = sep.analyze(clip, hits, masking="adaptive")
        np.testing.assert_allclose(an.stems.audio.sum(0) + an.stems.residual, clip.samples, atol=1e-5)
        spec = np.abs(np.fft.rfft(an.stems.audio[k].mean(0)))
        return float(np.sum(spec[np.fft.rfftfreq(n, 1 / SR) > 2000] ** 2))

    assert wash_in_tom_stem(separator) < 0.5 * wash_in_tom_stem(free)
