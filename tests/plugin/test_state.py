"""The host saves and restores the plug-in: same hits, same settings, no server needed."""
from __future__ import annotations

import pytest

from pluginkit import clicks, drum_map_index, get_states, note_ons, open_plugin, run_pass, set_param, set_states, \
    stop_transport, wait_status

RATE = 44100


def params(p) -> dict[str, float]:
    return {p.get_param_info(i)["name"]: round(p.get_param(i), 4) for i in range(3)}


@pytest.mark.parametrize("host", ["minihost-vst3", "minihost-lv2"])
def test_save_and_restore(server, host):
    x = clicks(RATE, 1.5, kicks=(500, 30000), snares=(12345,))
    p = open_plugin(host, RATE)
    try:
        set_states(p, port=str(server.port), host="localhost")
        set_param(p, "drum_map", drum_map_index("ezdrummer-3"))
        run_pass(p, x, RATE, start=99, blocks=(400,))
        stop_transport(p, RATE)
        assert wait_status(p, "takes", 1)["hits"] == 3
        set_param(p, "capture", 2)
        set_param(p, "play_hits", 0)
        stop_transport(p, RATE)  # a block: the host hands parameter changes over in process()
        blob = p.get_state()
        before = get_states(p)
        before_params = params(p)
        set_param(p, "play_hits", 1)
        set_param(p, "capture", 0)
        _, events = run_pass(p, x, RATE, start=99, blocks=(400,))
        played = note_ons(events)
        assert played == [(599, 36, 114), (12444, 38, 102), (30099, 36, 114)]
    finally:
        p.close()
    server.close()  # the restored plug-in needs no server for its hits
    q = open_plugin(host, RATE)
    try:
        q.set_state(blob)
        after = get_states(q)
        for key in ("host", "port", "drum_map", "analysis"):
            assert after[key] == before[key], key
        assert after["host"] == "localhost" and after["drum_map"] == "ezdrummer-3"
        assert params(q) == before_params
        set_param(q, "capture", 0)
        set_param(q, "play_hits", 1)
        _, events = run_pass(q, x, RATE, start=99, blocks=(333,))
        assert note_ons(events) == played
    finally:
        q.close()
