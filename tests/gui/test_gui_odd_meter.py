"""A 3/4 session in the real (offscreen) onset grid: bar lines every 3 beats from the downbeat,
quantising on the tempo model's grid, and a 3/4 MIDI export whose bars line up with the song."""
from __future__ import annotations

import mido
import numpy as np
import pretty_midi

from gui import theme
from idm_host.session import SetTempo
from idm_host.tempo import Tempo

BPM, DOWNBEAT = 120.0, 0.25  # a beat every 0.5 s, a 3/4 bar every 1.5 s


def _column_has(img, x: float, y: int, color) -> bool:
    """Whether the colour is drawn at ``x`` (the pixel column, or one either side) in row ``y``."""
    want = color.rgb()
    return any(img.pixelColor(int(round(x)) + dx, y).rgb() == want for dx in (-1, 0, 1))


def test_a_three_four_session_draws_three_four_bars(qtbot, grid, session_model):
    session_model.apply(SetTempo(bpm=BPM, downbeat_s=DOWNBEAT, beats_per_bar=3))
    assert session_model.tempo_model == Tempo(BPM, DOWNBEAT, 3, False)
    grid.set_division("1/4")
    grid.update()
    img = grid.grab().toImage()
    lane = grid.lane_rect(grid.classes.index("TT_LMT"))  # an empty lane: only grid lines there
    y = int(lane.center().y())
    bars = [DOWNBEAT + k * 1.5 for k in range(3)]  # 0.25, 1.75, 3.25
    beats_only = [DOWNBEAT + k * 0.5 for k in range(8) if k % 3]  # incl. 2.25: a bar line in 4/4
    assert 2.25 in beats_only
    for t in bars:
        assert _column_has(img, grid.x_of(t), y, theme.GRID_BAR), f"no bar line at {t} s"
    for t in beats_only:
        x = grid.x_of(t)
        assert _column_has(img, x, y, theme.GRID_BEAT) and not _column_has(img, x, y, theme.GRID_BAR), t
    # the hover readout counts 3 beats to the bar
    from gui.views import grid_math

    assert grid_math.bar_beat(2.25, session_model.tempo_model) == (2, 2.0)


def test_a_three_four_session_quantises_and_exports_three_four(qtbot, grid, session_model, tmp_path):
    from gui import document

    session_model.apply(SetTempo(bpm=BPM, downbeat_s=DOWNBEAT, beats_per_bar=3))
    s = session_model.session
    # quantising: hits land on the tempo model's grid, from the downbeat
    grid.division = "1/8"
    ids = [h.id for h in s.hits["SD"]]
    assert session_model.quantise(ids, "1/8", 1.0)
    times = np.array([h.time_s for h in session_model.session.hits["SD"]])
    steps = (times - DOWNBEAT) / 0.25
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    # the export and the drag-out MIDI: 3/4 at the session's tempo, bars on the session's bar lines
    opts = document.ExportOptions(tmp_path, name="waltz", stems=False, midi=True)
    (mid_path,) = document.export(session_model.session, opts)
    drag = document.write_temp_midi(session_model.session, tmp_path / "drag")
    for path in (mid_path, drag):
        mid = mido.MidiFile(path)
        sigs = [m for m in mid.tracks[0] if m.type == "time_signature"]
        assert (sigs[-1].numerator, sigs[-1].denominator) == (3, 4)
        pm = pretty_midi.PrettyMIDI(str(path))  # an independent reader's bar lines
        _, tempi = pm.get_tempo_changes()
        assert tempi[-1] == BPM
        downbeats = pm.get_downbeats()
        np.testing.assert_allclose(downbeats[1:4], [DOWNBEAT + k * 1.5 for k in range(3)], atol=1e-5)
