"""Session commands: every edit undoes and redoes to the exact state; observers; ids; bad edits."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from idm_host.errors import SessionError
from idm_host.session import (AddHits, ChannelStrip, Compound, DeleteHits, KitSlot, MoveHits, Quantize,
                              ReplaceSample, RevertSample, Session, SetEffects, SetKitParams, SetMixer,
                              SetTempo, SetVelocity)
from sessionkit import SR, make_analysis


@pytest.fixture
def session():
    return Session.from_analysis(make_analysis())


def _ids(s, cls):
    return [h.id for h in s.hits[cls]]


def _commands(s):
    kd, sd, hh = _ids(s, "KD"), _ids(s, "SD"), _ids(s, "HH_CHH")
    click = np.zeros(100, np.float32)
    click[0] = 1.0
    return [
        AddHits("TT_HFT", [(0.25, 0.5), (1.0, 1.0)]),
        DeleteHits(kd[:2] + sd[:1]),
        MoveHits(hh[:3], 0.013),
        MoveHits(times={kd[0]: 3.3}),
        MoveHits(sd[:2], -0.02, to_class="TT_LMT"),
        SetVelocity(hh, 0.3),
        SetVelocity(hh, scale=1.5),
        SetVelocity(values={kd[1]: 0.11}),
        Quantize(hh, "1/8", strength=0.5, swing=0.3),
        Quantize(None, "1/4", swing=0.5, classes=["SD"]),
        ReplaceSample("KD", samples=click, sample_rate=48000, name="click"),
        SetKitParams("SD", gain_db=-3.0, tune_semitones=2.0, velocity_curve="exponential", curve_amount=3.0,
                     blend="layer", stem_gain_db=-6.0),
        SetKitParams("HH_OHH", choked_by=["HH_CHH", "CY_RD"]),
        SetMixer("KD", gain_db=-4.5, mute=True, solo=True, pan=-0.5),
        SetMixer("master", gain_db=2.0),
        SetEffects("SD", "fat-snare"),
        SetEffects("KD", [{"type": "Gain", "params": {"gain_db": -6.0}}]),
        SetEffects("master", "master-glue"),
        SetTempo(bpm=97.5, downbeat_s=0.12),
        Compound([AddHits("CY_RD", [(0.5, 0.5)]), DeleteHits(hh[-2:])], "paste"),
    ]


@pytest.mark.parametrize("index", range(20))
def test_every_command_undoes_and_redoes_exactly(session, index):
    cmd = _commands(session)[index]
    before = session.state
    seen = []
    session.subscribe(seen.append)
    change = session.apply(cmd)
    after = session.state
    assert after != before, f"{type(cmd).__name__} changed nothing"
    assert session.can_undo and not session.can_redo
    assert session.undo().kind == "undo"
    assert session.state == before
    assert session.redo().kind == "redo"
    assert session.state == after
    assert [c.kind for c in seen] == ["apply", "undo", "redo"]
    assert seen[0].parts == change.parts and change.parts


def test_undo_stack_of_all_commands_round_trips(session):
    states = [session.state]
    for cmd in _commands(session):
        try:
            session.apply(cmd)
        except SessionError:  # a later command may name a hit an earlier one deleted
            continue
        states.append(session.state)
    for expected in reversed(states[:-1]):
        session.undo()
        assert session.state == expected
    assert not session.can_undo
    for expected in states[1:]:
        session.redo()
        assert session.state == expected


def test_hit_ids_stay_stable(session):
    change = session.apply(AddHits("SD", [(2.2, 0.5)]))
    (hid,) = change.hit_ids
    session.apply(MoveHits([hid], 0.1))
    session.apply(SetVelocity([hid], 0.9))
    session.apply(MoveHits([hid], 0.0, to_class="TT_HMT"))
    cls, hit = session.hit(hid)
    assert cls == "TT_HMT" and hit.time_s == pytest.approx(2.3) and hit.velocity == 0.9
    session.undo()
    session.undo()
    assert session.hit(hid)[1].velocity == 0.5
    new = session.apply(AddHits("SD", [(0.1, 0.1)])).hit_ids[0]
    assert new > hid  # ids are never reused


def test_drag_merges_into_one_undo_step(session):
    hid = _ids(session, "KD")[0]
    start = session.state
    for _ in range(10):
        session.apply(MoveHits([hid], 0.01, merge_key="drag-1"))
    session.apply(MoveHits([hid], 0.01, merge_key="drag-2"))
    session.undo()
    assert session.hit(hid)[1].time_s == pytest.approx(0.1)
    session.undo()
    assert session.state == start and not session.can_undo


def test_redo_cleared_by_new_edit(session):
    session.apply(SetTempo(bpm=100.0))
    session.undo()
    assert session.can_redo
    session.apply(SetTempo(bpm=90.0))
    assert not session.can_redo and session.tempo.bpm == 90.0 and not session.tempo.estimated


@pytest.mark.parametrize("make", [
    lambda s: DeleteHits([999999]),
    lambda s: AddHits("NOPE", [(1.0, 1.0)]),
    lambda s: AddHits("KD", [(-1.0, 1.0)]),
    lambda s: AddHits("KD", [(1.0, 1.5)]),
    lambda s: AddHits("KD", [(float("nan"), 1.0)]),
    lambda s: SetVelocity([s.hits["KD"][0].id], 2.0),
    lambda s: SetMixer("KD", pan=3.0),
    lambda s: SetMixer("KD", volume=3.0),
    lambda s: SetMixer("KD", mute="yes"),
    lambda s: SetKitParams("KD", velocity_curve="cubic"),
    lambda s: SetKitParams("KD", blend="mash"),
    lambda s: SetKitParams("KD", tune_semitones=48.0),
    lambda s: SetKitParams("KD", choked_by=["KD"]),
    lambda s: SetEffects("KD", [{"type": "Flanger9000"}]),
    lambda s: SetEffects("KD", [{"type": "Gain", "params": {"gain_db": 500}}]),
    lambda s: SetEffects("KD", "no-such-preset"),
    lambda s: SetTempo(bpm=0.0),
    lambda s: Quantize(None, "1/16", strength=2.0),
    lambda s: ReplaceSample("KD", samples=np.zeros(SR * 11, np.float32), sample_rate=SR),
    lambda s: Compound([SetTempo(bpm=100.0), DeleteHits([424242])]),
])
def test_bad_edits_raise_and_change_nothing(session, make):
    before = session.state
    with pytest.raises(SessionError):
        session.apply(make(session))
    assert session.state is before and not session.can_undo


def test_bad_constructor_arguments():
    with pytest.raises(SessionError):
        SetVelocity([1], 0.5, scale=2.0)
    with pytest.raises(Exception) as exc:
        Quantize(None, "1/12")
    assert "1/4, 1/8, 1/16 or 1/32" in str(exc.value)
    with pytest.raises(SessionError):
        ReplaceSample("KD")
    with pytest.raises(SessionError, match=r"unknown kit settings \['pan'\]; use gain_db, tune_semitones, "):
        SetKitParams("KD", gain_db=-2.0, pan=0.5)
    with pytest.raises(SessionError, match=r"unknown mixer settings \['blend'\]; use gain_db, mute, solo, pan$"):
        SetMixer("KD", blend="layer")


def test_replace_and_revert_sample(session, tmp_path):
    from idm_host.audio import save_audio

    stereo = np.stack([np.linspace(0, 1, 480, dtype=np.float32)] * 2) * 0.5
    path = save_audio(tmp_path / "s.wav", stereo, 48000)
    extracted = session.kit["KD"]
    session.apply(ReplaceSample("KD", path))
    slot = session.kit["KD"]
    assert slot.origin == "file" and slot.level == 1.0 and slot.sample_path == str(path.resolve())
    assert abs(slot.one_shot.size - 441) <= 1  # resampled 48 kHz -> 44.1 kHz, mono
    with pytest.raises(ValueError):
        slot.one_shot[0] = 1.0  # read-only
    session.apply(SetKitParams("KD", gain_db=-2.0))
    session.apply(RevertSample("KD"))
    back = session.kit["KD"]
    assert back.origin == "extracted" and back.gain_db == -2.0
    assert np.array_equal(back.one_shot, extracted.one_shot) and back.level == extracted.level


def test_observer_errors_do_not_break_editing(session, caplog):
    def bad(change):
        raise RuntimeError("observer bug")

    got = []
    session.subscribe(bad)
    unsub = session.subscribe(got.append)
    session.apply(SetTempo(bpm=101.0))
    assert session.tempo.bpm == 101.0 and len(got) == 1 and "observer bug" in caplog.text
    unsub()
    session.apply(SetTempo(bpm=102.0))
    assert len(got) == 1


def test_state_parts_are_immutable(session):
    with pytest.raises(TypeError):
        session.hits["KD"] = ()  # type: ignore[index]
    with pytest.raises(Exception):
        session.mixer["KD"].gain_db = 3.0  # type: ignore[misc]
    assert isinstance(session.mixer["master"], ChannelStrip) and isinstance(session.kit["KD"], KitSlot)


def test_defaults_from_analysis(session):
    assert all(slot.choked_by == () and slot.origin == "extracted" for slot in session.kit.values())
    assert session.mixer["residual"].mute
    assert session.tempo.bpm == pytest.approx(120.0, abs=0.5) and session.tempo.estimated
    assert session.kit["KD"].level == pytest.approx(2.0 * float(make_analysis().track_gains[4]))
    tr = session.transcription()
    assert tr.n_hits == sum(len(h) for h in session.hits.values())


# ---------------------------------------------------------------- property test: random edit sequences
_edit = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["KD", "SD", "TT_HFT"]), st.floats(0, 4), st.floats(0, 1)),
    st.tuples(st.just("del"), st.integers(0, 40)),
    st.tuples(st.just("move"), st.integers(0, 40), st.floats(-0.5, 0.5)),
    st.tuples(st.just("vel"), st.integers(0, 40), st.floats(0, 1)),
    st.tuples(st.just("quant"), st.sampled_from(["1/4", "1/8", "1/16T", "1/32"]), st.floats(0, 1), st.floats(0, 0.9)),
    st.tuples(st.just("mix"), st.sampled_from(["KD", "master"]), st.floats(-60, 24), st.floats(-1, 1)),
    st.tuples(st.just("tempo"), st.floats(40, 300)),
    st.tuples(st.just("undo"),),
    st.tuples(st.just("redo"),),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_edit, min_size=1, max_size=25))
def test_random_edit_sequences_undo_to_every_earlier_state(edits):
    s = Session.from_analysis(make_analysis(duration_s=2.0))
    history = [s.state]  # history[i] = state after i undoable steps
    pos = 0
    for e in edits:
        all_ids = sorted(h.id for hs in s.hits.values() for h in hs)
        pick = (lambda i: all_ids[i % len(all_ids)]) if all_ids else None
        if e[0] == "undo":
            if s.undo() is not None:
                pos -= 1
            assert s.state == history[pos]
            continue
        if e[0] == "redo":
            if s.redo() is not None:
                pos += 1
            assert s.state == history[pos]
            continue
        if e[0] == "add":
            cmd = AddHits(e[1], [(e[2], e[3])])
        elif e[0] == "del" and pick:
            cmd = DeleteHits([pick(e[1])])
        elif e[0] == "move" and pick:
            cmd = MoveHits([pick(e[1])], e[2])
        elif e[0] == "vel" and pick:
            cmd = SetVelocity([pick(e[1])], e[2])
        elif e[0] == "quant":
            cmd = Quantize(None, e[1], strength=e[2], swing=e[3])
        elif e[0] == "mix":
            cmd = SetMixer(e[1], gain_db=e[2], pan=e[3])
        elif e[0] == "tempo":
            cmd = SetTempo(bpm=e[1])
        else:
            continue
        s.apply(cmd)
        pos += 1
        del history[pos:]
        history.append(s.state)
    while s.can_undo:
        s.undo()
        pos -= 1
        assert s.state == history[pos]
    assert pos == 0
