"""The full loop against a real `idm-host serve` with the shipped model: the bundled loop is
streamed through the plug-in, analysed, and played back on the next pass as the notes of
onsets.json."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from proctools import stop_process

from pluginkit import ROOT, drum_map_index, get_states, note_ons, open_plugin, run_pass, set_param, set_states, \
    stop_transport, wait_status

MAP = "superior-drummer-3"


@pytest.fixture
def serve(tmp_path, bundles):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "idm_host", "serve", "--port", "0", "--tcp-port", "0", "--json",
                             "--no-stems", "--out", str(out)], stdout=subprocess.PIPE, cwd=str(ROOT), text=True)
    try:
        text = ""
        while True:  # --json prints one indented object
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"idm-host serve exited: {text!r}")
            text += line
            if line.rstrip() == "}":
                break
        info = json.loads(text)
        yield info["tcp"][1], out
    finally:
        stop_process(proc, 15)


def test_loop_streamed_analysed_and_played_back(serve):
    from pedalboard.io import AudioFile

    from idm_host.drum_maps import load_drum_map
    from idm_host.midi import to_midi_velocity
    from idm_host.types import Transcription

    port, out = serve
    with AudioFile(str(ROOT / "examples" / "drum-loop.flac")) as f:
        x, rate = np.ascontiguousarray(f.read(f.frames), dtype=np.float32), int(f.samplerate)
    start = 7 * rate + 5
    p = open_plugin("minihost-vst3", rate)
    try:
        set_states(p, port=str(port))
        set_param(p, "drum_map", drum_map_index(MAP))
        y, _ = run_pass(p, x, rate, start=start, blocks=(512, 256))
        stop_transport(p, rate, start + x.shape[1])
        assert np.array_equal(y, x)
        st = wait_status(p, "takes", 1, timeout_s=240)
        assert st["takes"] == 1, st
        deadline = time.monotonic() + 120  # the hits come before the job's files are written
        while not list(out.glob("stream-*/onsets.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        onsets = list(out.glob("stream-*/onsets.json"))
        assert len(onsets) == 1, list(out.iterdir())
        tr = Transcription.from_dict(json.loads(onsets[0].read_text()))
        dmap = load_drum_map(MAP)
        want = sorted((start + int(round(h.time_s * rate)), dmap.note_for(c), to_midi_velocity(h.velocity))
                      for c in tr.classes for h in tr.hits[c])
        assert len(want) > 20 and st["hits"] == len(want)
        _, events = run_pass(p, x, rate, start=start, blocks=(512, 100))
        assert sorted(note_ons(events)) == want
        assert {n for _, n, _ in want} - {36, 38}, "the loop has more than kick and snare"
        saved = get_states(p)["analysis"]
        assert len(saved.splitlines()) == len(want) + 1
    finally:
        p.close()
