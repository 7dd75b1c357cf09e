"""The OSC panel in the real window: a client's /idm/open over real loopback UDP opens a session."""
from __future__ import annotations

from pythonosc.udp_client import SimpleUDPClient
from PyQt6.QtWidgets import QApplication

from gui.document import SeparatorCache


def test_osc_open_request_becomes_a_session(qtbot, separator, demo_loop):
    from gui.main_window import MainWindow

    w = MainWindow(separators=SeparatorCache(lambda name: separator), use_audio_device=False)
    w.confirm_close = False
    qtbot.addWidget(w)
    panel = w.osc_panel
    assert panel is not None
    panel.port.setValue(0)  # any free port
    panel.use_tcp.setChecked(False)
    panel.start_button.click()
    assert panel.running and "listening on UDP 127.0.0.1:" in panel.status.text()
    host, port = panel.server.udp_address
    with qtbot.waitSignal(panel.analysis_received, timeout=120_000) as sig:
        SimpleUDPClient(host, port).send_message("/idm/open", str(demo_loop))
    analysis, source = sig.args
    assert source == str(demo_loop)
    qtbot.waitUntil(lambda: w.model.has_session, timeout=5000)
    assert w.model.n_hits() == analysis.transcription.n_hits > 0
    assert any("analysed" in panel.log.item(i).text() for i in range(panel.log.count()))
    panel.start_button.click()
    assert not panel.running and panel.status.text() == "stopped"
    w.close()
    QApplication.processEvents()
