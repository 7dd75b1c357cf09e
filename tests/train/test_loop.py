"""The training loop with a small model: a step lowers the loss, resume continues exactly, errors are clear."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from idm_host.errors import IdmError
from idm_host.train.data import ClipStream, DataConfig
from idm_host.train.kits import KitError
from idm_host.train.losses import IDMLoss
from idm_host.train.loop import (TrainOptions, batch_for_step, build_model, load_state, loss_curve_png, to_tensors,
                                 train, train_step)
from idm_host.train.patterns import PatternSource

from .kitbuild import write_folder, write_hydrogen, write_sf2

SMALL = {"synth_channels": 8, "synth_blocks": 3, "one_shot_s": 0.1, "depths": [1, 1, 1, 1]}


@pytest.fixture(scope="module")
def kits_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kits")
    write_hydrogen(d / "hk")
    write_folder(d / "shots")
    write_sf2(d / "val.sf2")
    return d


def data_config(kits_dir, tmp_path, **extra):
    cfg = {"kits": [str(kits_dir / "hk"), str(kits_dir / "shots")], "validation_kits": [str(kits_dir / "val.sf2")],
           "patterns": {"styles": ["rock", "funk"]}, "crop_s": 1.0, "validation_clips": 2, "seed": 3, **extra}
    p = tmp_path / "data.json"
    p.write_text(json.dumps(cfg))
    return p


def test_one_step_reduces_the_loss_on_a_fixed_batch(kits_dir, tmp_path):
    cfg = DataConfig.load(data_config(kits_dir, tmp_path))
    torch.manual_seed(0)
    model, _ = build_model(cfg.classes, cfg.kit_names, overrides=SMALL)
    kits = [k.load() for k in cfg.kits]
    stream = ClipStream(kits, PatternSource(styles=cfg.styles), duration_s=1.0, seed=0)
    x, onsets, kit_ids = to_tensors(batch_for_step(stream, 0, 0, 2), torch.device("cpu"))
    loss_fn = IDMLoss()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss_now():
        with torch.no_grad():
            out = model(x, onsets, generator=torch.Generator().manual_seed(1))
            return float(loss_fn(out["mix"], x, out["onset_logits"], onsets, out["kit_logits"], kit_ids).total)

    before = loss_now()
    terms = train_step(model, loss_fn, opt, x, onsets, kit_ids, generator=torch.Generator().manual_seed(1))
    after = loss_now()
    assert terms["loss"] == pytest.approx(before, rel=1e-5)
    assert after < before
    assert terms["grad_norm"] > 0


def test_run_resume_and_outputs(kits_dir, tmp_path):
    data = DataConfig.load(data_config(kits_dir, tmp_path))
    opts = TrainOptions(steps=4, batch_size=2, validate_every=2, log_every=1, model_config=SMALL)
    straight = train(data, tmp_path / "a", opts)
    assert straight["step"] == 4 and straight["step_start"] == 0
    for name in ("checkpoint.pt", "model.pt", "last.pt", "losses.jsonl", "loss_curve.png", "report.json", "data.json"):
        assert (tmp_path / "a" / name).exists(), name
    # the same run in two halves
    half = TrainOptions(steps=2, batch_size=2, validate_every=2, log_every=1, model_config=SMALL)
    first = train(data, tmp_path / "b", half)
    assert first["step"] == 2
    with pytest.raises(IdmError, match="already holds a training run"):
        train(data, tmp_path / "b", half)
    resumed = train(data, tmp_path / "b", opts, resume=True)
    assert resumed["step_start"] == 2 and resumed["step"] == 4
    assert load_state(tmp_path / "b" / "checkpoint.pt")["step"] == 4
    a = load_state(tmp_path / "a" / "checkpoint.pt")["weights"]["state_dict"]
    b = load_state(tmp_path / "b" / "checkpoint.pt")["weights"]["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    log = [json.loads(l) for l in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    assert [h["step"] for h in log if "loss" in h] == [1, 2, 3, 4]
    assert [h["step"] for h in log if "val_loss" in h] == [0, 2, 4]
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["model"]["kits"] == ["hk", "shots"] and report["best_val_loss"] is not None
    with pytest.raises(IdmError, match="no checkpoint to resume from"):
        train(data, tmp_path / "c", opts, resume=True)


def test_trained_model_runs_in_the_engine(kits_dir, tmp_path):
    from idm_host.engine import Separator

    data = DataConfig.load(data_config(kits_dir, tmp_path))
    train(data, tmp_path / "r", TrainOptions(steps=1, batch_size=1, model_config=SMALL))
    sep = Separator(str(tmp_path / "r" / "model.pt"), "cpu")
    assert sep.classes == data.classes
    noise = 0.01 * np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    analysis = sep.analyze(np.zeros(22050, dtype=np.float32) + noise, sample_rate=44100)
    assert analysis.stems.audio.shape == (9, 1, 22050)


def test_init_from_a_model_with_other_kits(kits_dir, tmp_path):
    from idm_host.model.checkpoints import save_weights

    base, _ = build_model(("KD", "SD"), ("a", "b", "c"), overrides=SMALL)
    save_weights(base, tmp_path / "base.pt")
    model, info = build_model(("KD", "SD"), ("x",), init=str(tmp_path / "base.pt"))
    assert info["copied"] > 0 and "kit_classifier.out.weight" in info["partially_copied"]
    torch.testing.assert_close(model.state_dict()["kit_classifier.out.weight"],
                               base.state_dict()["kit_classifier.out.weight"][:1])
    with pytest.raises(IdmError, match="fresh models only"):
        build_model(("KD",), ("x",), init=str(tmp_path / "base.pt"), overrides=SMALL)
    with pytest.raises(IdmError, match="unknown keys"):
        build_model(("KD",), ("x",), overrides={"layers": 3})


def test_bad_kit_files_give_clear_errors(kits_dir, tmp_path):
    broken = tmp_path / "broken"
    write_hydrogen(broken)
    (broken / "drumkit.xml").write_text("<drumkit_info><instrumentList><instrument>")
    data = DataConfig.load(data_config(kits_dir, tmp_path, kits=[str(broken)]))
    with pytest.raises(KitError, match="drumkit.xml: not valid XML"):
        train(data, tmp_path / "run", TrainOptions(steps=1, model_config=SMALL))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    r = subprocess.run([sys.executable, "-m", "idm_host", "train", "--data", str(tmp_path / "data.json"),
                        "--out", str(tmp_path / "run"), "--steps", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not valid XML" in r.stderr


def test_loss_curve_png_is_a_real_png(tmp_path):
    from PyQt6.QtGui import QImage

    png = loss_curve_png([(i, 10 * 0.97 ** i) for i in range(1, 200)], [(0, 12.0), (100, 1.0), (199, 0.5)])
    (tmp_path / "c.png").write_bytes(png)
    img = QImage(str(tmp_path / "c.png"))
    assert not img.isNull() and (img.width(), img.height()) == (640, 360)
    assert img.text("Legend").startswith("grey")
    corner = img.pixelColor(5, 5)  # outside the plot: background
    assert (corner.red(), corner.green(), corner.blue()) == (255, 255, 255)
    colours = {img.pixelColor(x, y).getRgb()[:3] for x in range(0, 640, 2) for y in range(0, 360, 2)}
    assert (0, 0, 0) in colours and (220, 30, 30) in colours


def test_freeze_synth_fine_tunes_the_encoder_only(kits_dir, tmp_path):
    """--freeze-synth: the synthesiser and kit classifier stay as they were, the encoder side learns,
    the one-shots are the engine's (seeded noise, arg-max kit), and the result runs in the engine."""
    from idm_host.model.checkpoints import load_weights, save_weights

    data = DataConfig.load(data_config(kits_dir, tmp_path))
    base, _ = build_model(data.classes, ("a", "b", "c"), overrides=SMALL)
    save_weights(base, tmp_path / "base.pt")
    with pytest.raises(IdmError, match="--init"):
        train(data, tmp_path / "x", TrainOptions(steps=1, batch_size=1, freeze_synth=True))
    report = train(data, tmp_path / "ft", TrainOptions(steps=3, batch_size=2, validate_every=3, lr=1e-3,
                                                       init=str(tmp_path / "base.pt"), freeze_synth=True))
    assert report["step"] == 3 and report["init"]["frozen"] == ["synth", "kit_classifier"]
    tuned, _ = load_weights(tmp_path / "ft" / "last.pt")
    assert tuned.config.kits == ("a", "b", "c")  # the init model's kits are kept
    before, after = base.state_dict(), tuned.state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        if key.startswith(("synth.", "kit_classifier.")):
            assert same, f"{key} changed although frozen"
    assert not torch.equal(before["transcription.onset.weight"], after["transcription.onset.weight"])
    # resume continues the frozen run
    again = train(data, tmp_path / "ft", TrainOptions(steps=4, batch_size=2, validate_every=4, lr=1e-3,
                                                      init=str(tmp_path / "base.pt"), freeze_synth=True), resume=True)
    assert again["step_start"] == 3 and again["step"] == 4
