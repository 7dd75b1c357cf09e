"""The peer transcriber (ADTOF, evaluation only, run from ../shared/peers in its own venv) and the
rule that a model below the official weights on any class does not ship."""
from __future__ import annotations

import numpy as np
import pytest

from idm_host.classes import IDM_CLASSES
from idm_host.errors import IdmError
from idm_host.train.compare import regressions, require_no_regression
from idm_host.train.kits import synthetic_kit
from idm_host.train.patterns import Pattern
from idm_host.train.peer import as_group_hits, peer_available, run_adtof
from idm_host.train.transcriber_data import play
from idm_host.train.transcriber_loop import score_hits


def _clip():
    hits = ([(0.5 + i, 36, 0.9) for i in range(4)] + [(1.0 + i, 38, 0.9) for i in range(3)]
            + [(0.25 * i + 0.25, 42, 0.6) for i in range(15)])
    stems, ref = play(synthetic_kit(0), Pattern.from_hits(hits, 4.5), IDM_CLASSES, np.random.default_rng(0),
                      start_s=0.0, duration_s=4.5, layer_jitter=0.0)
    mix = stems.sum(0)
    return mix * np.float32(0.9 / np.abs(mix).max()), ref


@pytest.mark.skipif(peer_available() is not None, reason=str(peer_available()))
def test_peer_runner_gives_the_hand_checked_figures():
    mix, ref = _clip()
    answers, timing = run_adtof([mix])
    got = answers[0]
    # checked by ear and eye: ADTOF finds every kick and closed hat of this synthetic groove within
    # 15 ms, and hears the synthetic snare (a tone plus noise burst) as nothing at all
    assert len(got["KD"]) == 4 and len(got["HH"]) == 15 and got["SD"] == []
    assert np.allclose(got["KD"], [0.5, 1.5, 2.5, 3.5], atol=0.015)
    ref_groups = {"KD": ref["KD"], "SD": ref["SD"], "HH": ref["HH_CHH"], "TT": [], "CY": []}
    scores = score_hits([(ref_groups, as_group_hits(got))], ("KD", "SD", "HH", "TT", "CY"))
    assert scores["KD"]["F"] == 1.0 and scores["HH"]["F"] == 1.0
    assert scores["SD"]["R"] == 0.0 and scores["SD"]["F"] == 0.0
    assert timing["audio_s"] == pytest.approx(4.5, abs=0.02)


def test_a_class_below_the_official_weights_fails_loudly():
    results = {"kitA": {"ours": {"KD": {"F": 0.95}, "TT": {"F": 0.40}}, "official": {"KD": {"F": 0.90}, "TT": {"F": 0.50}}},
               "kitB": {"ours": {"KD": {"F": 0.99}}, "official": {"KD": {"F": 0.98}}}}
    assert regressions(results, "ours", "official") == [("kitA", "TT", 0.40, 0.50)]
    with pytest.raises(IdmError, match=r"kitA/TT 0.400 < 0.500.*must not ship"):
        require_no_regression(results, "ours", "official")
    results["kitA"]["ours"]["TT"]["F"] = 0.5
    require_no_regression(results, "ours", "official")
