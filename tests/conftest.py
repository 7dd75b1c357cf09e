"""Shared fixtures: the reference folder, signal factories, an isolated model cache, a network guard."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import socket
from pathlib import Path

import numpy as np
import pytest

SR = 44100
REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """../shared/reference, or $IDM_HOST_REFERENCE."""
    env = os.environ.get("IDM_HOST_REFERENCE")
    return Path(env) if env else REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference() -> Path:
    """The official reference files. Fails (never skips) when they are missing: CI has them."""
    ref = reference_dir()
    if not (ref / "idm-44-train-kits.ckpt").exists():
        pytest.fail(
            f"reference folder {ref} is missing idm-44-train-kits.ckpt; "
            "put ../shared beside the checkout or set IDM_HOST_REFERENCE"
        )
    return ref


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """The test session's model cache folder (shared by all tests, so one-shots are cached once)."""
    cache = tmp_path_factory.getbasetemp() / "model-cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(autouse=True)
def _isolated_env(model_cache, tmp_path_factory, monkeypatch):
    """Point the model cache and user settings at temp folders, never at the user's own."""
    monkeypatch.setenv("IDM_HOST_MODELS", str(model_cache))
    monkeypatch.setenv("IDM_HOST_CONFIG", str(tmp_path_factory.getbasetemp() / "config"))


@pytest.fixture(scope="session")
def official_model(reference, model_cache) -> str:
    """The official weights imported (sha256-checked, converted) into the test model cache.

    Returns the model name to pass to ``Separator``; ``"default"`` resolves to it too while the
    package ships no weights of its own.
    """
    from idm_host.installs import import_official
    from idm_host.models import OFFICIAL_NAME

    old = os.environ.get("IDM_HOST_MODELS")
    os.environ["IDM_HOST_MODELS"] = str(model_cache)
    try:
        if not (model_cache / f"{OFFICIAL_NAME}.pt").exists():
            # one-shots are synthesised on demand (and cached) by the tests that need them
            import_official(reference / "idm-44-train-kits.ckpt", precompute=False)
    finally:
        if old is None:
            os.environ.pop("IDM_HOST_MODELS", None)
        else:
            os.environ["IDM_HOST_MODELS"] = old
    return OFFICIAL_NAME


@pytest.fixture(scope="session")
def separator(official_model, model_cache):
    """A shared CPU :class:`Separator` on the official weights."""
    old = os.environ.get("IDM_HOST_MODELS")
    os.environ["IDM_HOST_MODELS"] = str(model_cache)
    try:
        from idm_host.engine import Separator

        return Separator(official_model, device="cpu")
    finally:
        if old is not None:
            os.environ["IDM_HOST_MODELS"] = old


@pytest.fixture(scope="session")
def demo_loop(tmp_path_factory) -> Path:
    """A 6 s drum loop rendered by the project's own example generator (WAV, 44.1 kHz, stereo)."""
    from idm_host.demo import make_example_loop

    path = tmp_path_factory.getbasetemp() / "example-loop.wav"
    if not path.exists():
        make_example_loop(path, duration_s=6.0)
    return path


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1", "") or host.startswith("/")
    ):
        raise RuntimeError(f"tests may not reach the network (tried {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _network_guard():
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


# ---------------------------------------------------------------- signal factories
def clicks(times_s, *, length_s: float, sample_rate: int = SR, amplitude: float = 0.9) -> np.ndarray:
    """Single-sample clicks at ``times_s``: float32 ``(frames,)``."""
    x = np.zeros(int(round(length_s * sample_rate)), dtype=np.float32)
    for t in times_s:
        x[int(round(t * sample_rate))] = amplitude
    return x


def noise_burst(length_s: float = 0.3, *, decay_per_s: float = 20.0, seed: int = 0,
                sample_rate: int = SR) -> np.ndarray:
    """Exponentially decaying white noise: float32 ``(frames,)``."""
    n = int(round(length_s * sample_rate))
    rng = np.random.default_rng(seed)
    env = np.exp(-decay_per_s * np.arange(n) / sample_rate)
    return (rng.standard_normal(n) * env * 0.5).astype(np.float32)


def sine(freq_hz: float = 440.0, length_s: float = 1.0, *, sample_rate: int = SR,
         amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(length_s * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def signals():
    """The signal factories, as a namespace."""
    import types

    return types.SimpleNamespace(clicks=clicks, noise_burst=noise_burst, sine=sine, SR=SR)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny IDM with seeded random weights (a narrow, shallow synthesiser making 50 ms one-shots),
    saved in the project's weight format: for engine tests that do not need the official model."""
    import torch

    from idm_host.model import IDM
    from idm_host.model.checkpoints import save_weights
    from idm_host.model.config import IDMConfig

    path = tmp_path_factory.getbasetemp() / "tiny-model" / "tiny.pt"
    if not path.exists():
        torch.manual_seed(7)
        model = IDM(IDMConfig(synth_channels=4, synth_blocks=2, one_shot_s=0.05, depths=(1, 1, 1, 1)))
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(model, path, source={"kind": "random test model"})
    return path


@pytest.fixture(scope="session")
def tiny_separator(tiny_model_path):
    """A CPU :class:`~idm_host.engine.Separator` on :func:`tiny_model_path`, with short blocks."""
    from idm_host.engine import Separator

    return Separator(str(tiny_model_path), device="cpu", block_s=0.5)
