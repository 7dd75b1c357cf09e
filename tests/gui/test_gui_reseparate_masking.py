"""The window's "Re-separate Masking" choice reaches the engine: the stems equal the engine's own
separation of the edited hits in the chosen mode (real MainWindow offscreen, real engine)."""
from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtWidgets import QApplication

from gui.document import RESEPARATE_MASKING, SeparatorCache

ANALYSIS_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, separator):
    from gui.main_window import MainWindow

    w = MainWindow(separators=SeparatorCache(lambda name: separator), use_audio_device=False)
    w.confirm_close = False
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    w.deleteLater()
    qtbot.wait(10)
    QApplication.processEvents()


def test_menu_offers_the_modes_and_reseparate_uses_the_choice(qtbot, window, separator, demo_loop):
    w = window
    modes = [a.data() for a in w.masking_group.actions()]
    assert modes == [m for m, _ in RESEPARATE_MASKING] == ["auto", "adaptive", "power", "wiener"]
    assert w.reseparate_masking == "auto" and w.masking_group.checkedAction().data() == "auto"
    with qtbot.waitSignal(w.runner.done, timeout=ANALYSIS_TIMEOUT_MS):
        assert w.open_path(demo_loop)
    s = w.model.session
    w.model.delete_hits([h.id for h in s.hits["SD"]][:2])
    for mode in ("power", "adaptive"):
        action = next(a for a in w.masking_group.actions() if a.data() == mode)
        action.trigger()
        assert w.reseparate_masking == mode and action.isChecked()
        with qtbot.waitSignal(w.model.stems_changed, timeout=ANALYSIS_TIMEOUT_MS):
            assert w.reseparate()
        want = separator.separate(w.model.mixture, s.transcription(), kit=s.kit_arrays(), masking=mode)
        np.testing.assert_allclose(s.stems.audio, want.audio, atol=1e-6)
