"""Evaluation on a 2-clip dataset the test renders: oracle, silence, known distortions, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import mir_eval
import numpy as np
import pytest

from idm_host.classes import GROUPS, IDM_CLASSES
from idm_host.errors import IdmError
from idm_host.train.data import render_dataset
from idm_host.train.evaluate import (SDR_CAP_DB, Prediction, evaluate, format_table, load_clip, match_onsets,
                                     oracle_predictor, si_sdr, silence_predictor, window_sdr)
from idm_host.train.kits import synthetic_kit
from idm_host.train.patterns import PatternSource
from idm_host.types import Hit, Transcription

from .kitbuild import SR


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "ds"
    return render_dataset(out, [synthetic_kit(0), synthetic_kit(1)], PatternSource(), n_clips=2, duration_s=3.0,
                          seed=4)


def test_oracle_scores_cap_and_one(dataset):
    res = evaluate(dataset, oracle_predictor, system="oracle")
    assert res["n_clips"] == 2 and list(res["groups"]) == list(GROUPS)
    for section in ("classes", "groups"):
        for name, m in res[section].items():
            if m["n_clips_with_audio"]:
                assert m["sdr_db"] == SDR_CAP_DB and m["si_sdr_db"] == SDR_CAP_DB, name
            if m["n_ref"]:
                assert m["precision"] == m["recall"] == m["f_measure"] == 1.0, name
    assert res["classes"]["KD"]["n_ref"] > 0
    from idm_host.classes import group_of
    for g, m in res["groups"].items():
        total = sum(res["classes"][c]["n_ref"] for c in IDM_CLASSES if group_of(c) == g)
        assert (total > 0) == (m["n_ref"] > 0) and m["n_ref"] <= total


def test_silence_scores(dataset):
    res = evaluate(dataset, silence_predictor, system="silence")
    for section in ("classes", "groups"):
        for name, m in res[section].items():
            if m["n_clips_with_audio"]:
                assert m["sdr_db"] == 0.0 and m["si_sdr_db"] == -SDR_CAP_DB, name
            if m["n_ref"]:
                assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f_measure"] == 0.0, name
            else:
                assert m["f_measure"] is None


def test_half_level_and_shifted_onsets(dataset):
    """Stems at half level: SDR = 20 log10(2) = 6.02 dB, SI-SDR capped; hits 30 ms late match, 70 ms do not."""
    def predict(clip):
        hits = {}
        for c in clip.classes:
            hs = clip.transcription.hits[c]
            hits[c] = [Hit(h.time_s + (0.03 if i % 2 == 0 else 0.07), h.velocity) for i, h in enumerate(hs)]
        return Prediction(clip.stems * 0.5, Transcription(clip.classes, hits), clip.classes)

    res = evaluate(dataset, predict)
    kd = res["classes"]["KD"]
    assert kd["sdr_db"] == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert kd["si_sdr_db"] == SDR_CAP_DB
    # cross-check the onset counts of one clip with mir_eval.onset.f_measure
    clip = load_clip(dataset / "clip-0000", IDM_CLASSES)
    ref = clip.transcription.times("KD")
    est = predict(clip).transcription.times("KD")
    p, r, f = mir_eval.onset.f_measure(ref, est, window=0.05)
    assert match_onsets(ref, est) / len(est) == pytest.approx(p)
    assert 0.3 < kd["recall"] < 0.7  # about every other hit matches


def test_metric_functions():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(2 * SR)
    s[SR:] = 0.0  # second window silent: skipped
    w = window_sdr(s, s + 0.1 * rng.standard_normal(s.size))
    assert np.isfinite(w[0]) and np.isnan(w[1])
    assert w[0] == pytest.approx(10 * np.log10(1 / 0.01), abs=0.2)
    assert np.isnan(si_sdr(np.zeros(10), np.ones(10)))
    assert si_sdr(s, -3 * s) == SDR_CAP_DB
    with pytest.raises(IdmError, match="differ in length"):
        window_sdr(s, s[:10])


def test_missing_classes_in_prediction_are_silent(dataset):
    def only_kick(clip):
        i = clip.classes.index("KD")
        return Prediction(clip.stems[i:i + 1], Transcription(("KD",), {"KD": clip.transcription.hits["KD"]}), ("KD",))

    res = evaluate(dataset, only_kick)
    assert res["classes"]["KD"]["f_measure"] == 1.0 and res["groups"]["KD"]["sdr_db"] == SDR_CAP_DB
    assert res["classes"]["SD"]["sdr_db"] == 0.0
    assert "KD" in format_table(res) and "SI-SDR" in format_table(res)


def test_bad_datasets(tmp_path, dataset):
    with pytest.raises(IdmError, match="dataset folder not found"):
        evaluate(tmp_path / "none", oracle_predictor)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IdmError, match="holds no clip"):
        evaluate(tmp_path / "empty", oracle_predictor)
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "clip-0001" / "stems" / "SD.wav").unlink()
    with pytest.raises(IdmError, match="SD.wav: stem missing"):
        evaluate(broken, oracle_predictor)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "idm_host", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_render_and_eval(tmp_path):
    from .kitbuild import write_hydrogen

    kit = write_hydrogen(tmp_path / "kit")
    ds = tmp_path / "ds"
    r = run_cli("eval", "render", "--kit", kit, "--out", ds, "--clips", 2, "--duration", 2.0, "--seed", 1)
    assert r.returncode == 0, r.stderr
    assert (ds / "clip-0001" / "stems" / "KD.wav").exists()
    out = tmp_path / "res.json"
    r = run_cli("eval", ds, "--predictor", "oracle", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "SDR dB" in r.stdout and "KD" in r.stdout
    res = json.loads(out.read_text())
    assert res["classes"]["KD"]["f_measure"] == 1.0
    r = run_cli("eval", ds, "--predictor", "oracle", "--json", out)
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run_cli("eval", tmp_path / "nothing")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "dataset folder not found" in r.stderr
    r = run_cli("eval", "render", "--kit", tmp_path / "nokit", "--out", tmp_path / "d2")
    assert r.returncode == 1 and "kit not found" in r.stderr
