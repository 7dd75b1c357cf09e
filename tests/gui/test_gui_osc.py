"""The OSC panel in the real window: a client's /idm/open over real loopback UDP opens a session."""
from __future__ import annotations

from pythonosc.tcp_client import SimpleTCPClient
from pythonosc.udp_client import SimpleUDPClient
from PyQt6.QtWidgets import QApplication

from gui.document import SeparatorCache


def test_osc_open_request_becomes_a_session(qtbot, separator, demo_loop, tmp_path):
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
    client = SimpleUDPClient(host, port)
    with qtbot.waitSignal(panel.analysis_received, timeout=120_000) as sig:
        client.send_message("/idm/open", str(demo_loop))
    analysis, source = sig.args
    assert source == str(demo_loop)
    qtbot.waitUntil(lambda: w.model.has_session, timeout=5000)
    assert w.model.n_hits() == analysis.transcription.n_hits > 0
    name = f"udp:127.0.0.1:{client._sock.getsockname()[1]}"
    lines = [panel.log.item(i).text() for i in range(panel.log.count())]
    assert any("analysed" in t and name in t for t in lines), lines
    # the client is listed, with its job
    assert panel.client_names == [name]
    assert "(1 job," in panel.clients.item(0).text()  # one job, in the singular
    # a failing request from the same client is logged from the server's result listener
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    client.send_message("/idm/open", [7, str(bad)])
    qtbot.waitUntil(lambda: any("job 7" in panel.log.item(i).text() and "failed" in panel.log.item(i).text()
                                for i in range(panel.log.count())), timeout=10_000)
    client._sock.close()
    panel.start_button.click()
    assert not panel.running and panel.status.text() == "stopped"
    w.close()
    QApplication.processEvents()


def test_osc_panel_lists_tcp_clients_while_connected(qtbot):
    from gui.views.osc_panel import OscPanel

    panel = OscPanel(lambda audio, progress: None)
    qtbot.addWidget(panel)
    panel.port.setValue(0)
    panel.tcp_port.setValue(0)
    assert panel.start()
    try:
        tcp = SimpleTCPClient(*panel.server.tcp_address, mode="1.0")
        local = tcp.socket.getsockname()
        name = f"tcp:{local[0]}:{local[1]}"
        with qtbot.waitSignal(panel.clients_changed, timeout=5000):
            tcp.send_message("/idm/ping", [])
        assert panel.client_names == [name]
        with qtbot.waitSignal(panel.clients_changed, timeout=5000):
            tcp.close()
        assert panel.client_names == [] and panel.clients.count() == 0
    finally:
        panel.stop()
