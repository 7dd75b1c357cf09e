"""Shape and contract tests of the model components (IDM-SPEC.md), and checkpoint round trips."""
from __future__ import annotations

import pytest
import torch

from idm_host.classes import IDM_CLASSES
from idm_host.errors import ModelError
from idm_host.model import IDM, IDMConfig
from idm_host.model.checkpoints import load_weights, save_weights
from idm_host.model.encoder import htk_mel_filterbank


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return IDM(IDMConfig()).eval()


def test_parameter_count_and_classes(model):
    groups = {
        "backbone": 67_368, "kit_classifier": 1_318, "transcription": 7_794, "track_gains": 3_105,
    }
    counts = {g: sum(p.numel() for n, p in model.named_parameters() if n.startswith(g + ".")) for g in groups}
    assert counts == groups
    synth = sum(p.numel() for n, p in model.synth.named_parameters())
    assert synth == 462_097 + 256  # TCN + envelope MLP
    assert sum(p.numel() for p in model.parameters()) == 541_938
    assert model.config.classes == IDM_CLASSES


@pytest.mark.parametrize("n_samples", [256, 1000, 44100, 132300])
def test_encoder_shapes(model, n_samples):
    with torch.inference_mode():
        out = model.encode(torch.zeros(2, n_samples))
    f = -(-n_samples // 256) + 1
    m = f + 12
    assert model.config.n_model_frames(n_samples) == m
    assert out["log_mel"].shape == (2, 128, f)
    assert out["z"].shape == (2, m, 32)
    assert out["onset_logits"].shape == out["velocity"].shape == (2, 9, m)
    assert out["kit_embedding"].shape == (2, 6)
    assert torch.allclose(out["kit_embedding"].sum(-1), torch.ones(2))
    assert out["track_gains"].shape == (2, 9)
    assert (out["velocity"] > 0).all() and (out["velocity"] <= 2).all()


def test_mel_filterbank_is_htk_triangles():
    fb = htk_mel_filterbank(513, 128, 44100, 0.0, 22050.0)
    assert fb.shape == (513, 128)
    assert float(fb.min()) >= 0 and float(fb.max()) <= 1.0 + 1e-6
    assert float(fb[:, 0].abs().sum()) == 0.0  # first filter empty at this resolution (harmless)
    peaks = fb.argmax(0)[1:]
    assert bool((peaks[1:] >= peaks[:-1]).all())  # centres rise with the band index


def test_synth_shapes_and_joint_peak_normalisation(model):
    """The TCN maps noise to one waveform per one-shot; one maximum over all of an item's one-shots
    scales them to a 0.95 peak before the decay envelope (as the official model does)."""
    torch.manual_seed(1)
    noise = torch.randn(9, 4096)
    cond = model.conditioning(torch.softmax(torch.randn(1, 6), -1))[0]
    ctl = model.synth.controls(cond)
    with torch.inference_mode():
        w = model.synth.waveform(noise, ctl)
    assert w.shape == (9, 4096)
    with torch.no_grad():
        shots = model.synthesize(torch.softmax(torch.randn(1, 6), -1))
    assert shots.shape == (1, 9, 44100)
    assert 0.0 < float(shots.abs().max()) <= 0.95 + 1e-5  # 0.95 before the decay envelope


def test_sequencer_places_one_shot_at_hop_multiples(model):
    shots = torch.zeros(1, 9, 100)
    shots[0, :, 0] = 1.0
    shots[0, :, 10] = 0.5
    act = torch.zeros(1, 9, 20)
    act[0, 4, 3] = 0.7
    with torch.no_grad():
        stems = model.sequence(act, shots, torch.full((1, 9), 2.0), n_samples=5000)
    nz = torch.nonzero(stems[0, 4].abs() > 1e-6).flatten().tolist()
    assert nz == [768, 778]
    assert stems[0, 4, 768].item() == pytest.approx(1.4, abs=1e-5)
    assert stems[0, :4].abs().max().item() < 1e-6


def test_weights_round_trip(tmp_path, model):
    path = save_weights(model, tmp_path / "m.pt", source={"note": "test"})
    again, meta = load_weights(path)
    assert meta["format"] == "idm-host-weights" and meta["source"] == {"note": "test"}
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    with pytest.raises(Exception):
        save_weights(model, path)  # exists, no overwrite


def test_load_weights_errors(tmp_path, reference):
    with pytest.raises(ModelError, match="not found"):
        load_weights(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="corrupt"):
        load_weights(bad)
    with pytest.raises(ModelError, match="models import"):
        load_weights(reference / "idm-44-train-kits.ckpt")


def test_import_official_checks_sha256(tmp_path, reference, monkeypatch):
    from idm_host.errors import ChecksumError
    from idm_host.installs import import_official
    from idm_host.models import list_models, model_path

    monkeypatch.setenv("IDM_HOST_MODELS", str(tmp_path / "cache"))
    fake = tmp_path / "fake.ckpt"
    data = bytearray((reference / "idm-44-train-kits.ckpt").read_bytes())
    data[-1] ^= 0xFF
    fake.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        import_official(fake, precompute=False)
    assert not (tmp_path / "cache" / "idm-44-train-kits.pt").exists()
    with pytest.raises(ModelError, match="models import"):
        model_path("idm-44-train-kits")
    info = import_official(reference / "idm-44-train-kits.ckpt", precompute=False)
    assert info.installed and info.path.exists()
    assert model_path("idm-44-train-kits") == info.path
    from idm_host.models import default_weights

    # "default" is the weights shipped in the package; the official ones only stand in without them
    assert model_path("default") == (default_weights() or info.path)
    names = {m.name: m for m in list_models()}
    assert names["idm-44-train-kits"].installed
    # a file changed after installation is refused
    from idm_host.models import verify_sha256

    data = bytearray(info.path.read_bytes())
    data[-10] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        verify_sha256(info.path)
