"""A real DAW: Ardour 7's headless ardour7-lua (Dummy backend) loads the LV2 on a track, the
session is saved with the plug-in's state, and rolling the transport streams the track to a real
server in another process, keyed to Ardour's timeline."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from pluginkit import LV2, lv2_state

ARDOUR = shutil.which("ardour7-lua")
pytestmark = pytest.mark.skipif(ARDOUR is None, reason="Ardour is not installed (apt-get install ardour; "
                                                        "`make plugin` installs it when run as root)")
RATE = 48000
LOCATE = 3 * RATE

CREATE = """
AudioEngine:set_backend("None (Dummy)", "", "")
local s = create_session("{dir}", "sess", {rate})
assert(s, "cannot create the session")
local tl = s:new_audio_track(2, 2, nil, 1, "Drums", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
local p = ARDOUR.LuaAPI.new_plugin(s, "urn:idm-host:IdmBridge", ARDOUR.PluginType.LV2, "")
assert(not p:isnil(), "IdmBridge LV2 not found")
assert(tl:front():add_processor_by_index(p, 0, nil, true) == 0, "could not add the plug-in")
s:save_state("", false, false, false, false, false)
print("CREATED")
close_session()
"""

ROLL = """
AudioEngine:set_backend("None (Dummy)", "", "")
local s = load_session("{dir}", "sess")
assert(s, "cannot load the session")
s:request_locate({locate}, false, ARDOUR.LocateTransportDisposition.MustStop, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(300000)
s:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(2000000)
print("ROLLING", s:transport_rolling())
s:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)
ARDOUR.LuaAPI.usleep(2500000)
s:save_state("", false, false, false, false, false)
print("SAVED")
close_session()
"""


def ardour(script: str, tmp_path) -> str:
    path = tmp_path / "script.lua"
    path.write_text(script)
    env = dict(os.environ, HOME=str(tmp_path / "home"), LV2_PATH=str(tmp_path / "lv2"))
    r = subprocess.run([ARDOUR, str(path)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout + r.stderr


def test_ardour_rolls_with_the_plugin_streaming(server, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "lv2").mkdir()
    (tmp_path / "lv2" / "IdmBridge.lv2").symlink_to(LV2)  # only our bundle on LV2_PATH
    sess = tmp_path / "sess"
    assert "CREATED" in ardour(CREATE.format(dir=sess, rate=RATE), tmp_path)
    states = sorted(sess.glob("plugins/*/state*/state.ttl"))
    assert len(states) == 1, states
    text = states[0].read_text()
    assert lv2_state(text.encode())["port"] == "9001"  # the plug-in's default, saved by Ardour
    states[0].write_text(text.replace('IdmBridge#port> "9001"', f'IdmBridge#port> "{server.port}"'))
    out = ardour(ROLL.format(dir=sess, locate=LOCATE), tmp_path)
    assert "ROLLING true" in out and "SAVED" in out, out[-2000:]
    received = server.received(count=1, timeout_s=30)
    assert len(received) == 1 and received[0].shape[0] == 2
    assert RATE <= received[0].shape[1] <= 4 * RATE, received[0].shape  # ~2 s rolled
    assert np.isfinite(received[0]).all()
    saved = lv2_state(sorted(sess.glob("plugins/*/state*/state.ttl"))[-1].read_bytes())
    assert saved["port"] == str(server.port)
    status = dict(line.split(" ", 1) for line in saved["status"].splitlines() if not line.startswith("log "))
    assert int(status["frames_sent"]) == received[0].shape[1] and status["dropped_frames"] == "0", saved["status"]
    assert status["takes"] == "1", saved["status"]
    assert f"from frame {LOCATE}" in saved["status"], saved["status"]  # keyed to Ardour's timeline
