"""The one-shot cache: the shipped default kits are used with no synthesis, entries are checked
(key, shape, checksum, finite) and a bad one is rebuilt, and imported models get theirs precomputed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from idm_host import kit_cache
from idm_host.engine import Separator

U = 2.0 ** -24


def count_synth_calls(sep: Separator) -> list:
    """A list that grows by one each time the separator's synthesiser network runs."""
    calls: list = []
    sep.model.synth.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.fixture(scope="module")
def default_sep():
    return Separator("default", device="cpu")


def test_shipped_one_shots_cover_every_kit_of_the_default_model(default_sep):
    sep = default_sep
    shape = (sep.config.n_classes, sep.config.one_shot_len)
    for e in kit_cache.kit_embeddings(sep.config.n_kits):
        key = sep._kit_key(e)
        path = kit_cache.SHIPPED_DIR / f"{key}{kit_cache.SUFFIX}"
        assert kit_cache.read_entry(path, key, shape) is not None, (
            f"{path} is missing or stale for the shipped default model; run `python tools/make_assets.py one-shots`")
    # and the package stays small: the entries are compressed float32
    total = sum(p.stat().st_size for p in kit_cache.SHIPPED_DIR.iterdir())
    assert total < 12 * 2**20


def test_fresh_cache_analysis_uses_the_shipped_one_shots(tmp_path, monkeypatch, demo_loop):
    monkeypatch.setenv("IDM_HOST_MODELS", str(tmp_path / "empty-cache"))
    sep = Separator("default", device="cpu")
    calls = count_synth_calls(sep)
    analysis = sep.analyze(demo_loop)
    assert calls == []  # no synthesis at all
    key = sep._kit_key(sep.synth_embedding(analysis.kit_embedding))
    shipped = kit_cache.read_entry(kit_cache.SHIPPED_DIR / f"{key}.npz", key, analysis.kit.one_shots.shape)
    np.testing.assert_array_equal(analysis.kit.one_shots, shipped)
    assert not (tmp_path / "empty-cache" / "one-shots").exists()  # nothing needed writing


@pytest.mark.slow
def test_shipped_one_shots_are_what_the_synthesiser_makes(default_sep):
    """The shipped data is the model's output: re-synthesise one kit, compare within float32 error
    (512 roundings at the one-shots' scale, as the parity tests budget it)."""
    sep = default_sep
    e = next(iter(kit_cache.kit_embeddings(sep.config.n_kits)))
    shipped = sep.one_shots(e)
    fresh = sep.synthesize(e)
    assert np.max(np.abs(fresh - shipped)) <= 512 * U * np.abs(shipped).max()


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A small random IDM (short one-shots, a narrow synthesiser) installed in a fresh cache."""
    from idm_host.model import IDM
    from idm_host.model.config import IDMConfig
    from idm_host.models import install_weights

    monkeypatch.setenv("IDM_HOST_MODELS", str(tmp_path / "cache"))
    torch.manual_seed(3)
    model = IDM(IDMConfig(synth_channels=4, synth_blocks=2, one_shot_s=0.05))
    install_weights(model, "tiny", description="test", source={})
    return "tiny"


def _entry(sep: Separator, e: np.ndarray):
    key = sep._kit_key(sep.synth_embedding(e))
    return key, sep._store.cache_folder / f"{key}{kit_cache.SUFFIX}"


def test_a_corrupt_or_stale_cache_entry_is_never_used(tiny_model):
    e0, e1 = list(kit_cache.kit_embeddings(6))[:2]
    sep = Separator(tiny_model, device="cpu")
    good = sep.one_shots(e0)
    key0, path0 = _entry(sep, e0)
    key1, path1 = _entry(sep, e1)
    assert path0.is_file() and np.isfinite(good).all()
    sep.one_shots(e1)
    other = path1.read_bytes()

    bad_entries = {
        "NaN": kit_cache.encode_entry(key0, np.full_like(good, np.nan)),  # checksum fine, not finite
        "another kit's entry": other,
        "wrong shape": kit_cache.encode_entry(key0, good[:, :-1]),
        "truncated": path0.read_bytes()[:100],
    }
    for why, data in bad_entries.items():
        path0.write_bytes(data)
        fresh = Separator(tiny_model, device="cpu")
        calls = count_synth_calls(fresh)
        shots = fresh.one_shots(e0)
        assert calls == [1], why  # rebuilt by the synthesiser
        np.testing.assert_array_equal(shots, good, err_msg=why)
        assert kit_cache.read_entry(path0, key0, good.shape) is not None, why  # and repaired on disk
    # a tampered sample with the old checksum is refused too
    with np.load(path0) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["one_shots"] = arrays["one_shots"].copy()
    arrays["one_shots"][0, 0] += 0.5
    np.savez(path0, **arrays)
    assert kit_cache.read_entry(path0, key0, good.shape) is None


def test_the_key_follows_the_synthesiser_not_the_rest_of_the_model(tiny_model):
    sep = Separator(tiny_model, device="cpu")
    e = next(iter(kit_cache.kit_embeddings(6)))
    key = sep._kit_key(e)
    with torch.no_grad():
        sep.model.backbone.stem.weight.add_(1.0)  # an encoder change keeps the one-shots
    sep._synth_digest = None
    assert sep._kit_key(e) == key
    with torch.no_grad():
        sep.model.synth.out.bias.add_(1e-3)  # a synthesiser change invalidates them
    sep._synth_digest = None
    assert sep._kit_key(e) != key
    other_seed = Separator(tiny_model, device="cpu", seed=1)
    assert other_seed._kit_key(e) != Separator(tiny_model, device="cpu")._kit_key(e)


def test_precompute_fills_the_cache_for_every_kit(tiny_model):
    from idm_host.installs import precompute_one_shots

    paths = precompute_one_shots(tiny_model)
    assert len(paths) == 6 and all(p.is_file() for p in paths)
    sep = Separator(tiny_model, device="cpu")
    calls = count_synth_calls(sep)
    for e in kit_cache.kit_embeddings(6):
        sep.one_shots(e)
    assert calls == []
    # snapped embeddings use the same entries
    near = np.full(6, 0.001, np.float32)
    near[2] = 0.995
    sep2 = Separator(tiny_model, device="cpu")
    calls2 = count_synth_calls(sep2)
    sep2.one_shots(near)
    assert calls2 == []


@pytest.mark.slow
def test_models_import_precomputes_every_kit(reference, tmp_path, monkeypatch):
    """`idm-host models import` leaves the official model's six kits cached: a first analysis with
    it runs no synthesiser."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "fresh"
    env = dict(os.environ, IDM_HOST_MODELS=str(cache))
    r = subprocess.run([sys.executable, "-m", "idm_host", "models", "import", str(reference / "idm-44-train-kits.ckpt")],
                       env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    assert len(list((cache / "one-shots").glob(f"*{kit_cache.SUFFIX}"))) == 6
    monkeypatch.setenv("IDM_HOST_MODELS", str(cache))
    sep = Separator("idm-44-train-kits", device="cpu")
    calls = count_synth_calls(sep)
    for e in kit_cache.kit_embeddings(sep.config.n_kits):
        sep.one_shots(e)
    assert calls == []
