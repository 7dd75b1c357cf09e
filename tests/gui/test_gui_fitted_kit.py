"""The kit that sounds like the record in the GUI: the kit panel shows a slot fitted to the record and
switches it to the synthetic one-shot and back (undoable). Re-separating with the adaptive masks
(fitting the model's kit slots, a user sample left alone) is tested in test_gui_main_window.py."""
from __future__ import annotations

import dataclasses

import numpy as np
from PyQt6.QtCore import Qt

from idm_host.types import Kit


def test_kit_panel_shows_fitted_slots_and_switches(qtbot, loop_analysis):
    from gui.session_model import SessionModel
    from gui.views.kit_panel import KitPanel
    from idm_host.session import Session

    synthetic = loop_analysis.kit
    fitted = Kit(synthetic.classes, (synthetic.one_shots * np.float32(0.5)).astype(np.float32),
                 synthetic.sample_rate, synthetic.track_gains, synthetic.velocity_scale)
    a = dataclasses.replace(loop_analysis, kit=fitted, extra={"synthetic_kit": synthetic})
    model = SessionModel()
    model.set_session(Session.from_analysis(a), a.audio)
    try:
        panel = KitPanel(model)
        qtbot.addWidget(panel)
        panel.show()
        s = model.session
        tile = panel.tiles["SD"]
        assert tile.origin_label.text() == "fitted to the record"
        assert tile.fit_button.isVisible() and not tile.fit_button.isChecked()
        assert not tile.revert_button.isEnabled()
        np.testing.assert_array_equal(tile.wave.samples, fitted.one_shot("SD"))
        qtbot.mouseClick(tile.fit_button, Qt.MouseButton.LeftButton)
        assert s.kit["SD"].origin == "extracted" and tile.fit_button.isChecked()
        assert "synthetic" in tile.origin_label.text()
        np.testing.assert_array_equal(tile.wave.samples, synthetic.one_shot("SD"))
        assert "synthetic" in model.undo_action.text()
        model.undo()
        assert s.kit["SD"].origin == "fitted" and tile.origin_label.text() == "fitted to the record"
        assert not tile.fit_button.isChecked() and not model.modified
        model.redo()
        qtbot.mouseClick(tile.fit_button, Qt.MouseButton.LeftButton)  # and back to the fitted one
        assert s.kit["SD"].origin == "fitted" and not tile.fit_button.isChecked()
    finally:
        model.close()


def test_plain_slots_have_no_switch(qtbot, session_model):
    from gui.views.kit_panel import KitPanel

    panel = KitPanel(session_model)
    qtbot.addWidget(panel)
    panel.show()
    tile = panel.tiles["KD"]
    assert tile.origin_label.text() == "extracted by the model" and not tile.fit_button.isVisible()


def test_export_writes_the_fitted_and_the_synthetic_kit(tmp_path, loop_analysis):
    from gui.document import ExportOptions, export, planned_files
    from idm_host.audio import load_audio
    from idm_host.session import ReplaceSample, Session, UseFitted

    synthetic = loop_analysis.kit
    fitted = Kit(synthetic.classes, (synthetic.one_shots * np.float32(0.5)).astype(np.float32),
                 synthetic.sample_rate, synthetic.track_gains, synthetic.velocity_scale)
    s = Session.from_analysis(dataclasses.replace(loop_analysis, kit=fitted, extra={"synthetic_kit": synthetic}))
    s.apply(UseFitted("HH_CHH", fitted=False))
    user = np.hanning(300).astype(np.float32)
    s.apply(ReplaceSample("KD", samples=user, sample_rate=s.sample_rate))
    opts = ExportOptions(folder=tmp_path, name="x", stems=False, audio_format="wav", bit_depth=32, mix=False,
                         midi=False, kit=True)
    written = export(s, opts)
    assert written == planned_files(s, opts)

    def read(rel):
        return load_audio(tmp_path / rel, sample_rate=None).samples[0]

    np.testing.assert_array_equal(read("kit/SD.wav"), fitted.one_shot("SD"))
    np.testing.assert_array_equal(read("kit/synthetic/SD.wav"), synthetic.one_shot("SD"))
    np.testing.assert_array_equal(read("kit/HH_CHH.wav"), synthetic.one_shot("HH_CHH"))  # the one in use
    np.testing.assert_array_equal(read("kit/KD.wav"), user)
    assert sorted(p.name for p in (tmp_path / "kit" / "synthetic").iterdir()) == sorted(
        f"{c}.wav" for c in s.classes)
