"""The entry points, in subprocesses: ``python -m gui --help``, ``idm-host gui --help``, and
``python -m gui FILE --screenshot PNG`` (the real event loop, until the file is analysed)."""
from __future__ import annotations

import os
import subprocess
import sys


def _env():
    return dict(os.environ, QT_QPA_PLATFORM="offscreen")


def test_help_of_both_entry_points():
    for cmd in ([sys.executable, "-m", "gui", "--help"], [sys.executable, "-m", "idm_host", "gui", "--help"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
        assert r.returncode == 0, r.stderr
        assert "file" in r.stdout


def test_command_line_file_is_analysed_and_shown(official_model, demo_loop, tmp_path):
    from PyQt6.QtGui import QImage

    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "gui", str(demo_loop), "--model", official_model, "--screenshot",
                        str(shot)], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    img = QImage(str(shot))
    assert img.width() >= 700 and img.height() >= 500
    assert img.pixelColor(5, img.height() // 2).name() != "#000000"


def test_command_line_bad_file_exits_1(tmp_path):
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "gui", str(bad), "--screenshot", str(shot)],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 1 and shot.exists()
