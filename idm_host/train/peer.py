"""Side-by-side evaluation against a published transcriber (ADTOF) that lives outside the project.

ADTOF (Zehren et al.; CC BY-NC-SA, evaluation only) is never imported, copied or shipped: its own
runner script is started with a Python of its own (a separate virtual environment holding torch,
librosa and pretty_midi), on audio files this module writes, and its JSON answers are read back.
``IDM_HOST_PEERS`` (default ``../shared/peers`` beside the checkout) says where it lies and
``IDM_HOST_PEER_PYTHON`` which Python runs it.

ADTOF has five classes (KD, SD, HH, TT, CY with rides in CY) and no velocities; its hits are
scored on the 5 groups only.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, save_audio
from ..errors import IdmError

PEER_GROUPS = ("KD", "SD", "HH", "TT", "CY")


def peers_dir() -> Path:
    env = os.environ.get("IDM_HOST_PEERS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "peers"


def peer_python() -> Path:
    """The Python that runs the peer (``IDM_HOST_PEER_PYTHON``, else ``.peer-venv`` in the checkout)."""
    env = os.environ.get("IDM_HOST_PEER_PYTHON")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".peer-venv" / "bin" / "python"


def peer_available() -> str | None:
    """``None`` when ADTOF can run here, else why not (one line)."""
    script = peers_dir() / "run_adtof.py"
    if not script.is_file():
        return f"ADTOF is not at {script} (set IDM_HOST_PEERS)"
    py = peer_python()
    if not py.is_file():
        return f"no Python for the peer at {py} (make peer-venv, or set IDM_HOST_PEER_PYTHON)"
    return None


def run_adtof(clips: Sequence[np.ndarray], *, sample_rate: int = MODEL_SAMPLE_RATE, timeout_s: float = 3600.0
              ) -> tuple[list[dict[str, list[float]]], dict[str, float]]:
    """ADTOF's onset times per group for each mono clip, and ``{"audio_s", "compute_s"}``.

    Raises:
        IdmError: the peer is not installed here, fails, or answers something unreadable.
    """
    why = peer_available()
    if why:
        raise IdmError(why)
    with tempfile.TemporaryDirectory(prefix="idm-peer-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for i, x in enumerate(clips):
            save_audio(src / f"clip{i:05d}.wav", np.asarray(x, dtype=np.float32)[None, :], sample_rate,
                       bit_depth=32)
        env = {**os.environ, "PYTHONPATH": str(peers_dir() / "adtof-pytorch" / "src")}
        proc = subprocess.run([str(peer_python()), str(peers_dir() / "run_adtof.py"), str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
        if proc.returncode != 0:
            raise IdmError(f"ADTOF failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        results = []
        for i in range(len(clips)):
            f = out / f"clip{i:05d}.json"
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError) as exc:
                raise IdmError(f"ADTOF gave no readable answer for clip {i} ({exc})") from exc
            results.append({g: [float(t) for t in data.get(g, [])] for g in PEER_GROUPS})
        timing = {"audio_s": 0.0, "compute_s": 0.0}
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        if last and "s of compute" in last[0]:
            parts = last[0].replace(",", "").split()
            try:
                timing = {"audio_s": float(parts[2]), "compute_s": float(parts[6])}
            except (IndexError, ValueError):
                pass
        return results, timing


def as_group_hits(times: Mapping[str, Sequence[float]]) -> dict[str, list[tuple[float, float]]]:
    """Peer onset times as ``{group: [(time_s, velocity)]}`` (velocity NaN: the peer gives none)."""
    return {g: [(float(t), float("nan")) for t in sorted(times.get(g, ()))] for g in PEER_GROUPS}
