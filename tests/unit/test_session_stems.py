"""SetStems (replacing the separated stems as an undoable edit) and the rule for Session.modified."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host.audio import load_audio
from idm_host.classes import IDM_CLASSES
from idm_host.errors import IdmError, SessionError
from idm_host.session import AddHits, Compound, Session, SetMixer, SetStems, SetTempo
from idm_host.types import Stems
from sessionkit import SR, make_analysis


def _new_stems(session: Session, seed: int = 7) -> Stems:
    old = session.stems
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal(old.audio.shape)).astype(np.float32)
    residual = (0.01 * rng.standard_normal(old.residual.shape)).astype(np.float32)
    return Stems(old.classes, audio, residual, old.sample_rate)


@pytest.fixture
def session():
    return Session.from_analysis(make_analysis(duration_s=2.0))


def test_set_stems_undo_redo_restore_exactly(session):
    old = session.stems
    old_audio = old.audio.copy()
    new = _new_stems(session)
    seen = []
    session.subscribe(seen.append)
    change = session.apply(SetStems(new, label="re-separate"))
    assert session.stems is new and change.parts == {"stems"} and change.label == "re-separate"
    assert set(IDM_CLASSES) <= change.classes and "residual" in change.classes
    assert session.can_undo and session.undo_label == "re-separate"
    assert session.undo().parts == {"stems"}
    assert session.stems is old
    np.testing.assert_array_equal(session.stems.audio, old_audio)
    session.redo()
    assert session.stems is new
    assert [(c.kind, c.parts) for c in seen] == [("apply", {"stems"}), ("undo", {"stems"}), ("redo", {"stems"})]
    # the stems in the history are read-only: nothing can change them behind undo's back
    with pytest.raises(ValueError):
        new.audio[0, 0, 0] = 1.0


def test_set_stems_with_other_edits_in_one_step(session):
    before = session.state
    session.apply(Compound([AddHits("SD", [(0.3, 0.5)]), SetStems(None)], "paste and drop stems"))
    assert session.stems is None and len(session.hits["SD"]) == len(before.hits["SD"]) + 1
    session.undo()
    assert session.state == before and session.stems is before.stems


def test_stems_cannot_be_assigned_directly(session):
    with pytest.raises(SessionError, match="SetStems"):
        session.stems = _new_stems(session)


@pytest.mark.parametrize("damage", ["classes", "rate", "shape", "dtype", "nan", "type"])
def test_bad_stems_are_refused_and_change_nothing(session, damage):
    good = _new_stems(session)
    if damage == "type":
        with pytest.raises(SessionError, match="Stems object"):
            SetStems(good.audio)
        return
    bad = {
        "classes": Stems(good.classes[::-1], good.audio, good.residual, SR),
        "rate": Stems(good.classes, good.audio, good.residual, 48000),
        "shape": Stems(good.classes, good.audio[:, :, :-5], good.residual, SR),
        "dtype": Stems(good.classes, good.audio.astype(np.float64), good.residual, SR),
        "nan": Stems(good.classes, np.where(np.arange(good.audio.size).reshape(good.audio.shape) == 3, np.nan,
                                            good.audio).astype(np.float32), good.residual, SR),
    }[damage]
    before = session.state
    with pytest.raises(SessionError) as info:
        session.apply(SetStems(bad))
    assert isinstance(info.value, IdmError) and str(info.value)
    assert session.state is before and not session.can_undo and not session.modified


def test_save_after_set_stems_writes_the_new_stems_and_undo_save_writes_old(session, tmp_path):
    old = session.stems
    new = _new_stems(session)
    session.apply(SetStems(new))
    path = session.save(tmp_path / "song")
    back = Session.load(path)
    np.testing.assert_allclose(back.stems.audio, new.audio, atol=2e-7)
    np.testing.assert_allclose(back.stems.residual, new.residual, atol=2e-7)
    assert back.state == session.state
    kd = sorted((path / "stems").glob("KD-*.flac"))
    assert len(kd) == 1
    np.testing.assert_allclose(load_audio(kd[0], sample_rate=None).samples, new.stem("KD"), atol=2e-7)
    session.undo()
    session.save(path)
    again = Session.load(path)
    np.testing.assert_allclose(again.stems.audio, old.audio, atol=1e-6)
    assert len(sorted((path / "stems").glob("KD-*.flac"))) == 1  # the replaced file was removed


def test_dropping_stems_saves_without_them(session, tmp_path):
    session.apply(SetStems(None))
    path = session.save(tmp_path / "song")
    assert Session.load(path).stems is None and not (path / "stems").exists()


# ------------------------------------------------------------------------------ modified
def test_fresh_analysis_is_not_modified_and_edits_are(session):
    assert not session.modified
    session.apply(SetMixer("KD", gain_db=-2.0))
    assert session.modified
    session.undo()  # back to the analysed snapshot
    assert not session.modified
    session.redo()
    assert session.modified


def test_stems_edit_marks_modified(session):
    session.apply(SetStems(_new_stems(session)))
    assert session.modified


def test_modified_around_save_and_load(session, tmp_path):
    session.apply(SetTempo(bpm=100.0))
    session.apply(AddHits("KD", [(0.1, 0.5)]))
    path = session.save(tmp_path / "song")
    assert not session.modified
    session.undo()
    assert session.modified  # undone past the save
    session.redo()
    assert not session.modified  # back on the saved snapshot
    loaded = Session.load(path)
    assert not loaded.modified
    loaded.apply(AddHits("SD", [(0.2, 0.5)]))
    assert loaded.modified
    loaded.undo()
    assert not loaded.modified
    loaded.undo()  # older than the load: the SetTempo is not in this history, nothing happens
    assert not loaded.modified


def test_equal_content_after_new_edit_still_counts_as_modified(session):
    session.apply(SetMixer("KD", gain_db=-2.0))
    session.apply(SetMixer("KD", gain_db=0.0))  # same content as analysed, but two edits were made
    assert session.state == Session.from_analysis(make_analysis(duration_s=2.0)).state
    assert session.modified


def test_undo_to_saved_state_after_diverging_is_modified(session, tmp_path):
    session.apply(SetMixer("KD", gain_db=-2.0))
    session.save(tmp_path / "song")
    session.undo()
    session.apply(SetMixer("SD", gain_db=-1.0))  # the saved snapshot is no longer reachable by redo
    assert session.modified and not session.can_redo
