"""Audio through IdmBridge arrives at a real idm-host server in another process, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from pluginkit import HOSTS, ROOT, open_plugin, run_pass, set_param, set_states, status, stop_transport, wait_status


@pytest.fixture(scope="module")
def loop_wav(tmp_path_factory):
    """The bundled loop written as a 32-bit float WAV and read back: (samples, rate)."""
    from pedalboard.io import AudioFile

    with AudioFile(str(ROOT / "examples" / "drum-loop.flac")) as f:
        x, rate = f.read(f.frames), int(f.samplerate)
    path = tmp_path_factory.mktemp("wav") / "loop.wav"
    with AudioFile(str(path), "w", rate, x.shape[0], bit_depth=32) as f:
        f.write(x)
    with AudioFile(str(path)) as f:
        y = f.read(f.frames)
    assert np.array_equal(x, y)
    return np.ascontiguousarray(y, dtype=np.float32), rate


@pytest.mark.parametrize("pace", ["offline", "realtime"])
@pytest.mark.parametrize("host", HOSTS)
def test_every_frame_arrives_in_order(server, loop_wav, host, pace):
    x, rate = loop_wav
    if pace == "realtime":
        x = np.ascontiguousarray(x[:, : 2 * rate])  # 2 s at the audio rate
    p = open_plugin(host, rate)
    try:
        set_states(p, port=str(server.port))
        if host.startswith("pedalboard"):
            set_param(p, "capture", "Always")  # pedalboard has no transport: capture armed
        # odd block sizes, a transport that starts far into the timeline
        y, _ = run_pass(p, x, rate, start=10 * rate + 13, blocks=(512, 333, 7, 480), realtime=pace == "realtime")
        stop_transport(p, rate)
        assert np.array_equal(y, x), "the audio must pass through unchanged"
        st = wait_status(p, "takes", 1)
        received = server.received(count=1)
        assert len(received) == 1, (len(received), st)
        assert received[0].dtype == np.float32 and np.array_equal(received[0], x)
        assert st["dropped_frames"] == 0 and st["frames_sent"] == x.shape[1], st
        if not host.startswith("pedalboard"):
            assert any(f"from frame {10 * rate + 13}" in line for line in st["log"]), st["log"]
    finally:
        p.close() if hasattr(p, "close") else None


def test_capture_off_sends_nothing(server, loop_wav):
    x, rate = loop_wav
    p = open_plugin("minihost-vst3", rate)
    try:
        set_states(p, port=str(server.port))
        set_param(p, "capture", 0)
        y, _ = run_pass(p, x[:, :rate], rate)
        assert np.array_equal(y, x[:, :rate])
        assert status(p)["frames_sent"] == 0
        # and 'While playing' sends nothing while the transport is stopped
        set_param(p, "capture", 1)
        run_pass(p, x[:, :rate], rate, playing=False)
        assert status(p)["frames_sent"] == 0 and not server.received(timeout_s=0.5)
    finally:
        p.close()
