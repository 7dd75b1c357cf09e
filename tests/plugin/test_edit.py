"""The edit round trip: "Edit in idm-studio" opens the last take in the real idm-studio (offscreen,
it opens the session and saves a screenshot), hits edited and saved in that session come back to
the plug-in over OSC, and the DAW then plays the edited hits."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from pluginkit import clicks, note_ons, open_plugin, run_pass, set_param, set_states, stop_transport, wait_status

RATE = 48000
START = 480_000


def wait_for(fn, timeout_s: float = 120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    return fn()


def test_edit_in_studio_comes_back(server, tmp_path):
    from idm_host.session import DeleteHits, MoveHits, Session

    shot = tmp_path / "studio.png"
    studio = tmp_path / "studio.sh"
    idm_studio = Path(sys.executable).with_name("idm-studio")
    studio.write_text(f'#!/bin/sh\nQT_QPA_PLATFORM=offscreen exec "{idm_studio}" --screenshot "{shot}" "$1" '
                      f'> "{tmp_path / "studio.log"}" 2>&1\n')
    studio.chmod(0o755)
    x = clicks(RATE, 2.0, kicks=(4800, 48000), snares=(24000,))
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, port=str(server.port), studio=str(studio))
        run_pass(p, x, RATE, start=START, blocks=(512,))
        stop_transport(p, RATE, START + x.shape[1])
        assert wait_status(p, "takes", 1)["hits"] == 3
        set_param(p, "edit", 1)
        stop_transport(p, RATE)  # a block: the host hands the trigger over in process()
        from pluginkit import status

        opened = wait_for(lambda: [line for line in status(p)["log"] if line.startswith("edit: opened")], 30)
        assert opened, status(p)["log"]
        path = Path(opened[0].split("edit: opened ", 1)[1].split(" in ", 1)[0])
        assert path.suffix == ".idmsession" and path.is_dir()
        # the real editor opened that session (it exits after the screenshot)
        assert wait_for(lambda: shot.is_file() and shot.stat().st_size > 0), (tmp_path / "studio.log").read_text()
        # edits saved in the session: what idm-studio's Save does (the Session API)
        session = Session.load(path)
        kd = session.hits["KD"]
        sd = session.hits["SD"]
        session.apply(DeleteHits([sd[0].id]))
        session.apply(MoveHits([kd[1].id], 0.25))
        session.save(path)
        back = wait_for(lambda: [line for line in status(p)["log"] if "as saved in the editor" in line], 30)
        assert back and "2 hits" in back[0], status(p)["log"]
        _, events = run_pass(p, x, RATE, start=START, blocks=(500,))
        assert note_ons(events) == [(START + 4800, 36, 114), (START + 48000 + RATE // 4, 36, 114)]
    finally:
        p.close()
