"""One-shots fitted to the record in a session: built from an adaptive analysis, saved and loaded bit
for bit, switched to the synthetic one-shot and back (undoable), refitted, and left alone for user samples."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from idm_host.errors import SessionError
from idm_host.session import ReplaceSample, RevertSample, Session, SetFittedKit, UseFitted
from idm_host.types import Kit
from sessionkit import SR, make_analysis


def adaptive_analysis():
    """An analysis shaped like an adaptive one: ``kit`` fitted (the synthetic one-shots changed a little),
    ``extra["synthetic_kit"]`` the model's own."""
    a = make_analysis(duration_s=1.0)
    synthetic = a.kit
    shots = synthetic.one_shots * np.float32(0.8) + np.float32(0.01) * np.sin(
        np.arange(synthetic.one_shots.shape[1], dtype=np.float32))[None, :]
    fitted = Kit(synthetic.classes, shots.astype(np.float32), synthetic.sample_rate, synthetic.track_gains,
                 synthetic.velocity_scale)
    return dataclasses.replace(a, kit=fitted, extra={"masking": "adaptive", "synthetic_kit": synthetic}), synthetic


def test_a_session_from_an_adaptive_analysis_has_fitted_slots():
    a, synthetic = adaptive_analysis()
    s = Session.from_analysis(a)
    for c in s.classes:
        slot = s.kit[c]
        assert slot.origin == "fitted"
        assert np.array_equal(slot.one_shot, a.kit.one_shot(c)) and np.array_equal(slot.fitted, a.kit.one_shot(c))
        assert np.array_equal(slot.synthetic, synthetic.one_shot(c))
        assert np.array_equal(s.extracted_one_shot(c)[0], synthetic.one_shot(c))
    plain = Session.from_analysis(make_analysis(duration_s=1.0))
    assert all(slot.origin == "extracted" and slot.fitted is None for slot in plain.kit.values())


def test_fitted_slots_round_trip_bit_exact(tmp_path):
    a, _ = adaptive_analysis()
    s = Session.from_analysis(a)
    s.apply(UseFitted("SD", fitted=False))
    s.apply(ReplaceSample("KD", samples=np.linspace(0.5, 0.0, 100, dtype=np.float32), sample_rate=SR))
    out = s.save(tmp_path / "fit")
    doc = json.loads((out / "session.json").read_text())
    assert doc["schema_version"] == 2 and doc["kit"]["HH_CHH"]["origin"] == "fitted"
    assert doc["kit"]["HH_CHH"]["file"] == doc["kit"]["HH_CHH"]["fitted_file"]
    assert doc["kit"]["SD"]["file"] == doc["kit"]["SD"]["synthetic_file"] == doc["extracted"]["SD"]["file"]
    back = Session.load(out)
    assert back.state == s.state and not back.modified
    for c in s.classes:
        for f in ("one_shot", "fitted", "synthetic"):
            x, y = getattr(s.kit[c], f), getattr(back.kit[c], f)
            assert x.dtype == y.dtype == np.float32 and x.tobytes() == y.tobytes()
    assert back.kit["SD"].origin == "extracted" and back.kit["KD"].origin == "file"
    back.apply(RevertSample("KD"))  # a reverted sample goes back to the one that sounds like the record
    assert back.kit["KD"].origin == "fitted" and np.array_equal(back.kit["KD"].one_shot, back.kit["KD"].fitted)


def test_switch_to_synthetic_and_back_is_undoable():
    a, synthetic = adaptive_analysis()
    s = Session.from_analysis(a)
    before = s.kit["SD"]
    ch = s.apply(UseFitted("SD", fitted=False))
    assert ch.parts == {"kit"} and ch.classes == {"SD"}
    assert s.kit["SD"].origin == "extracted" and np.array_equal(s.kit["SD"].one_shot, synthetic.one_shot("SD"))
    assert np.array_equal(s.kit["SD"].fitted, before.fitted)  # the fitted one stays for the way back
    s.apply(UseFitted("SD"))
    assert s.kit["SD"] == before
    s.undo()
    assert s.kit["SD"].origin == "extracted"
    s.undo()
    assert s.kit["SD"] == before and not s.modified
    s.redo()
    assert s.kit["SD"].origin == "extracted"


def test_switch_needs_a_fitted_one_shot_and_no_user_sample():
    s = Session.from_analysis(make_analysis(duration_s=1.0))
    with pytest.raises(SessionError, match="no one-shot fitted"):
        s.apply(UseFitted("SD", fitted=False))
    a, _ = adaptive_analysis()
    s = Session.from_analysis(a)
    s.apply(ReplaceSample("SD", samples=np.ones(10, np.float32), sample_rate=SR))
    with pytest.raises(SessionError, match="user sample"):
        s.apply(UseFitted("SD", fitted=False))


def test_a_new_fit_updates_model_slots_and_leaves_user_samples():
    s = Session.from_analysis(make_analysis(duration_s=1.0))
    user = np.linspace(1.0, 0.0, 50, dtype=np.float32)
    s.apply(ReplaceSample("KD", samples=user, sample_rate=SR))
    kd = s.kit["KD"]
    new = {c: np.full(300, 0.1 * (i + 1), np.float32) for i, c in enumerate(s.classes)}
    s.apply(SetFittedKit(new))
    assert s.kit["KD"] == kd
    for c in (c for c in s.classes if c != "KD"):
        assert s.kit[c].origin == "fitted" and np.array_equal(s.kit[c].one_shot, new[c])
        assert np.array_equal(s.kit[c].synthetic, s.extracted_one_shot(c)[0])
    s.undo()
    assert all(s.kit[c].fitted is None for c in s.classes)


def test_a_real_adaptive_analysis_gives_fitted_slots(separator, demo_loop, tmp_path):
    """The engine's own adaptive analysis (the model's hits given back as the user's) into a session."""
    plain = separator.analyze(demo_loop)
    a = separator.analyze(demo_loop, plain.transcription, masking="adaptive")
    assert "synthetic_kit" in a.extra
    s = Session.from_analysis(a)
    for c in s.classes:
        slot = s.kit[c]
        assert slot.origin == "fitted"
        np.testing.assert_array_equal(slot.one_shot, a.kit.one_shot(c))
        np.testing.assert_array_equal(slot.synthetic, a.extra["synthetic_kit"].one_shot(c))
    assert any(not np.array_equal(s.kit[c].fitted, s.kit[c].synthetic) for c in s.classes)
    back = Session.load(s.save(tmp_path / "real"))
    assert back.state == s.state
