"""`idm-host session new|info` and `idm-host render` in a subprocess, on the real model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from clikit import cli

from idm_host.audio import load_audio


@pytest.fixture(scope="module")
def made_session(tmp_path_factory, demo_loop, official_model, model_cache):
    out = tmp_path_factory.mktemp("cli") / "loop.idmsession"
    r = cli("session", "new", demo_loop, "--out", out, "--json", "--model", official_model,
            env={"IDM_HOST_MODELS": str(model_cache)})
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_session_new_and_info(made_session, model_cache):
    path, summary = made_session
    assert (path / "session.json").is_file() and summary["n_hits"] > 5 and summary["stems"]
    r = cli("session", "info", path, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["n_hits"] == summary["n_hits"] and info["source_problem"] is None
    r = cli("session", "info", path)
    assert r.returncode == 0 and "BPM" in r.stdout


def test_render_session_with_kit_fx_and_master(made_session, tmp_path):
    path, summary = made_session
    out = tmp_path / "remix"
    r = cli("render", path, "--kit", "synth-electro", "--fx", "KD=tight-kick", "--fx", "SD=fat-snare",
            "--master", "master-glue", "--out", out, "--format", "flac", "--json",
            "--save-session", tmp_path / "remix.idmsession")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["kit"] == "synth-electro" and res["fx"] == {"KD": "tight-kick", "SD": "fat-snare"}
    mix = load_audio(out / "mix.flac", sample_rate=None)
    assert mix.n_frames == round(summary["duration_s"] * 44100) and np.abs(mix.samples).max() > 0.05
    assert len(list(out.glob("*.flac"))) == 10
    from idm_host.session import Session

    saved = Session.load(tmp_path / "remix.idmsession")
    assert saved.kit["KD"].origin == "file" and saved.mixer["master"].effects == "master-glue"
    # the original session is untouched
    assert Session.load(path).kit["KD"].origin == "extracted"
    # again without --overwrite: refused, files unchanged
    before = (out / "mix.flac").read_bytes()
    r = cli("render", path, "--out", out, "--format", "flac")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "already exists" in r.stderr
    assert (out / "mix.flac").read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["--fx", "KD=no-such-chain"], "no-such-chain"),
    (["--fx", "KICK=room"], "unknown class"),
    (["--fx", "KD"], "CLASS=PRESET"),
    (["--kit", "nope"], "kits preset 'nope' not found"),
    (["--master", "bad/path.json"], "not found"),
])
def test_render_bad_arguments_one_line_and_nothing_written(made_session, tmp_path, args, needle):
    path, _ = made_session
    r = cli("render", path, "--out", tmp_path / "o", *args)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("idm-host: error:") and r.stderr.count("\n") == 1 and needle in r.stderr
    assert not (tmp_path / "o").exists()


def test_session_errors(tmp_path):
    r = cli("session", "info", tmp_path / "missing.idmsession")
    assert r.returncode == 1 and "no such session" in r.stderr
    (tmp_path / "x.idmsession").mkdir()
    (tmp_path / "x.idmsession" / "session.json").write_text('{"schema_version": 42}')
    r = cli("session", "info", tmp_path / "x.idmsession")
    assert r.returncode == 1 and "newer idm-host" in r.stderr
    r = cli("session", "new", tmp_path / "nope.wav", "--out", tmp_path / "n.idmsession")
    assert r.returncode == 1 and "not found" in r.stderr


def test_render_audio_directly(demo_loop, official_model, model_cache, tmp_path):
    out = tmp_path / "direct"
    r = cli("render", demo_loop, "--kit", "synth-acoustic", "--blend", "layer", "--out", out, "--json",
            "--model", official_model, "--channels", "1", env={"IDM_HOST_MODELS": str(model_cache)})
    assert r.returncode == 0, r.stderr
    mix = load_audio(out / "mix.wav", sample_rate=None)
    assert mix.channels == 1 and np.abs(mix.samples).max() > 0.05
