"""Hits that come back from the server play as MIDI on their exact timeline frame."""
from __future__ import annotations

import numpy as np
import pytest

from pluginkit import (clicks, drum_map_index, get_states, note_ons, open_plugin, run_pass, set_param, set_states,
                       status, stop_transport, wait_status)

RATE = 48000
KICKS = (1000, 20000, 47999, 48511, 90001)
SNARES = (30001, 60000)
START = 1_234_567  # the transport starts here: hits are keyed to the host's timeline


def expected_ons(start: int = START) -> list[tuple[int, int, int]]:
    # velocities: 0.9 -> round(127 * 0.9) = 114, 0.8 -> 102 (idm_host.midi.to_midi_velocity)
    ons = [(start + f, 36, 114) for f in KICKS] + [(start + f, 38, 102) for f in SNARES]
    return sorted(ons)


@pytest.mark.parametrize("host", ["minihost-vst3", "minihost-lv2"])
def test_hits_come_back_on_the_exact_frame(server, host):
    x = clicks(RATE, 2.0, KICKS, SNARES)
    p = open_plugin(host, RATE)
    try:
        set_states(p, port=str(server.port))
        _, first = run_pass(p, x, RATE, start=START, blocks=(511, 7, 300, 512, 1))
        assert not note_ons(first), "no hits before the analysis"
        stop_transport(p, RATE, START + x.shape[1])
        st = wait_status(p, "takes", 1)
        assert st["hits"] == len(KICKS) + len(SNARES), st
        # the next pass, with other block sizes: every note on its frame
        y, events = run_pass(p, x, RATE, start=START, blocks=(128, 509, 3, 512))
        assert np.array_equal(y, x)
        assert note_ons(events) == expected_ons()
        assert all(st == 0x99 or st == 0x89 for _, st, _, _ in events), "channel 10"
        # each note ends 50 ms later, or where the same note sounds again sooner
        offs = sorted((f, d1) for f, st, d1, _ in events if st == 0x89)
        want_offs = []
        for frames, note in ((KICKS, 36), (SNARES, 38)):
            for k, f in enumerate(frames):
                nxt = frames[k + 1] if k + 1 < len(frames) else 10**12
                want_offs.append((START + min(f + round(0.05 * RATE), nxt), note))
        assert offs == sorted(want_offs)
        # a pass that starts in the middle of the take plays only what is ahead of it
        mid = 40000
        _, events = run_pass(p, np.ascontiguousarray(x[:, mid:]), RATE, start=START + mid, blocks=(97,))
        assert note_ons(events) == [e for e in expected_ons() if e[0] >= START + mid]
        # play hits off: silence; transport stopped: silence
        set_param(p, "play_hits", 0)
        _, events = run_pass(p, x, RATE, start=START)
        assert not note_ons(events)
        set_param(p, "play_hits", 1)
        _, events = run_pass(p, x, RATE, start=START, playing=False)
        assert not note_ons(events)
    finally:
        p.close()


@pytest.mark.parametrize("map_name,note", [("gm", 42), ("addictive-drums-2", 51), ("steven-slate-drums-5", 67)])
def test_drum_map_chooses_the_notes(bundles, map_name, note):
    """A saved analysis played through a chosen drum map (the maps of presets/drum_maps)."""
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, analysis="idm-bridge-analysis 1\n700 HH_CHH 64\n900 KD 127\n")
        set_param(p, "drum_map", drum_map_index(map_name))
        deadline_ok = False
        for _ in range(100):  # the sender thread rebuilds the note table after a map change
            _, events = run_pass(p, np.zeros((2, 1024), np.float32), RATE, start=0, blocks=(512,))
            if note_ons(events) == [(700, note, 64), (900, 36, 127)]:
                deadline_ok = True
                break
            import time

            time.sleep(0.02)
        assert deadline_ok, note_ons(events)
        assert get_states(p)["drum_map"] == map_name
    finally:
        p.close()


def test_a_bad_saved_analysis_is_ignored_and_said(bundles):
    p = open_plugin("minihost-vst3", RATE)
    try:
        set_states(p, analysis="idm-bridge-analysis 1\n700 HH_CHH 64\n")
        set_states(p, analysis="not an analysis")
        assert any("could not be read" in line for line in status(p)["log"])
        assert status(p)["hits"] == 1  # the previous analysis is kept
    finally:
        p.close()
