"""Playback through QtMultimedia on a real (virtual) sound device: a private PulseAudio daemon with a
null sink, started for this test. Without any device the player is covered by the window tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from proctools import stop_process

SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from PyQt6.QtWidgets import QApplication
    app = QApplication([])
    from gui.playback import AudioPlayer
    p = AudioPlayer()
    print("available", p.available, p.status_text, flush=True)
    x = (0.2 * np.sin(2 * np.pi * 440 * np.arange(44100 * 3) / 44100)).astype(np.float32)
    p.play(x, 44100, start_s=1.0)

    def wait(seconds, until=lambda: False):
        t0 = time.time()
        while time.time() - t0 < seconds and not until():
            app.processEvents()
            time.sleep(0.01)

    wait(8.0, lambda: p._player.position() > 0)  # a sound server may take a second to start
    a_ms, a_s = p._player.position(), p.position_s()
    wait(0.5)
    print("device_ms", a_ms, p._player.position(), "position_s", a_s, p.position_s(), flush=True)
    p.close()
""")


@pytest.fixture
def pulse_server(tmp_path):
    exe = shutil.which("pulseaudio")
    if exe is None:
        pytest.fail("pulseaudio is not installed; run `make apt-deps` (APT_PACKAGES lists it)")
    run = tmp_path / "pulse"
    run.mkdir()
    sock = run / "native"
    env = dict(os.environ, PULSE_RUNTIME_PATH=str(run), HOME=str(tmp_path))
    proc = subprocess.Popen(
        [exe, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
         "--load=module-null-sink sink_name=nullsink", f"--load=module-native-protocol-unix socket={sock}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_end = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > t_end:
                pytest.fail("the private pulseaudio daemon did not start")
            time.sleep(0.05)
        yield f"unix:{sock}"
    finally:
        stop_process(proc, 10)


def test_plays_from_the_cursor_on_a_real_device(pulse_server, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PULSE_SERVER=pulse_server, HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert lines["available"].startswith("True audio output:"), r.stdout
    a_ms, b_ms, _, a_s, b_s = lines["device_ms"].split()
    assert 0 < int(a_ms) and 300 <= int(b_ms) - int(a_ms) <= 900  # the device clock runs in real time
    assert float(a_s) == pytest.approx(1.0 + int(a_ms) / 1000)  # the playhead counts from the 1.0 s start
    assert float(b_s) > float(a_s)
