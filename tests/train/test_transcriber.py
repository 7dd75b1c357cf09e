"""The transcription network's data, calibration and engine use (no trained model needed here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from idm_host.classes import IDM_CLASSES
from idm_host.errors import IdmError, ModelError
from idm_host.train.kits import GM_KIT_NOTES, Instrument, SampleLayer, SampledKit
from idm_host.train.procedural import _acoustic_metal, augment_kit, change_decay, mix_kits, procedural_kit
from idm_host.train.recording import bleed
from idm_host.train.transcriber_data import ExampleStream, class_rates, mute_groups, performance, play, targets
from idm_host.train.transcriber_loop import STREAM_RATES, loss_fn, positive_weights
from idm_host.transcriber import (Calibration, Transcriber, gate_passed, pick_peaks, record_gate,
                                  save_transcriber)
from idm_host.transcriber.features import FRAME_RATE, HOP, N_BANDS, n_frames, spectrogram
from idm_host.transcriber.network import CRNN, TranscriberConfig
from idm_host.types import Hit, Transcription

SR = 44100


def _sine_kit(freq: float = 440.0, decay_s: float = 0.1) -> SampledKit:
    t = np.arange(int(0.8 * SR)) / SR
    x = (np.sin(2 * np.pi * freq * t) * np.exp(-t / decay_s)).astype(np.float32)
    return SampledKit("sine", {38: (Instrument("sine snare", 38, (SampleLayer(x),)),)})


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * SR / x.size)


def test_generator_plays_every_class_often_in_the_training_stream():
    rates = class_rates(ExampleStream([], duration_s=6.0), 400, seed=3)
    for c in IDM_CLASSES:
        assert rates[c]["per_minute"] >= 8.0, (c, rates[c])
        assert rates[c]["clip_share"] >= 0.25, (c, rates[c])
    # hats and kick/snare dominate, as in real playing
    assert rates["HH_CHH"]["per_minute"] > rates["TT_LMT"]["per_minute"]
    assert rates["KD"]["clip_share"] > 0.9
    # the loss's class balance is set from these rates: they must still describe the stream
    for c in IDM_CLASSES:
        assert rates[c]["per_minute"] == pytest.approx(STREAM_RATES[c], rel=0.3), (c, rates[c])


def test_kits_are_drawn_in_proportion_to_their_weights():
    kits = [SampledKit(n, _sine_kit(f).instruments) for n, f in zip("abc", (220.0, 440.0, 880.0))]
    s = ExampleStream(kits, procedural_p=0.0, kit_aug_prob=0.0, kit_weights=[6.0, 3.0, 1.0])
    rng = np.random.default_rng(5)
    drawn = [s._kit(rng)[1]["kit"] for _ in range(4000)]
    share = {n: drawn.count(n) / len(drawn) for n in "abc"}
    # binomial s.d. over 4000 draws is <= 0.008: 4 s.d. around 0.6 / 0.3 / 0.1
    assert abs(share["a"] - 0.6) < 0.032 and abs(share["b"] - 0.3) < 0.032 and abs(share["c"] - 0.1) < 0.032, share
    with pytest.raises(ValueError, match="3 positive weights"):
        ExampleStream(kits, kit_weights=[1.0, 0.0, 1.0])


def test_mixed_kits_take_each_drum_group_whole_from_one_source_kit():
    a, b = procedural_kit(11), procedural_kit(12)
    a = SampledKit("a", a.instruments)
    b = SampledKit("b", {n: v for n, v in b.instruments.items() if n not in (41, 43, 45, 47, 48, 50)})  # no toms
    rng = np.random.default_rng(0)
    seen: dict[str, set[str]] = {}
    for _ in range(60):
        kit, sources = mix_kits([a, b], rng)
        assert set(kit.classes) == set(IDM_CLASSES)
        assert sources["TT"] == "a"  # only kit a has toms
        for note, (inst,) in kit.instruments.items():
            group = GM_KIT_NOTES[note][:2]
            src = a if sources[group] == "a" else b
            assert any(inst is alt for alt in src.instruments[note]), (note, sources)
        for g, k in sources.items():
            seen.setdefault(g, set()).add(k)
    # every group that both kits have comes from either
    assert all(seen[g] == {"a", "b"} for g in ("KD", "SD", "HH", "CY")), seen
    # the training stream mixes only when asked
    s = ExampleStream([a, b], procedural_p=0.0, kit_aug_prob=0.0, mix_p=1.0)
    assert s._kit(rng)[1]["kit"].startswith("mix(")
    s = ExampleStream([a, b], procedural_p=0.0, kit_aug_prob=0.0)
    assert s._kit(rng)[1]["kit"] in ("a", "b")


def test_a_missed_rare_onset_costs_more_than_a_missed_kick():
    classes = ("KD", "HH_OHH", "TT_LMT")
    w = positive_weights(classes)
    assert w[:, 0].tolist() == pytest.approx([1.0, min(3.0, (113 / 13) ** 0.5), min(3.0, (113 / 14) ** 0.5)])
    on = torch.zeros(1, 3, 10)
    on[0, :, 5] = 1.0
    batch = {"onsets": on, "velocity": torch.zeros_like(on), "offset": torch.zeros_like(on)}
    costs = []
    for c in (None, 0, 1, 2):  # all found, then the network misses class c's onset only
        logits = torch.where(on > 0, torch.tensor(8.0), torch.tensor(-8.0))
        if c is not None:
            logits[0, c, 5] = -8.0
        out = {"onset_logits": logits, "velocity": torch.zeros_like(on), "offset": torch.zeros_like(on)}
        costs.append(float(loss_fn(out, batch, w)["bce"]))
    extra = [x - costs[0] for x in costs[1:]]
    assert extra[1] == pytest.approx(float(w[1, 0]) * extra[0], rel=1e-3)
    assert extra[2] == pytest.approx(float(w[2, 0]) * extra[0], rel=1e-3)
    out = {"onset_logits": torch.full_like(on, -8.0), "velocity": torch.zeros_like(on), "offset": torch.zeros_like(on)}
    assert float(loss_fn(out, batch)["bce"]) < float(loss_fn(out, batch, w)["bce"])  # unweighted stays available


def test_an_ended_example_has_no_hits_in_its_last_moments():
    kit = _sine_kit()

    def stream(**kw):
        return ExampleStream([kit], procedural_p=0.0, kit_aug_prob=0.0, record_strength=0.0, duration_s=6.0, **kw)

    def last_hit(ex):
        return max((t for hs in ex.hits.values() for t, _ in hs), default=0.0)

    rng = np.random.default_rng(5)
    ended = [stream(ending_p=1.0).example(rng) for _ in range(10)]
    assert all(ex.meta.get("ending") for ex in ended)
    assert all(last_hit(ex) < 6.0 - 0.3 for ex in ended)
    assert all(ex.onsets[:, int(5.7 * FRAME_RATE) + 1:].sum() == 0 for ex in ended)
    plain = [stream().example(np.random.default_rng(s)) for s in range(10)]
    assert any(last_hit(ex) >= 6.0 - 0.3 for ex in plain)  # without it, performances run to the clip's end
    # ending_p=0 draws nothing: the stream is the one made before the option existed
    same = [stream(ending_p=0.0).example(np.random.default_rng(s)) for s in range(3)]
    assert all(np.array_equal(a.audio, b.audio) and "ending" not in b.meta for a, b in zip(plain, same))


def test_muted_groups_fall_silent_throughout_or_from_a_point_and_one_always_plays():
    from idm_host.classes import group_of
    from idm_host.train.kits import PATTERN_NOTES

    def groups(p, lo=0.0, hi=np.inf):
        keep = (p.times_s >= lo) & (p.times_s < hi)
        return {group_of(PATTERN_NOTES[int(n)]) for n in p.notes[keep] if int(n) in PATTERN_NOTES}

    rng = np.random.default_rng(3)
    whole = sections = 0
    for _ in range(300):
        p = performance(rng, 6.0)
        q = mute_groups(p, rng)
        assert groups(q) and groups(q) <= groups(p)
        # what stays is p's own hits, untouched
        kept = set(zip(q.times_s.tolist(), q.notes.tolist(), q.velocities.tolist()))
        assert kept <= set(zip(p.times_s.tolist(), p.notes.tolist(), p.velocities.tolist()))
        for g in groups(p):
            n_p = sum(1 for n in p.notes if int(n) in PATTERN_NOTES and group_of(PATTERN_NOTES[int(n)]) == g)
            n_q = sum(1 for n in q.notes if int(n) in PATTERN_NOTES and group_of(PATTERN_NOTES[int(n)]) == g)
            if n_q == 0 and n_p > 0:
                whole += 1
            elif 0 < n_q < n_p:  # silent before or after one point: its hits are one run of p's
                t_p = np.sort([t for t, n in zip(p.times_s, p.notes) if int(n) in PATTERN_NOTES
                               and group_of(PATTERN_NOTES[int(n)]) == g])
                t_q = np.sort([t for t, n in zip(q.times_s, q.notes) if int(n) in PATTERN_NOTES
                               and group_of(PATTERN_NOTES[int(n)]) == g])
                i = int(np.searchsorted(t_p, t_q[0]))
                assert np.array_equal(t_p[i:i + t_q.size], t_q) and (i == 0 or i + t_q.size == t_p.size)
                sections += 1
    assert whole > 100 and sections > 50  # both kinds happen, often
    # through the stream: mute_p=1 marks every example and silences groups; 0 draws nothing
    kit = _sine_kit()
    rng = np.random.default_rng(4)
    ex = [ExampleStream([kit], procedural_p=0.0, kit_aug_prob=0.0, record_strength=0.0, mute_p=1.0).example(rng)
          for _ in range(3)]
    assert all(e.meta.get("muted") for e in ex)
    a = ExampleStream([kit], procedural_p=0.0, kit_aug_prob=0.0, record_strength=0.0).example(np.random.default_rng(9))
    b = ExampleStream([kit], procedural_p=0.0, kit_aug_prob=0.0, record_strength=0.0,
                      mute_p=0.0).example(np.random.default_rng(9))
    assert np.array_equal(a.audio, b.audio) and "muted" not in b.meta


def test_kit_augmentation_shifts_pitch_and_decay_as_asked():
    kit = _sine_kit()
    rng = np.random.default_rng(1)
    aug, changes = augment_kit(kit, rng, pitch_st=3.0, tilt_db=0.0, decay=(1.0, 1.0), prob=1.0)
    st = changes["SD"]["semitones"]
    y = aug.instruments[38][0].layers[0].samples
    x = kit.instruments[38][0].layers[0].samples
    ratio = _peak_hz(y[:8192]) / _peak_hz(x[:8192])
    assert ratio == pytest.approx(2 ** (st / 12), rel=0.02)
    # decay: the 1/e time scales with the factor asked for
    for factor in (0.5, 1.6):
        z = change_decay(x, factor)
        env_x, env_z = np.abs(x), np.abs(z)

        def tau(e):
            sm = np.sqrt(np.convolve(e.astype(np.float64) ** 2, np.ones(256) / 256, "same"))
            p = int(np.argmax(sm))
            return np.flatnonzero(sm[p:] < sm[p] * np.exp(-1))[0]

        assert tau(env_z) / tau(env_x) == pytest.approx(factor, rel=0.1)


def test_bleed_adds_delayed_duller_copies_at_the_levels_it_reports():
    stems = np.zeros((2, SR), dtype=np.float32)
    stems[0, 1000] = 1.0
    out, meta = bleed(stems, np.random.default_rng(0))
    first = int(np.flatnonzero(np.abs(out) > 1e-9)[0])
    assert 1000 + int(0.0005 * SR) <= first < 1000 + int(0.004 * SR)
    # a one-pole low-pass keeps the impulse's area: the bleed's sum equals its gain
    assert float(out.sum()) == pytest.approx(10 ** (meta["gains_db"][0] / 20), rel=0.02)
    assert 0 < meta["cutoff_hz"] < SR / 2


def test_targets_sit_at_the_nearest_frame_with_velocity_and_offset():
    hits = {c: [] for c in IDM_CLASSES}
    hits["KD"] = [(0.1234, 0.8)]
    on, vel, off = targets(hits, IDM_CLASSES, SR)
    k = IDM_CLASSES.index("KD")
    f = int(np.flatnonzero(on[k])[0])
    assert f == round(0.1234 * FRAME_RATE)
    assert vel[k, f] == pytest.approx(0.8)
    assert (f + off[k, f]) / FRAME_RATE == pytest.approx(0.1234, abs=1e-6)
    assert on.shape[1] == n_frames(SR)


def test_play_scales_by_velocity_and_reports_hits_inside_the_clip():
    kit = _sine_kit()
    from idm_host.train.patterns import Pattern

    p = Pattern.from_hits([(0.5, 38, 1.0), (2.5, 38, 0.5), (3.0, 38, 0.25)], 4.0)
    stems, hits = play(kit, p, IDM_CLASSES, np.random.default_rng(0), start_s=2.0, duration_s=2.0)
    assert [round(t, 3) for t, _ in hits["SD"]] == [0.5, 1.0]
    k = IDM_CLASSES.index("SD")
    a = np.abs(stems[k, int(0.5 * SR):int(0.52 * SR)]).max()
    b = np.abs(stems[k, int(1.0 * SR):int(1.02 * SR)]).max()
    assert a / b > 1.5  # 0.5 vs 0.25 velocity (the second rings over the first)


def test_procedural_kits_differ_and_cover_every_class():
    a, b = procedural_kit(1), procedural_kit(2)
    assert set(a.classes) == set(IDM_CLASSES)
    xa = a.instruments[36][0].layers[-1].samples
    xb = b.instruments[36][0].layers[-1].samples
    assert xa.size != xb.size or not np.allclose(xa, xb)


def test_procedural_metal_runs_from_dark_to_bright():
    # sampled crashes and open hats sit at a spectral centroid of 1.4-6 kHz; the synthesiser's must
    # reach there as well as bright metal (the synthesiser gave only 8.6-13 kHz before session 15)
    def centroid(x):
        spec = np.abs(np.fft.rfft(x[: int(0.3 * SR)].astype(np.float64), 1 << 14)) ** 2
        return float((spec * np.fft.rfftfreq(1 << 14, 1.0 / SR)).sum() / spec.sum())

    kits = [_acoustic_metal(np.random.default_rng(seed), False) for seed in range(16)]
    for note in (46, 49):
        c = [centroid(k[note](0.8)) for k in kits]
        assert min(c) < 4500 and max(c) > 7000, (note, sorted(round(v) for v in c))


def test_features_have_the_documented_shape_and_rise():
    x = torch.zeros(1, SR)
    x[0, SR // 2:] = torch.randn(SR - SR // 2) * 0.1
    f = spectrogram(x)
    assert f.shape == (1, 2, n_frames(SR), N_BANDS)
    rise = f[0, 1].sum(-1)
    assert int(torch.argmax(rise)) == pytest.approx(SR // 2 / HOP, abs=2)


def test_pick_peaks_keeps_the_higher_of_close_peaks():
    p = np.zeros(50, dtype=np.float32)
    p[[10, 12, 30]] = [0.6, 0.9, 0.4]
    assert pick_peaks(p, 0.5).tolist() == [12]
    assert pick_peaks(p, 0.3).tolist() == [12, 30]
    # the picks at a higher threshold are the low-threshold picks that reach it
    q = np.random.default_rng(0).random(500).astype(np.float32)
    low = pick_peaks(q, 0.05)
    for thr in (0.3, 0.6, 0.9):
        assert pick_peaks(q, thr).tolist() == low[q[low] >= thr].tolist()


def _tiny(tmp_path, calibration):
    torch.manual_seed(0)
    net = CRNN(TranscriberConfig(IDM_CLASSES, conv=(4, 4), proj=8, hidden=8, gru_layers=1))
    path = tmp_path / "tiny.pt"
    save_transcriber(path, net, calibration=calibration)
    return path, net


def test_another_transcribers_hits_take_the_networks_velocities_at_their_peak(tmp_path):
    cal = Calibration({}, {"KD": (2.0, 0.1)})
    path, _ = _tiny(tmp_path, cal)
    tr = Transcriber.load(path)
    k, t = len(IDM_CLASSES), 100
    act = {"prob": np.zeros((k, t), np.float32), "velocity": np.zeros((k, t), np.float32),
           "offset": np.zeros((k, t), np.float32)}
    kd = IDM_CLASSES.index("KD")
    act["prob"][kd, 41], act["velocity"][kd, 41] = 0.9, 0.3   # the peak, a frame after the hit
    act["velocity"][kd, 40] = 0.05
    hits = {c: () for c in IDM_CLASSES}
    hits["KD"] = (Hit(0.4, 0.01), Hit(0.9, 0.2))   # the second has no peak near: frame 90 itself
    hits["SD"] = (Hit(0.5, 0.33),)
    got = tr.with_velocities(act, Transcription(IDM_CLASSES, hits, 1.0))
    assert [h.time_s for h in got.hits["KD"]] == [0.4, 0.9]       # times kept
    assert got.hits["KD"][0].velocity == pytest.approx(0.7)        # 2 * 0.3 + 0.1 from frame 41
    assert got.hits["KD"][1].velocity == pytest.approx(0.1)        # 2 * 0 + 0.1
    assert got.hits["SD"][0].velocity == pytest.approx(1 / 127)    # (1, 0) of velocity 0: kept audible
    other = Transcription(("KD", "XX"), {"KD": (Hit(0.4, 0.01),), "XX": (Hit(0.2, 0.4),)}, 1.0)
    assert tr.with_velocities(act, other).hits["XX"] == (Hit(0.2, 0.4),)  # a class it lacks keeps its own


def _bursts(times, amps, freq, decay_s=0.04, n=None):
    """Decaying sines of ``freq`` at ``times`` with peak amplitudes ``amps`` (a drum-like hit per time)."""
    x = np.zeros(n or int((max(times) + 1.0) * SR), np.float32)
    t = np.arange(int(0.3 * SR)) / SR
    shape = (np.sin(2 * np.pi * freq * t) * np.exp(-t / decay_s)).astype(np.float32)
    for ti, a in zip(times, amps):
        i = int(round(ti * SR))
        seg = x[i:i + shape.size]
        seg += a * shape[:seg.size]
    return x


def test_band_levels_follow_each_hits_loudness_and_reshape_only_the_spread(tmp_path):
    from idm_host.transcriber.levels import hit_levels, level_velocities

    times = [0.5 * (i + 1) for i in range(8)]
    amps = np.array([0.9, 0.2, 0.5, 0.35, 0.7, 0.1, 0.6, 0.45])
    kick = _bursts(times, amps, 60.0)
    hats = _bursts(times, np.full(8, 0.3), 9000.0, decay_s=0.02, n=kick.size)
    lv = hit_levels(kick + hats, times, "KD")
    # in the kick's band the hats are not heard: levels in the ratios of the kicks' amplitudes
    assert lv / lv[0] == pytest.approx(amps / amps[0], rel=0.02)
    hl = hit_levels(kick + hats, times, "HH_CHH")
    assert hl / hl[0] == pytest.approx(np.ones(8), rel=0.02)         # the hats were all as loud
    assert hit_levels(kick, [], "KD").shape == (0,)
    assert hit_levels(np.zeros(SR, np.float32), [0.5], "KD")[0] > 0     # silence: a floor, not 0
    # past the end, and in audio shorter than one window, the window reads zeros
    short, at = kick[int(0.49 * SR):int(0.55 * SR)], [0.0, 0.01, 0.05, 3.0]
    padded = np.concatenate([short, np.zeros(4 * SR, np.float32)])
    assert hit_levels(short, at, "KD") == pytest.approx(hit_levels(padded, at, "KD"), rel=1e-5)
    assert hit_levels(kick, [kick.size / SR - 0.01], "KD") == pytest.approx(
        hit_levels(np.concatenate([kick, np.zeros(SR, np.float32)]), [kick.size / SR - 0.01], "KD"), rel=1e-5)

    net_v = np.array([0.5, 0.55, 0.6, 0.5, 0.52, 0.58, 0.6, 0.5])
    assert level_velocities(net_v, lv, 1.0, 0.0, 1 / 127) == pytest.approx(net_v)   # lam 0: unchanged
    full = level_velocities(net_v, lv, 1.0, 1.0, 1 / 127)
    assert np.median(np.log(full)) == pytest.approx(np.median(np.log(net_v)), rel=1e-6)  # the median stays
    assert full / full[0] == pytest.approx(amps / amps[0], rel=0.02)                  # the spread: the levels'
    half = level_velocities(net_v, lv, 2.0, 0.5, 1 / 127)
    assert half / half[0] == pytest.approx(np.sqrt(net_v / net_v[0]) * (amps / amps[0]), rel=0.02)  # v^(1-lam) L^(lam g)
    assert level_velocities(np.array([0.9, 0.9]), np.array([1.0, 1e-9]), 4.0, 1.0, 0.05).min() == 0.05

    # on a transcription: the mapped class changes, the others and every time stay
    path, _ = _tiny(tmp_path, Calibration().with_levels({"KD": (1.0, 1.0)}))
    tr = Transcriber.load(path)
    assert tr.calibration.levels == {"KD": (1.0, 1.0)}
    hits = {c: () for c in IDM_CLASSES}
    hits["KD"] = tuple(Hit(t, float(v)) for t, v in zip(times, net_v))
    hits["HH_CHH"] = tuple(Hit(t, 0.4) for t in times)
    got = tr.with_levels(kick + hats, Transcription(IDM_CLASSES, hits, kick.size / SR))
    assert [h.time_s for h in got.hits["KD"]] == times
    assert np.array([h.velocity for h in got.hits["KD"]]) == pytest.approx(full)
    assert got.hits["HH_CHH"] == hits["HH_CHH"]


def test_level_maps_are_read_from_the_sidecar_and_fitted_only_where_they_help(tmp_path):
    from idm_host.train.transcriber_loop import ValClip, fit_levels

    cal = Calibration({"KD": 0.3}, {}).with_levels({"KD": [1.25, 0.75], "SD": (1.0, 0.0)})
    assert cal.levels == {"KD": (1.25, 0.75)}                           # lam 0 changes nothing: dropped
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert "levels" not in Calibration({"KD": 0.3}, {}).to_dict()       # older sidecars' digests hold
    for bad in ({"KD": [0.0, 0.5]}, {"KD": [1.0, 1.5]}, {"KD": "x"}, [1, 2]):
        with pytest.raises(ModelError):
            Calibration.from_dict({"levels": bad})

    # kicks whose loudness follows their velocity (the activations carry only its median) get a level map;
    # snares as loud as each other whose activations carry the true velocity get none
    rng = np.random.default_rng(3)
    _, net = _tiny(tmp_path, Calibration())
    model = Transcriber(net, Calibration({"KD": 0.5, "SD": 0.5}, {}))
    kd, sd = IDM_CLASSES.index("KD"), IDM_CLASSES.index("SD")
    clips, inputs, acts = [], [], []
    for _ in range(4):
        kt = np.arange(0.25, 8.0, 0.25)
        st = kt[::2] + 0.125
        kv, sv = rng.uniform(0.2, 1.0, kt.size), rng.uniform(0.2, 1.0, st.size)
        x = _bursts(kt, kv, 60.0, n=8 * SR) + _bursts(st, np.full(st.size, 0.3), 250.0, n=8 * SR)
        t = n_frames(x.size)
        act = {k: np.zeros((len(IDM_CLASSES), t), np.float32) for k in ("prob", "velocity", "offset")}
        act["prob"][kd, np.round(kt * FRAME_RATE).astype(int)] = 0.9
        act["velocity"][kd] = np.median(kv)    # the clip's level right, no hit-to-hit spread
        act["prob"][sd, np.round(st * FRAME_RATE).astype(int)] = 0.9
        act["velocity"][sd, np.round(st * FRAME_RATE).astype(int)] = sv
        clips.append(ValClip("k", "dry", x, {"KD": list(zip(kt, kv)), "SD": list(zip(st, sv))}))
        inputs.append(x)
        acts.append(act)
    got = fit_levels(model, clips, inputs, acts)
    assert set(got) == {"KD"} and got["KD"][1] == 1.0    # all of the spread from the levels
    assert got["KD"][0] == 1.0                          # amplitude grows as velocity: gamma 1


def test_a_groups_classes_share_its_peaks_as_the_sidecar_says_and_only_where_that_helps(tmp_path):
    from idm_host.train.transcriber_loop import ValClip, fit_groups

    cal = Calibration({"TT_HFT": 0.5, "TT_LMT": 0.5, "TT_HMT": 0.5, "CY_CR": 0.5, "CY_RD": 0.5}, {}
                      ).with_groups({"TT": 0.4})
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert "groups" not in Calibration({"KD": 0.3}, {}).to_dict()       # older sidecars' digests hold
    for bad in ({"TT": 1.0}, {"XX": 0.4}, {"TT": "x"}, [1]):
        with pytest.raises(ModelError):
            Calibration.from_dict({"groups": bad})
    path, _ = _tiny(tmp_path, cal)
    tr = Transcriber.load(path)
    assert tr.calibration.groups == {"TT": 0.4}
    assert tr.decision_threshold("TT_LMT") == 0.4 and tr.decision_threshold("CY_CR") == 0.5
    k, t = len(IDM_CLASSES), 200
    idx = {c: IDM_CLASSES.index(c) for c in IDM_CLASSES}
    act = {"prob": np.zeros((k, t), np.float32), "velocity": np.full((k, t), 0.5, np.float32),
           "offset": np.zeros((k, t), np.float32)}
    # a tom heard between two sizes (.3 + .25: neither clears .5, the group's .4 is cleared): the likelier one
    act["prob"][idx["TT_HMT"], 50], act["prob"][idx["TT_LMT"], 50] = 0.3, 0.25
    # a clear floor tom with a faint echo in another size: one hit, the floor tom's
    act["prob"][idx["TT_HFT"], 100], act["prob"][idx["TT_LMT"], 100] = 0.8, 0.1
    # a cymbal split the same way stays unfound: its group is not named
    act["prob"][idx["CY_CR"], 150], act["prob"][idx["CY_RD"], 150] = 0.3, 0.25
    out = tr.transcription_from(act, t * HOP)
    assert [h.time_s for h in out.hits["TT_HMT"]] == [pytest.approx(0.5)]
    assert [h.time_s for h in out.hits["TT_HFT"]] == [pytest.approx(1.0)]
    assert not out.hits["TT_LMT"]
    assert not out.hits["CY_CR"] and not out.hits["CY_RD"]
    # decided on the summed probability: what the tiled-loop check holds a candidate to
    near = tr.picks(act["prob"], shift=0.05)
    assert near["TT_HMT"][1].tolist() == [pytest.approx(0.55)]

    # fitted: toms split between two classes gain from picking the group; clean snares have no group
    clips, acts = [], []
    for r in range(3):
        a = {key: np.zeros((k, t), np.float32) for key in ("prob", "velocity", "offset")}
        times = np.arange(10 + r, 190, 20)
        for j, f in enumerate(times):
            big, small = ("TT_HMT", "TT_LMT") if j % 2 else ("TT_LMT", "TT_HMT")
            a["prob"][idx[big], f], a["prob"][idx[small], f] = 0.3, 0.2
        hits = {"TT_HMT": [(f / FRAME_RATE, 0.5) for j, f in enumerate(times) if j % 2],
                "TT_LMT": [(f / FRAME_RATE, 0.5) for j, f in enumerate(times) if not j % 2]}
        clips.append(ValClip("k", "dry", np.zeros(t * HOP, np.float32), hits))
        acts.append(a)
    plain = Transcriber(tr.network, Calibration({c: 0.5 for c in IDM_CLASSES}, {}))
    got = fit_groups(plain, clips, acts, ["TT", "CY", "KD"])
    assert set(got) == {"TT"} and got["TT"] <= 0.5          # KD is one class; CY has nothing to gain
    fitted = Transcriber(tr.network, plain.calibration.with_groups(got))
    hits = fitted.transcription_from(acts[0], t * HOP).hits
    assert len(hits["TT_HMT"]) == len(clips[0].hits["TT_HMT"]) and len(hits["TT_LMT"]) == len(clips[0].hits["TT_LMT"])


def test_thresholds_and_velocity_calibration_come_from_the_sidecar(tmp_path):
    cal = Calibration({"KD": 0.3, "SD": 0.7}, {"KD": (2.0, 0.1)})
    path, _ = _tiny(tmp_path, cal)
    tr = Transcriber.load(path)
    assert tr.calibration.threshold("KD") == 0.3 and tr.calibration.threshold("SD") == 0.7
    assert tr.calibration.threshold("HH_CHH") == 0.5
    k, t = len(IDM_CLASSES), 100
    act = {"prob": np.zeros((k, t), np.float32), "velocity": np.full((k, t), 0.25, np.float32),
           "offset": np.zeros((k, t), np.float32)}
    for c in ("KD", "SD"):
        act["prob"][IDM_CLASSES.index(c), 40] = 0.5
    out = tr.transcription_from(act, t * HOP)
    assert len(out.hits["KD"]) == 1 and len(out.hits["SD"]) == 0  # 0.5 >= 0.3, < 0.7
    assert out.hits["KD"][0].velocity == pytest.approx(0.6)       # 2 * 0.25 + 0.1
    assert out.hits["KD"][0].time_s == pytest.approx(0.4)


def test_a_ship_gate_counts_only_for_the_weights_and_thresholds_it_measured(tmp_path):
    path, net = _tiny(tmp_path, Calibration({"KD": 0.4}))
    side = path.with_suffix(".json")
    assert not gate_passed(json.loads(side.read_text()))                      # never measured
    gate = record_gate(path, [("kitA", "TT_LMT", 0.1, 0.2)], against="official", measured_by="test")
    assert gate["passed"] is False and not gate_passed(json.loads(side.read_text()))
    record_gate(path, [], against="official", measured_by="test")
    meta = json.loads(side.read_text())
    assert gate_passed(meta) and meta["calibration"]["thresholds"]["KD"] == 0.4  # the rest is kept
    stale = dict(meta, calibration=Calibration({"KD": 0.5}).to_dict())         # thresholds refitted
    assert not gate_passed(stale)
    assert not gate_passed(dict(meta, sha256="0" * 64))                       # other weights
    with torch.no_grad():                                                     # weights shipped again
        next(net.parameters()).add_(0.01)
    save_transcriber(path, net, calibration=Calibration({"KD": 0.4}), extra={"gate": meta["gate"]})
    assert not gate_passed(json.loads(side.read_text()))
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))                        # weights changed by hand
    with pytest.raises(ModelError, match="does not match"):
        record_gate(path, [], against="official", measured_by="test")


def test_a_changed_weights_file_is_refused(tmp_path):
    path, _ = _tiny(tmp_path, Calibration())
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Transcriber.load(path)
    side = json.loads(path.with_suffix(".json").read_text())
    side["calibration"]["thresholds"] = {"KD": 1.5}
    side.pop("sha256")
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="threshold"):
        Transcriber.load(path)


def test_long_input_is_windowed_without_changing_frames_far_from_edges(tmp_path):
    path, _ = _tiny(tmp_path, Calibration())
    tr = Transcriber.load(path)
    x = np.random.default_rng(0).standard_normal(int(SR * 6)).astype(np.float32) * 0.1
    whole = tr.activations(x)  # one window of the default 20 s
    # the sidecar's window: 2 s windows with 3 s of context on either side
    (tmp_path / "w").mkdir()
    path2, _ = _tiny(tmp_path / "w", Calibration(window_s=2.0, context_s=3.0))
    windowed_tr = Transcriber.load(path2)
    assert windowed_tr.calibration.window() == (2.0, 3.0)
    windowed = windowed_tr.activations(x)
    # with 3 s of context the recurrent state has forgotten the window edges to float precision
    assert np.allclose(whole["prob"], windowed["prob"], atol=1e-3)
    # and short context does not: the window is really used
    short = Transcriber(tr.network, Calibration(window_s=1.0, context_s=0.0)).activations(x)
    assert not np.allclose(whole["prob"], short["prob"], atol=1e-3)


def test_the_front_end_is_frame_local_so_windows_can_share_it(tmp_path):
    """``CRNN.frames`` reads ``receptive_frames`` either side: computed over a segment with that
    margin (plus the STFT's half window) it equals the whole input's, which is what lets
    ``activations`` run it once per group of windows."""
    from idm_host.transcriber.features import HOP, spectrogram

    _, net = _tiny(tmp_path, Calibration())
    net.eval()
    x = np.random.default_rng(3).standard_normal(SR * 4).astype(np.float32) * 0.1
    m = net.receptive_frames + 8
    with torch.no_grad():
        whole = net.frames(spectrogram(torch.from_numpy(x)))[0]
        f0, f1 = 120, 260
        seg = x[(f0 - m) * HOP: (f1 + m - 1) * HOP + 1]
        part = net.frames(spectrogram(torch.from_numpy(seg)))[0, m: m + f1 - f0]
    assert part.shape == whole[f0:f1].shape
    assert torch.allclose(part, whole[f0:f1], atol=1e-4 * float(whole.abs().max()))
    assert not torch.allclose(part[:2], whole[f0 - 2: f0], atol=1e-4 * float(whole.abs().max()))  # it is aligned
    with torch.no_grad():  # and forward is the two halves in turn
        feats = spectrogram(torch.from_numpy(x))
        assert torch.equal(net(feats)["onset_logits"], net.sequence(net.frames(feats))["onset_logits"])


def test_the_inference_window_is_part_of_the_calibration(tmp_path):
    import json

    from idm_host.errors import ModelError

    # a sidecar without a window reads and writes as before (so earlier gates' digests hold)
    assert "window_s" not in Calibration({"KD": 0.3}).to_dict()
    assert Calibration.from_dict({"thresholds": {"KD": 0.3}}).window() == (20.0, 3.0)
    cal = Calibration({"KD": 0.3}, {}, 4.0, 2.0)
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    for bad in ({"window_s": 0.0}, {"window_s": "wide"}, {"context_s": -1.0}, {"window_s": 1e9}):
        with pytest.raises(ModelError, match="window"):
            Calibration.from_dict({"thresholds": {}, **bad})
    # a refit keeps the window the activations were computed in
    from idm_host.train.transcriber_loop import ValClip, evaluate_transcriber

    path, net = _tiny(tmp_path, cal)
    x = np.random.default_rng(1).standard_normal(SR * 3).astype(np.float32) * 0.1
    clips = [ValClip("k", "dry", x, {"KD": [(0.5, 0.8)]})]
    rep = evaluate_transcriber(Transcriber.load(path), clips, fit=True)
    assert Calibration.from_dict(rep["calibration"]).window() == (4.0, 2.0)


def test_a_blend_with_the_idm_head_is_read_from_the_sidecar_and_used_only_with_its_model(tmp_path):
    """The calibration may blend the IDM head's onset probabilities into the network's, per class
    (``w * network + (1 - w) * head``), fitted with one IDM model: a separator of that model
    transcribes with the blend (as done here by hand), one of any other model with the network alone."""
    import json

    from idm_host.engine import Separator
    from idm_host.errors import ModelError
    from idm_host.transcriber import blend, head_on_frames, normalise

    assert "blend" not in Calibration({"KD": 0.3}).to_dict()  # older sidecars' digests hold
    for bad, msg in (({"blend": {"KD": 1.5}, "head_sha256": "ab"}, "0..1"), ({"blend": {"KD": 0.5}}, "sha256"),
                     ({"blend": ["KD"]}, "blend")):
        with pytest.raises(ModelError, match=msg):
            Calibration.from_dict({"thresholds": {}, **bad})
    default = Separator("default", transcriber=None)
    cal = Calibration({"KD": 0.3}, {}, 4.0, 2.0).with_blend({"KD": 0.25, "SD": 0.5}, default.model_sha256)
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    assert cal.uses_head(default.model_sha256) and not cal.uses_head("0" * 64)
    # the head on the network's frames: a model frame's peak lands on the nearest 10 ms frame
    p = np.zeros((2, 100), np.float32)
    p[0, 50], p[1, 51] = 0.8, 0.6
    on = head_on_frames(p, 256, 44100, 40)
    assert on[0].argmax() == round(50 * 256 * 100 / 44100) and on[0].max() == pytest.approx(0.8)
    assert on[1].argmax() == round(51 * 256 * 100 / 44100) and on.shape == (2, 40)
    act = {"prob": np.full((2, 40), 0.4, np.float32), "velocity": np.zeros((2, 40), np.float32),
           "offset": np.zeros((2, 40), np.float32)}
    mixed = blend(act, on, ("KD", "SD"), {"KD": 0.25})
    assert mixed["prob"][0] == pytest.approx(0.25 * 0.4 + 0.75 * on[0]) and (mixed["prob"][1] == 0.4).all()
    # through the engine: the model it was fitted with blends its head, any other model does not
    path, _ = _tiny(tmp_path, cal)
    sep = Separator("default", transcriber=path)
    assert sep.blends_head
    x = np.random.default_rng(3).standard_normal(SR * 3).astype(np.float32) * 0.1
    x[SR:SR + 400] += 0.9 * np.hanning(400).astype(np.float32)  # something for both to hear
    enc = sep.encode(x, sample_rate=SR)
    act = sep.transcriber.activations(normalise(x))
    want = sep.transcriber.transcription_from(
        blend(act, head_on_frames(enc.probabilities, sep.hop, sep.sample_rate, act["prob"].shape[1]),
              sep.classes, cal.blend), x.size)
    alone = sep.transcriber.transcription_from(act, x.size)
    got = sep.transcribe(x, sample_rate=SR)
    assert got.hits == want.hits and sep.prepare(x, sample_rate=SR)[2].hits == want.hits
    assert want.hits != alone.hits  # the blend changed something, so the comparison above means something
    other = Separator(_other_model(tmp_path), transcriber=path)
    assert not other.blends_head
    assert other.transcribe(x, sample_rate=SR).hits == alone.hits


def _other_model(tmp_path) -> str:
    """The default model's weights saved again with one bias moved: another sha256, another model."""
    import torch

    from idm_host.model.checkpoints import load_weights, save_weights
    from idm_host.models import model_path

    model, _ = load_weights(model_path("default"))
    with torch.no_grad():
        next(iter(model.parameters())).add_(1e-3)
    out = tmp_path / "other.pt"
    save_weights(model, out)
    return str(out)


def test_user_hits_are_used_exactly_when_a_transcriber_is_loaded(tmp_path):
    from idm_host.engine import Separator

    path, _ = _tiny(tmp_path, Calibration().with_levels({"KD": (1.0, 1.0), "SD": (1.5, 0.5)}))
    sep = Separator("default", transcriber=path)
    assert sep.transcriber is not None and sep.transcriber.calibration.levels
    x = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    mine = Transcription(sep.classes, {"KD": (Hit(0.1234567, 0.33),), "SD": (Hit(1.5, 1.0),)}, 2.0)
    a = sep.analyze(x, mine, sample_rate=SR)
    assert a.transcription.hits["KD"] == (Hit(0.1234567, 0.33),)
    assert a.transcription.hits["SD"] == (Hit(1.5, 1.0),)
    assert all(not a.transcription.hits[c] for c in sep.classes if c not in ("KD", "SD"))


def test_a_second_run_into_a_run_folder_is_refused_without_resume_or_overwrite(tmp_path):
    from idm_host.train.transcriber_loop import TrainSettings, train

    (tmp_path / "checkpoint.pt").write_bytes(b"a run's checkpoint")
    with pytest.raises(IdmError, match="--resume.*--overwrite"):
        train(TrainSettings(out=str(tmp_path)), [], [])
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"a run's checkpoint"


def test_the_weight_average_follows_the_network_at_its_decay_after_its_warm_up():
    from idm_host.train.transcriber_loop import WeightAverage

    torch.manual_seed(0)
    cfg = TranscriberConfig(IDM_CLASSES, conv=(4, 4), proj=8, hidden=8, gru_layers=1)
    net = CRNN(cfg)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    ema = WeightAverage(net, 0.9)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    for _ in range(200):  # the warm-up factor (1+n)/(10+n) passes 0.9 at n = 80
        ema.update(net)
    now = net.state_dict()
    for k, v in ema.state.items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, now[k], atol=1e-6), k  # converged on the moved weights
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)
    k = next(n for n, _ in net.named_parameters())
    assert torch.allclose(ema.state[k], start[k] + 1.0 + 0.1, atol=1e-5)  # one step: 10 % of the way
    avg = ema.network(cfg)
    assert not avg.training and torch.equal(avg.state_dict()[k], ema.state[k])
    x = torch.randn(1, 2, 50, N_BANDS)
    assert avg(x)["onset_logits"].shape[1:] == (len(IDM_CLASSES), 50)


def test_a_run_started_from_weights_checks_them_first(tmp_path):
    from idm_host.train.transcriber_loop import TrainSettings, train

    path, _ = _tiny(tmp_path, Calibration())
    with pytest.raises(IdmError, match="cannot be combined with --resume"):
        train(TrainSettings(out=str(tmp_path / "run")), [], [], resume=True, init=path)
    with pytest.raises(IdmError, match="classes"):
        train(TrainSettings(out=str(tmp_path / "run")), [], [], classes=("KD", "SD"), init=path)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_run_of_a_larger_network_checkpoints_and_resumes_with_its_own_sizes(tmp_path):
    """Sizes given to a new run (here three convolution blocks) are stored in its checkpoint and
    best model; ``resume`` rebuilds that network, not the default one, and continues the step count."""
    from idm_host.train.kits import synthetic_kit
    from idm_host.train.transcriber_loop import TrainSettings, train

    sizes = {"conv": (4, 4, 4), "proj": 8, "hidden": 8, "gru_layers": 1}
    kits, val = [synthetic_kit(1)], [synthetic_kit(2)]
    fast = dict(batch=2, new_per_step=1, pool=8, min_pool=2, validate_every=1000, threads=1, log_every=1,
                duration_s=2.0)
    run = tmp_path / "run"
    train(TrainSettings(out=str(run), steps=2, network=sizes, window_s=1.0, context_s=0.5, **fast), kits, val)
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 2 and tuple(ck["config"]["conv"]) == (4, 4, 4)
    best = Transcriber.load(run / "best.pt")
    assert best.network.config.conv == (4, 4, 4) and len(best.network.conv) == 3
    assert best.calibration.window() == (1.0, 0.5)  # validated in that window, and kept with it
    train(TrainSettings(out=str(run), steps=2, **fast), kits, val, resume=True)
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 4 and tuple(ck["config"]["conv"]) == (4, 4, 4)
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(IdmError, match="apply to a new run"):  # sizes are not silently ignored on resume
        train(TrainSettings(out=str(run), steps=2, network={"proj": 16}, **fast), kits, val, resume=True)
    assert (run / "checkpoint.pt").read_bytes() == before
    with pytest.raises(IdmError, match="sizes"):
        train(TrainSettings(out=str(tmp_path / "other"), network=sizes, **fast), kits, val, init=run / "best.pt")


def test_a_network_with_more_pooling_blocks_than_bands_is_refused():
    with pytest.raises(ValueError, match="no band"):
        CRNN(TranscriberConfig(IDM_CLASSES, conv=(4, 4, 4, 4, 4)))


@pytest.mark.parametrize("flags, message", [(["--conv", "16,x"], "channel counts"), (["--conv", "16,0"], "at least one"),
                                            (["--hidden", "0"], "at least 1"),
                                            (["--resume", "--proj", "64"], "apply to a new run"),
                                            (["--procedural", "1.5"], "--procedural 1.5: a probability"),
                                            (["--mix-kits", "-0.1"], "--mix-kits -0.1: a probability"),
                                            (["--ending", "2"], "--ending 2.0: a probability"),
                                            (["--mute", "-1"], "--mute -1.0: a probability"),
                                            (["--window", "0.1"], "the window lies in")])
def test_train_transcriber_refuses_bad_network_sizes_before_loading_anything(tmp_path, capsys, flags, message):
    from idm_host.cli import main

    cfg = tmp_path / "data.json"
    cfg.write_text(json.dumps({"schema_version": 1, "kits": [], "validation_kits": []}))
    assert main(["train-transcriber", "--data", str(cfg), "--out", str(tmp_path / "run"), *flags]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated checkpoint"])
def test_resuming_from_an_unreadable_checkpoint_is_one_clear_error_and_keeps_it(tmp_path, content):
    from idm_host.train.transcriber_loop import TrainSettings, train

    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(IdmError, match="not a readable transcriber checkpoint.*--overwrite"):
        train(TrainSettings(out=str(tmp_path)), [], [], resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == content


def test_spectral_metal_decays_highs_first_and_blooms_when_asked():
    from idm_host.train.procedural import spectral_metal

    def band_db(x, lo, hi, a, b):
        seg = x[int(a * SR):int(b * SR)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
        f = np.fft.rfftfreq(seg.size, 1.0 / SR)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20)

    x = spectral_metal(np.random.default_rng(0), 2.0, 0.5, 500, 16000, 0.5, slope=1.0, strike=0.0)
    assert x.shape == (2 * SR,) and np.isfinite(x).all() and np.abs(x).max() == pytest.approx(1.0)
    # tau(f) ~ f^-1: from 0.1 s to 0.6 s the 8-16 kHz band falls much further than the 0.5-1 kHz band
    low_drop = band_db(x, 500, 1000, 0.1, 0.2) - band_db(x, 500, 1000, 0.6, 0.7)
    high_drop = band_db(x, 8000, 16000, 0.1, 0.2) - band_db(x, 8000, 16000, 0.6, 0.7)
    assert high_drop > low_drop + 6.0, (low_drop, high_drop)
    # a bloom holds the highs back at the start; without one they are loudest at once
    y = spectral_metal(np.random.default_rng(0), 2.0, 0.5, 500, 16000, 0.5, slope=1.0, strike=0.0, bloom_s=0.05)
    assert band_db(y, 8000, 16000, 0.0, 0.02) < band_db(x, 8000, 16000, 0.0, 0.02) - 3.0



def test_a_candidate_that_fails_the_tiled_loop_check_is_logged_but_never_kept_as_best(tmp_path):
    """With ``tiling_loop`` every validation also tiles that loop and logs how many hits differ
    between the repeats and the loop alone; best.pt and best-report.json come only from a
    validation with none (the check tools/ship_transcriber.py holds a shipped network to)."""
    from idm_host.train.kits import synthetic_kit
    from idm_host.train.transcriber_loop import TrainSettings, train

    kits, val = [synthetic_kit(1)], [synthetic_kit(2)]
    loop = Path(__file__).resolve().parents[2] / "examples" / "drum-loop.flac"
    fast = dict(batch=2, new_per_step=1, pool=8, min_pool=2, validate_every=1, threads=1, log_every=1,
                duration_s=2.0, network={"conv": (4, 4), "proj": 8, "hidden": 8, "gru_layers": 1},
                window_s=2.0, context_s=0.5, tiling_loop=str(loop), tiling_repeats=3)
    run = tmp_path / "run"
    train(TrainSettings(out=str(run), steps=3, **fast), kits, val)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    checked = [r for r in rows if "validation_score" in r]
    assert len(checked) == 4 and all(isinstance(r["tiling_differences"], int) for r in checked)
    clean = [r for r in checked if r["tiling_differences"] == 0]
    assert (run / "best.pt").exists() == bool(clean)
    if clean:
        report = json.loads((run / "best-report.json").read_text())
        assert round(report["score"], 4) == max(r["validation_score"] for r in clean)
        assert report["step"] in {r["step"] for r in clean}
        assert report["tiling_differences"] == []
