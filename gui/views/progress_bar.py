"""A progress bar with a stage label and a Cancel button, bound to a :class:`gui.jobs.JobRunner`."""
from __future__ import annotations

from PyQt6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..jobs import JobRunner


class ProgressPanel(QWidget):
    """Shown while the runner works; hidden otherwise. Cancel (or Esc via the window) stops the job."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("ProgressPanel")
        self.runner = runner
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFixedWidth(220)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job; nothing partial is kept")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        runner.started.connect(self._on_runner_started)
        runner.progress.connect(self._on_runner_progress)
        runner.done.connect(self._on_runner_done)
        self.hide()

    def _on_runner_started(self, title: str) -> None:
        self.label.setText(title)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.cancel_button.setEnabled(True)
        self.show()

    def _on_runner_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(fraction * 1000)))
        if message:
            self.bar.setFormat(f"{message}  %p%")

    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText(f"{self.runner.title}: cancelling...")
        self.runner.cancel()

    def _on_runner_done(self) -> None:
        self.hide()
