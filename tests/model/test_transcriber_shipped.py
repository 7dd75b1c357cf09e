"""The shipped transcription network: used by default, and the same hits wherever a loop sits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from idm_host.audio import load_audio
from idm_host.models import DEFAULT_DIR
from idm_host.transcriber import Transcriber

LOOP = Path(__file__).resolve().parents[2] / "examples" / "drum-loop.flac"


@pytest.fixture(scope="module")
def shipped():
    return Transcriber.load(DEFAULT_DIR / "transcriber.pt")


def test_the_network_is_the_default_only_once_it_passes_the_ship_gate():
    import json

    from idm_host.engine import Separator

    from idm_host.transcriber import gate_passed

    meta = json.loads((DEFAULT_DIR / "transcriber.json").read_text())
    gate = meta["gate"]
    sep = Separator("default")
    assert (sep.transcriber is not None) == gate_passed(meta)
    if not gate_passed(meta):  # the failing comparison is on record, class by class
        assert gate["regressions"] and all(f < b for _, _, f, b in gate["regressions"])
    chosen = Separator("default", transcriber="default")
    assert chosen.transcriber is not None and chosen.transcriber.sha256
    assert Separator("default", transcriber=None).transcriber is None


def test_until_the_network_ships_the_head_s_hits_take_its_velocities_on_the_midi_scale():
    """``Separator()`` keeps the IDM head's hits while the network fails its gate, but their
    velocities come from the network: the bundled loop's hits are played at MIDI 80-120 (0.63-0.94),
    the head writes its closed hats at a median of ~0.1 (16 of 33 at <= 10 on the MIDI scale).
    ``transcriber=None`` keeps the head whole; the user's hits are never touched."""
    import json

    import numpy as np

    from idm_host.engine import Separator
    from idm_host.transcriber import gate_passed

    if gate_passed(json.loads((DEFAULT_DIR / "transcriber.json").read_text())):
        pytest.skip("the network passed its gate: it transcribes itself")
    auto, head = Separator("default"), Separator("default", transcriber=None)
    assert auto.velocity_network is not None and head.velocity_network is None
    loop = load_audio(LOOP, sample_rate=44100)
    a, h = auto.transcribe(loop), head.transcribe(loop)
    for c in a.classes:  # the same hits, at the same times
        assert [x.time_s for x in a.hits[c]] == [x.time_s for x in h.hits[c]]
    for c in ("KD", "SD", "HH_CHH"):
        ours, theirs = np.median([x.velocity for x in a.hits[c]]), np.median([x.velocity for x in h.hits[c]])
        assert 0.63 <= ours <= 0.95 and theirs < 0.3, (c, ours, theirs)
    analysis = auto.analyze(loop)
    assert analysis.transcription == a
    assert np.isfinite(analysis.stems.audio).all()
    # the stems stay at the head's level: the track gains take the velocities' change
    ref = head.analyze(loop)
    for k, c in enumerate(auto.classes):
        if len(a.hits[c]) >= 3:
            e1, e2 = float(np.sum(analysis.stems.audio[k] ** 2)), float(np.sum(ref.stems.audio[k] ** 2))
            assert 0.25 < e1 / e2 < 4.0, (c, e1, e2)
    user = analysis.transcription
    assert auto.analyze(loop, user).transcription == user


def test_the_defaults_velocities_follow_a_performance_hit_by_hit():
    """A groove played at random velocities on the project's synth-acoustic kit (one of its
    training kits: this checks the mechanism, MODEL_CARD.md has the validation kits' figures): the
    default's velocities of matched kicks, snares and closed hats correlate with the played ones,
    near the played median. The band levels give the spread (the velocity head alone follows it
    far less). The shipped calibration maps the snare and the closed hat; the kick's map, as fitted,
    is put in by hand (not shipped: it lost on the gate's clips of evenly played kicks)."""
    from dataclasses import replace

    import numpy as np

    from idm_host.classes import IDM_CLASSES
    from idm_host.engine import Separator
    from idm_host.train.kits import load_kit
    from idm_host.train.patterns import Pattern
    from idm_host.train.transcriber_data import play
    from idm_host.train.transcriber_loop import _match

    kit = load_kit(Path(__file__).resolve().parents[2] / "presets" / "kits" / "synth-acoustic")
    rng = np.random.default_rng(0)
    beat = 0.6
    notes = [(i * beat, 36) for i in range(20)] + [(i * beat + beat / 2, 38) for i in range(0, 20, 2)]
    notes += [(i * beat / 2, 42) for i in range(40)]
    p = Pattern.from_hits([(t, n, float(rng.uniform(0.3, 1.0))) for t, n in notes], 12.5)
    stems, hits = play(kit, p, IDM_CLASSES, rng, start_s=0.0, duration_s=12.5, layer_jitter=0.0)
    mix = stems.sum(axis=0)
    sep = Separator("default")
    net = sep.transcriber or sep.velocity_network
    assert net is not None and {"SD", "HH_CHH"} <= set(net.calibration.levels)
    # the kick keeps the velocity head's: its band levels lost on the gate's clips (MODEL_CARD.md, session 11)
    levels = dict(net.calibration.levels)
    levels.setdefault("KD", (1.5, 0.5))

    def agreement(tr, c):
        ref, est = hits[c], tr.hits[c]
        m = _match(np.array([t for t, _ in ref]), np.array([h.time_s for h in est]))
        vt, vp = np.array([ref[i][1] for i, _ in m]), np.array([est[j].velocity for _, j in m])
        assert len(m) >= 0.8 * len(ref), (c, len(m), len(ref))
        return float(np.median(vp / vt)), float(np.corrcoef(vt, vp)[0, 1])

    cal = net.calibration
    try:
        net.calibration = replace(cal, levels=levels)   # the kick's map as fitted on the validation clips
        with_levels = sep.transcribe(mix, sample_rate=44100)
        net.calibration = replace(cal, levels={})
        alone = sep.transcribe(mix, sample_rate=44100)
    finally:
        net.calibration = cal
    # measured: KD .83 (the network alone .26), SD .98 (.55), HH_CHH .67 (-.13); median ratios 1.2-1.5
    for c, least in (("KD", 0.7), ("SD", 0.9), ("HH_CHH", 0.55)):
        ratio, corr = agreement(with_levels, c)
        assert corr >= least and corr > agreement(alone, c)[1] + 0.2, (c, corr, agreement(alone, c))
        assert 0.6 <= ratio <= 1.7, (c, ratio)  # the network's level for the recording is kept


def test_a_loop_tiled_20_times_gets_the_loop_alones_hits_in_every_repeat(shipped):
    """Every repeat gets the loop alone's hits within a frame. The recurrent layers see a few
    seconds around each frame, and that audio differs at the loop's ends (silence against the
    next repeat), which moves probabilities by up to ~0.1: a hit whose peak lies within 0.05 of
    its class's threshold may come and go, and is the only one allowed to
    (``tiling_differences``, which tools/ship_transcriber.py also holds a candidate to).
    The check runs as the engine does: with the default model's IDM head blended in where the
    shipped calibration says so (the head hears the loop's ends differently too).
    """
    from idm_host.engine import Separator
    from idm_host.train.tiling import tiling_differences

    sep = Separator("default", transcriber=None)
    loop = load_audio(LOOP, sample_rate=44100).mono()
    assert tiling_differences(shipped, loop, repeats=20, margin=0.05, separator=sep) == []


def test_the_tiling_check_finds_where_a_network_hears_the_next_repeat():
    """tr6's weights (kept, not shipped) hear the loop's last two kicks as floor toms when the next
    repeat follows: the check names them, so passing it above means something."""
    from idm_host.train.tiling import tiling_differences

    tr6 = Transcriber.load(Path(__file__).resolve().parents[2] / "train" / "checkpoints" / "transcriber-tr6-best.pt")
    loop = load_audio(LOOP, sample_rate=44100).mono()
    diff = tiling_differences(tr6, loop, repeats=20, margin=0.05)
    assert any(d.startswith("KD at 9.14 s") and "missing" in d for d in diff), diff
    assert any(d.startswith("TT_HFT at 9.14 s added") for d in diff), diff


def test_the_solo_report_plays_each_drum_alone_and_counts_what_else_is_heard(shipped):
    """``solo_report`` on a kit of the project's own (presets/kits/synth-electro): the shipped network
    hears its kick played alone as a kick at every rate; a transcriber that calls every kick a snare
    (the same network, its answer relabelled) finds none, and the report names the snare as what it
    heard instead, at the pattern's rate."""
    from idm_host.train.compare import SOLO_RATES, solo_report
    from idm_host.train.kits import load_kit
    from idm_host.types import Transcription

    kit = load_kit(Path(__file__).resolve().parents[2] / "presets" / "kits" / "synth-electro")
    only_kd = type(kit)(kit.name, {n: v for n, v in kit.instruments.items() if n in (35, 36)})
    rep = solo_report(shipped.transcribe, [only_kd], seconds=4.0)
    kd = rep[kit.name]["KD"]
    assert set(rep[kit.name]) == {"KD"} and kd["recall"] >= 0.95, kd

    def as_snare(x):
        tr = shipped.transcribe(x)
        return Transcription(tr.classes, {c: (tr.hits["KD"] if c == "SD" else ()) for c in tr.classes}, tr.duration_s)

    swapped = solo_report(as_snare, [only_kd], seconds=4.0)[kit.name]["KD"]
    assert swapped["recall"] == 0.0 and swapped["worst"][0] == "SD"
    hits_per_min = sum(len(np.arange(0.5, 4.0, 1.0 / r)) for r in SOLO_RATES) / (3 * 5.5 / 60.0)
    assert swapped["false_per_min"] == pytest.approx(hits_per_min * kd["recall"], rel=0.1)


def test_tiled_changes_counts_what_differs_between_the_repeats_and_the_loop_alone():
    """The shipped network (as the engine runs it, the IDM head blended in) gets the same kicks in 6
    repeats of the bundled loop; a transcriber that loses every kick after 60 s (the same, its answer
    cut) is counted missing the loop's kicks from there on, and adds none."""
    from idm_host.engine import Separator
    from idm_host.train.tiling import tiled_changes
    from idm_host.types import Transcription

    sep = Separator("default", transcriber="default")
    loop = load_audio(LOOP, sample_rate=44100).mono()
    dur = loop.size / 44100

    def transcribe(x):
        return sep.transcribe(x[None], sample_rate=44100)

    def cut(x):
        tr = transcribe(x)
        return Transcription(tr.classes, {c: tuple(h for h in tr.hits[c] if c != "KD" or h.time_s < 60.0)
                                          for c in tr.classes}, tr.duration_s)

    full = tiled_changes(transcribe, loop, repeats=6)["KD"]
    assert full["alone"] >= 10 and full["missing"] == full["added"] == 0, full
    lost = tiled_changes(cut, loop, repeats=6)["KD"]
    after = sum(1 for r in range(6) if r * dur >= 60.0)
    kd = [h.time_s for h in transcribe(loop).hits["KD"]]
    straddling = next(r for r in range(6) if (r + 1) * dur > 60.0)  # the repeat 60 s falls in keeps its early kicks
    expected = after * len(kd) + sum(1 for t in kd if straddling * dur + t >= 60.0) * (straddling * dur < 60.0)
    assert lost["missing"] == expected and lost["added"] == 0, (lost, expected)
