"""The CLI in a subprocess: --help everywhere, separate on the example loop, bad input."""
from __future__ import annotations

import json

import mido
import numpy as np
import pytest
from clikit import REPO, cli

from idm_host.audio import load_audio


def test_help_for_every_command():
    top = cli("--help")
    assert top.returncode == 0 and "separate" in top.stdout
    from idm_host.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"separate", "models"} <= set(commands)
    for name in commands:
        r = cli(name, "--help")
        assert r.returncode == 0, (name, r.stderr)
        assert "usage" in r.stdout


def test_separate_writes_everything(tmp_path, demo_loop, official_model, model_cache):
    out = tmp_path / "out"
    r = cli("separate", demo_loop, "--out", out, "--json", "--model", official_model,
            env={"IDM_HOST_MODELS": str(model_cache)})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    track = out / demo_loop.stem
    mix = load_audio(demo_loop)
    stems = [load_audio(track / f"{c}.wav") for c in summary["classes"]]
    residual = load_audio(track / "residual.wav")
    assert all(s.channels == 2 and s.n_frames == mix.n_frames for s in stems)
    total = sum(s.samples for s in stems) + residual.samples
    np.testing.assert_allclose(total, mix.samples, atol=1e-3)  # 24-bit files null against the input
    onsets = json.loads((track / "onsets.json").read_text())
    assert {c: len(h) for c, h in onsets["hits"].items()} == summary["hits"]
    notes = [m for m in mido.MidiFile(track / "transcription.mid") if m.type == "note_on" and m.velocity > 0]
    assert len(notes) == sum(summary["hits"].values())
    assert all(m.channel == 9 for m in notes)
    for c in summary["classes"]:
        assert load_audio(track / "kit" / f"{c}.wav").n_frames == 44100
    # the same run again skips what is done; outputs nobody recorded are never overwritten
    before = (track / "KD.wav").read_bytes()
    again = cli("separate", demo_loop, "--out", out, "--model", official_model,
                env={"IDM_HOST_MODELS": str(model_cache)})
    assert again.returncode == 0 and "skipped" in again.stdout, again.stderr
    assert (track / "KD.wav").read_bytes() == before
    import shutil

    shutil.rmtree(out / ".idm-batch")
    again = cli("separate", demo_loop, "--out", out, "--model", official_model,
                env={"IDM_HOST_MODELS": str(model_cache)})
    assert again.returncode == 1 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert (track / "KD.wav").read_bytes() == before


def test_separate_with_onsets_and_groups(tmp_path, demo_loop, official_model, model_cache):
    onsets = tmp_path / "onsets.json"
    onsets.write_text(json.dumps({"KD": [0.0, 0.6, 1.2], "SD": [0.3, 0.31]}))
    r = cli("separate", demo_loop, "--out", tmp_path / "o", "--onsets", onsets, "--classes", "5", "--format",
            "flac", "--json", "--model", official_model, env={"IDM_HOST_MODELS": str(model_cache)})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["classes"] == ["KD", "SD", "HH", "TT", "CY"]
    assert summary["hits"]["KD"] == 3 and summary["hits"]["SD"] == 2
    track = tmp_path / "o" / demo_loop.stem
    assert load_audio(track / "HH.flac").samples.max() == 0  # no hi-hat hits given: silent


@pytest.mark.parametrize("make, needle", [
    (lambda p: p, "not found"),
    (lambda p: (p.write_bytes(b"garbage" * 10), p)[1], "cannot decode"),
])
def test_bad_input_one_line_error(tmp_path, make, needle, official_model, model_cache):
    bad = make(tmp_path / "bad.wav")
    r = cli("separate", bad, "--out", tmp_path / "o", "--model", official_model,
            env={"IDM_HOST_MODELS": str(model_cache)})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idm-host: error:") and needle in lines[0]
    assert not (tmp_path / "o" / "bad").exists() or not any((tmp_path / "o" / "bad").iterdir())


def test_missing_model_says_how_to_get_it(tmp_path, demo_loop):
    r = cli("separate", demo_loop, "--out", tmp_path / "o", env={"IDM_HOST_MODELS": str(tmp_path / "empty")})
    if (REPO / "idm_host" / "models" / "default" / "default.pt").exists():
        assert r.returncode == 0
    else:
        assert r.returncode == 1 and "models import" in r.stderr


def test_models_cli(tmp_path, reference):
    env = {"IDM_HOST_MODELS": str(tmp_path / "c")}
    r = cli("models", "import", reference / "demo-mix.wav", env=env)
    assert r.returncode == 1 and "sha256" in r.stderr
    r = cli("models", "import", reference / "idm-44-train-kits.ckpt", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["installed"]
    r = cli("models", "list", "--json", env=env)
    assert any(m["name"] == "idm-44-train-kits" and m["installed"] for m in json.loads(r.stdout)["models"])
    r = cli("models", "path", "idm-44-train-kits", env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("idm-44-train-kits.pt")
