"""Kit panel, mixer, effect-chain editor, export dialog and drag-out data, on a real Session."""
from __future__ import annotations

import mido
import numpy as np
import pytest
from PyQt6.QtCore import Qt

from idm_host.audio import load_audio, save_audio


def test_kit_tile_edits_and_revert(qtbot, session_model, tmp_path):
    from gui.views.kit_panel import KitPanel

    panel = KitPanel(session_model)
    qtbot.addWidget(panel)
    s = session_model.session
    assert set(panel.tiles) == set(s.classes)
    tile = panel.tiles["KD"]
    tile.tune.setValue(-3.0)
    tile.tune.setValue(-5.0)
    assert s.kit["KD"].tune_semitones == -5.0
    session_model.undo()  # spin steps merge into one undo step
    assert s.kit["KD"].tune_semitones == 0.0 and tile.tune.value() == 0.0
    tile.curve.setCurrentText("exponential")
    assert s.kit["KD"].velocity_curve == "exponential" and tile.amount.isEnabled()
    path = save_audio(tmp_path / "kick.flac", np.hanning(2000).astype(np.float32), 44100)
    assert tile.replace_from(str(path))
    assert s.kit["KD"].origin == "file" and tile.revert_button.isEnabled()
    qtbot.mouseClick(tile.revert_button, Qt.MouseButton.LeftButton)
    assert s.kit["KD"].origin == "extracted" and "extracted" in tile.origin_label.text()
    errors = []
    session_model.error_occurred.connect(errors.append)
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello")
    assert not tile.replace_from(str(bad))
    assert errors and "not-audio.wav" in errors[0] and s.kit["KD"].origin == "extracted"
    with qtbot.waitSignal(tile.audition_requested) as sig:
        qtbot.mouseClick(tile.play_button, Qt.MouseButton.LeftButton)
    assert sig.args == ["KD"]


def test_mixer_strip_controls(qtbot, session_model):
    from gui.views.mixer import NO_FX, MixerPanel

    panel = MixerPanel(session_model)
    qtbot.addWidget(panel)
    s = session_model.session
    assert list(panel.strips)[-2:] == ["residual", "master"]
    strip = panel.strips["SD"]
    qtbot.mouseClick(strip.mute, Qt.MouseButton.LeftButton)
    assert s.mixer["SD"].mute
    qtbot.mouseClick(strip.solo, Qt.MouseButton.LeftButton)
    assert s.mixer["SD"].solo
    for v in (-10, -35, -60):
        strip.fader.setValue(v)
    assert s.mixer["SD"].gain_db == pytest.approx(-6.0) and strip.db_label.text() == "-6.0 dB"
    session_model.undo()  # the fader's moves are one step
    assert s.mixer["SD"].gain_db == 0.0 and strip.fader.value() == 0
    i = strip.fx_combo.findText("tight-kick")
    assert i > 0
    strip.fx_combo.setCurrentIndex(i)
    strip.fx_combo.activated.emit(i)
    assert s.mixer["SD"].effects == "tight-kick"
    strip.fx_combo.activated.emit(strip.fx_combo.findText(NO_FX))
    assert s.mixer["SD"].effects is None


def test_effect_chain_dialog_builds_a_valid_chain(qtbot, session_model):
    from gui.views.mixer import CUSTOM_FX, EffectChainDialog, MixerPanel
    from idm_host.fx import resolve_chain
    from idm_host.render import render

    d = EffectChainDialog("Kick", resolve_chain("tight-kick"))
    qtbot.addWidget(d)
    n = len(d.chain()["effects"])
    d.add_effect("Reverb")
    d.set_param(n, "room_size", 0.8)
    d.list.setCurrentRow(0)
    d._on_remove_clicked()
    chain = d.chain()
    assert len(chain["effects"]) == n and chain["effects"][-1]["type"] == "Reverb"
    resolve_chain(chain)  # valid for the fx module
    panel = MixerPanel(session_model)
    qtbot.addWidget(panel)
    assert session_model.set_effects("KD", chain)
    assert panel.strips["KD"].fx_combo.currentText() == CUSTOM_FX
    out = render(session_model.session, classes=["KD"], end_s=1.0)
    assert np.isfinite(out.mix).all() and np.abs(out.mix).max() > 0
    bad = {"schema_version": 1, "effects": [{"type": "Reverb", "params": {"room_size": 7.0}}]}
    errors = []
    session_model.error_occurred.connect(errors.append)
    assert not session_model.set_effects("KD", bad)
    assert errors and "room_size" in errors[0]


def test_export_dialog_options(qtbot, tmp_path):
    from gui.dialogs.export import ExportDialog

    d = ExportDialog(tmp_path, "take1")
    qtbot.addWidget(d)
    d.by_group.setChecked(True)
    d.format.setCurrentText("flac")
    d.depth.setCurrentIndex(1)
    d.kit.setChecked(True)
    d.mix.setChecked(True)
    i = d.drum_map.findData("gm")
    assert i >= 0
    o = d.options()
    assert (o.folder, o.name, o.grouping, o.audio_format, o.bit_depth, o.kit, o.mix, o.midi, o.drum_map) == (
        tmp_path, "take1", "groups", "flac", 32, True, True, True, "gm")


def test_export_writes_mix_and_refuses_to_overwrite(session_model, tmp_path):
    from gui.document import ExportOptions, export, planned_files
    from idm_host.errors import IdmError

    s = session_model.session
    opts = ExportOptions(folder=tmp_path, name="x", stems=True, grouping="classes", audio_format="wav",
                         bit_depth=32, mix=True, midi=False)
    written = export(s, opts)
    assert written == planned_files(s, opts)
    mix = load_audio(tmp_path / "x-mix.wav", sample_rate=None)
    assert mix.n_frames == int(round(s.duration_s * s.sample_rate)) and np.abs(mix.samples).max() > 0.1
    kd = load_audio(tmp_path / "x-KD.wav", sample_rate=None).samples
    np.testing.assert_array_equal(kd, s.stems.stem("KD"))  # float WAV is exact
    with pytest.raises(IdmError, match="already exists"):
        export(s, opts)


def test_drag_out_data_are_real_files(qtbot, session_model, tmp_path):
    from gui import document
    from gui.views.onset_grid import OnsetGridView
    from gui.views.time_axis import TimeAxis
    from gui.views.transport import DragOutButton

    s = session_model.session
    button = DragOutButton("MIDI", lambda: document.write_temp_midi(s, tmp_path))
    qtbot.addWidget(button)
    mime = button.drag_mime()
    path = mime.urls()[0].toLocalFile()
    notes = [m for m in mido.MidiFile(path) if m.type == "note_on" and m.velocity > 0]
    assert len(notes) == session_model.n_hits()
    grid = OnsetGridView(session_model, TimeAxis())
    qtbot.addWidget(grid)
    grid.stem_provider = lambda c: document.write_temp_stem(s, c, tmp_path)
    wav = grid.stem_drag_mime("SD").urls()[0].toLocalFile()
    np.testing.assert_allclose(load_audio(wav, sample_rate=None).samples, s.stems.stem("SD"), atol=1e-4)


def test_transport_tempo_edit_is_undoable_and_moves_the_grid(qtbot, session_model):
    from gui.views.transport import TransportBar

    bar = TransportBar(session_model, lambda: None)
    qtbot.addWidget(bar)
    assert bar.bpm.value() == pytest.approx(session_model.tempo[0])
    bar.bpm.setValue(100.0)
    bar.downbeat.setValue(0.25)
    assert session_model.tempo == (100.0, 0.25)
    assert session_model.session.tempo.estimated is False
    session_model.undo()
    session_model.undo()
    assert bar.bpm.value() == pytest.approx(session_model.tempo[0]) and session_model.tempo[1] == 0.0
    errors = []
    session_model.error_occurred.connect(errors.append)
    bar.bpm.setValue(10.0)  # clamped by the spin box to its 20 BPM minimum: valid
    assert session_model.tempo[0] == 20.0 and not errors


def test_waveform_peaks_match_a_brute_force_reference():
    from gui.peaks import Peaks

    rng = np.random.default_rng(3)
    x = rng.standard_normal(44100 * 3 + 123).astype(np.float32)
    peaks = Peaks(x, 44100)
    for start_s, pps, width in ((0.0, 100.0, 300), (1.234, 5000.0, 700), (2.9, 20.0, 50)):
        xs, mn, mx = peaks.columns(start_s, pps, width)
        for col, lo, hi in zip(xs[::17], mn[::17], mx[::17]):
            block = peaks.levels[0][0]
            for b, m, _ in peaks.levels:  # the level columns() picks
                if b <= 44100 / pps:
                    block = b
            a = int(np.floor((start_s + col / pps) * 44100 / block)) * block
            e = max(int(np.floor((start_s + (col + 1) / pps) * 44100 / block)) * block, a + block)
            seg = x[a:min(e, len(x))]
            assert lo == seg.min() and hi == seg.max()


def test_self_drawn_views_fill_their_background_and_draw_on_it(qtbot, session_model):
    """The one-shot view, the waveform and the overview paint through gui.views.painting: the whole
    widget is filled first and the drawing lands on top."""
    from gui import theme
    from gui.theme import HEADER_W
    from gui.views.kit_panel import OneShotView
    from gui.views.time_axis import TimeAxis
    from gui.views.waveform import OverviewBar, WaveformView

    shot = OneShotView()
    qtbot.addWidget(shot)
    shot.resize(200, 46)
    assert shot.grab().toImage().pixelColor(100, 23) == theme.BACKGROUND  # no samples: background only
    shot.set_samples(np.hanning(4410), 44100)
    img = shot.grab().toImage()
    assert img.pixelColor(100, 23) == theme.WAVEFORM and img.pixelColor(2, 2) == theme.BACKGROUND

    axis = TimeAxis()
    axis.set_duration(session_model.session.duration_s)
    for view in (WaveformView(session_model, axis), OverviewBar(session_model, axis)):
        qtbot.addWidget(view)
        view.resize(HEADER_W + 400, view.height())
        img = view.grab().toImage()
        assert img.pixelColor(2, 2) == theme.PANEL, type(view).__name__  # the lane header
        mid = {img.pixelColor(x, view.height() // 2 + 3).rgb() for x in range(HEADER_W + 20, HEADER_W + 380)}
        assert len(mid) > 1, type(view).__name__  # the mixture's columns on the data area
