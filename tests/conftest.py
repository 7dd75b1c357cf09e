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


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Point the model cache and user settings at temp folders; keep the official model reachable."""
    cache = tmp_path_factory.getbasetemp() / "model-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("IDM_HOST_MODELS", str(cache))
    monkeypatch.setenv("IDM_HOST_CONFIG", str(tmp_path_factory.getbasetemp() / "config"))


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
