"""The OSC bridge panel: start and stop :class:`idm_host.osc.OscServer`, choose its ports, see its
connected clients and traffic; every analysis a client asks for also opens in the window as a session
(delivered by the server's result listener)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from idm_host.errors import IdmError
from idm_host.osc import DEFAULT_HOST, DEFAULT_PORT, OscClient, OscServer

log = logging.getLogger(__name__)

MAX_LOG_LINES = 200


def plural(n: int, word: str) -> str:
    """``"1 analysis"``, ``"2 analyses"``, ``"0 messages"``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-2] + 'es' if word.endswith('is') else word + 's'}"


class OscPanel(QWidget):
    """Controls for the OSC server.

    Args:
        analyze: ``analyze(audio, progress) -> Analysis``, run on the server's worker thread.

    Signals:
        analysis_received(object, str): an analysis a client asked for, and its source (path or
            ``"stream"``), delivered on the GUI thread.
        running_changed(bool)
        clients_changed(): the list of connected clients changed.
    """

    analysis_received = pyqtSignal(object, str)
    running_changed = pyqtSignal(bool)
    clients_changed = pyqtSignal()
    _result = pyqtSignal(int, object, object)  # the server's result listener (worker thread) -> GUI thread

    def __init__(self, analyze: Callable[..., Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("OscPanel")
        self._analyze = analyze
        self.server: OscServer | None = None
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setToolTip("UDP port (0 picks a free one)")
        self.use_tcp = QCheckBox("TCP too, on port")
        self.use_tcp.setChecked(True)
        self.tcp_port = QSpinBox()
        self.tcp_port.setRange(0, 65535)
        self.tcp_port.setValue(DEFAULT_PORT + 1)
        self.open_sessions = QCheckBox("Open incoming analyses here")
        self.open_sessions.setChecked(True)
        self.start_button = QPushButton("Start server")
        self.start_button.setCheckable(True)
        self.status = QLabel("stopped")
        self.status.setWordWrap(True)
        self.stats = QLabel("")
        self.stats.setStyleSheet("color:#8a909c;")
        self.clients = QListWidget()
        self.clients.setObjectName("OscClientList")
        self.clients.setMaximumHeight(110)
        self.clients.setToolTip("Clients heard from: TCP while connected, UDP until silent for a minute")
        self._client_rows: list[str] = []
        self.log = QListWidget()
        form = QFormLayout()
        form.addRow("UDP port", self.port)
        tcp = QHBoxLayout()
        tcp.addWidget(self.use_tcp)
        tcp.addWidget(self.tcp_port)
        form.addRow(tcp)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.open_sessions)
        lay.addWidget(self.start_button)
        lay.addWidget(self.status)
        lay.addWidget(self.stats)
        lay.addWidget(QLabel("Clients"))
        lay.addWidget(self.clients)
        lay.addWidget(QLabel("Activity"))
        lay.addWidget(self.log, 1)
        hint = QLabel("Clients send <code>/idm/open s:path</code> or stream audio "
                      "(<code>/idm/audio/begin|chunk|end</code>); replies carry hits, stems and MIDI.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color:#8a909c;")
        lay.addWidget(hint)
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._refresh)
        self.start_button.toggled.connect(self._on_start_toggled)
        self._result.connect(self._on_result)

    # ------------------------------------------------------------------ server
    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self) -> bool:
        """Start the server with the chosen ports; errors (port in use) show in the panel."""
        if self.server is not None:
            return True
        try:
            server = OscServer(analyze=self._analyze, host=DEFAULT_HOST, port=self.port.value(),
                               tcp_port=self.tcp_port.value() if self.use_tcp.isChecked() else None,
                               on_result=self._result.emit)
            server.start()
        except (IdmError, OSError) as exc:
            self.status.setText(f"could not start: {exc}")
            self._set_button(False)
            return False
        self.server = server
        udp = server.udp_address
        tcp = server.tcp_address
        where = f"UDP {udp[0]}:{udp[1]}" if udp else ""
        if tcp:
            where += f", TCP {tcp[0]}:{tcp[1]}"
        self.status.setText(f"listening on {where}")
        self._log(f"started ({where})")
        self._set_button(True)
        self._timer.start()
        self.running_changed.emit(True)
        return True

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        self._timer.stop()
        server.stop()
        self._show_clients(())
        self.status.setText("stopped")
        self._log("stopped")
        self._set_button(False)
        self.running_changed.emit(False)

    def shutdown(self) -> None:
        """Stop the server (the window calls this when it closes)."""
        self.stop()

    def _set_button(self, on: bool) -> None:
        self.start_button.blockSignals(True)
        self.start_button.setChecked(on)
        self.start_button.setText("Stop server" if on else "Start server")
        self.start_button.blockSignals(False)
        for w in (self.port, self.tcp_port, self.use_tcp):
            w.setEnabled(not on)

    def _on_start_toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    # ------------------------------------------------------------------ traffic
    def _on_result(self, job_id: int, result: Any, client: OscClient) -> None:
        """An analysis job ended (the server's result listener, delivered on the GUI thread)."""
        if self.server is None:
            return  # stopped meanwhile: the result belongs to a server that is gone
        if isinstance(result, IdmError):
            self._log(f"job {job_id} from {client.name} failed: {result}")
            return
        source = str(result.audio.source) if getattr(result.audio, "source", None) else "stream"
        self._log(f"analysed {source} for {client.name} (job {job_id}): {result.transcription.n_hits} hits")
        self._refresh()
        if self.open_sessions.isChecked():
            self.analysis_received.emit(result, source)

    def _log(self, text: str) -> None:
        self.log.addItem(f"{time.strftime('%H:%M:%S')}  {text}")
        while self.log.count() > MAX_LOG_LINES:
            self.log.takeItem(0)
        self.log.scrollToBottom()

    def _refresh(self) -> None:
        if self.server is None:
            return
        self._show_clients(self.server.clients)
        s = self.server.stats
        self.stats.setText(", ".join(plural(s.get(k, 0), word) for k, word in
                                     (("messages", "message"), ("jobs_done", "analysis"), ("errors", "error"))))

    def _show_clients(self, clients: tuple[OscClient, ...]) -> None:
        now = time.time()
        rows = []
        for c in clients:
            jobs = f", {len(c.active_jobs)} running" if c.active_jobs else ""
            rows.append(f"{c.name}  ({plural(len(c.jobs), 'job')}{jobs}, seen {max(0.0, now - c.last_seen):.0f} s ago)")
        if rows == self._client_rows:
            return
        changed = [r.split("  ")[0] for r in rows] != [r.split("  ")[0] for r in self._client_rows]
        self._client_rows = rows
        self.clients.clear()
        self.clients.addItems(rows)
        if changed:
            self.clients_changed.emit()

    @property
    def client_names(self) -> list[str]:
        """The clients listed now, as ``"udp:host:port"`` names."""
        return [r.split("  ")[0] for r in self._client_rows]
