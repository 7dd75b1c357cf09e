"""Playback through QtMultimedia when an audio output exists; a silent clock otherwise.

QtMultimedia needs Debian's ``libpulse0`` to import and a sound server or card to play. Where either is
missing, :class:`AudioPlayer` still runs its clock so the playhead moves, and
:attr:`AudioPlayer.status_text` says "no audio output" for the status bar.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QTimer, QUrl, pyqtSignal

from idm_host.audio import save_audio

log = logging.getLogger(__name__)

#: Playhead updates per second.
TICK_HZ = 30


def _probe_multimedia():
    """``(QMediaPlayer, QAudioOutput, QMediaDevices)`` classes and an output device, or a reason."""
    try:
        from PyQt6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
    except ImportError as exc:  # libpulse0 missing, or the wheel lacks the module
        return None, f"no audio output (QtMultimedia unavailable: {exc})"
    try:
        outputs = QMediaDevices.audioOutputs()
    except Exception as exc:  # pragma: no cover - backend failure
        return None, f"no audio output ({exc})"
    if not outputs:
        return None, "no audio output (no sound device found); playback shows the playhead only"
    return (QMediaPlayer, QAudioOutput, QMediaDevices), f"audio output: {outputs[0].description()}"


class AudioPlayer(QObject):
    """Plays float32 ``(channels, frames)`` buffers; emits the position while playing.

    Signals:
        position_changed(float): playhead (s) while playing, about 30 times a second.
        state_changed(bool): playing or not.
    """

    position_changed = pyqtSignal(float)
    state_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None, *, use_device: bool = True):
        super().__init__(parent)
        self._tmp = tempfile.TemporaryDirectory(prefix="idm-studio-play-")
        self._counter = 0
        classes, self.status_text = _probe_multimedia() if use_device else (None, "no audio output (disabled)")
        self.available = classes is not None
        self._player = None
        self._output = None
        if classes is not None:
            QMediaPlayer, QAudioOutput, _ = classes
            self._player = QMediaPlayer(self)
            self._output = QAudioOutput(self)
            self._player.setAudioOutput(self._output)
            self._player.playbackStateChanged.connect(self._on_player_state)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / TICK_HZ))
        self._timer.timeout.connect(self._on_timer_tick)
        self._t0 = 0.0
        self._offset_s = 0.0
        self._duration_s = 0.0
        self.playing = False
        self.label = ""

    def play(self, samples: np.ndarray, sample_rate: int, *, start_s: float = 0.0, label: str = "") -> None:
        """Play ``samples`` from ``start_s`` (replaces whatever plays)."""
        self.stop()
        arr = np.asarray(samples, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        self._duration_s = arr.shape[1] / float(sample_rate)
        self._offset_s = min(max(start_s, 0.0), self._duration_s)
        self.label = label
        if self._player is not None:
            self._counter += 1
            path = Path(self._tmp.name) / f"play-{self._counter}.wav"
            # write from start_s on: seeking before the player has loaded the file is ignored
            arr = arr[:, int(round(self._offset_s * sample_rate)):]
            peak = float(np.abs(arr).max()) if arr.size else 0.0
            if peak > 1.0:
                arr = arr / peak  # avoid clipping in the preview; exports are not normalised
            if arr.shape[1] == 0:
                arr = np.zeros((arr.shape[0], 1), dtype=np.float32)
            save_audio(path, arr, sample_rate, bit_depth=16, overwrite=True)
            self._player.setSource(QUrl.fromLocalFile(str(path)))
            self._player.play()
        self._t0 = time.monotonic()
        self.playing = True
        self._timer.start()
        self.state_changed.emit(True)

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
        if self.playing:
            self.playing = False
            self._timer.stop()
            self.state_changed.emit(False)

    def position_s(self) -> float:
        if not self.playing:
            return self._offset_s
        if self._player is not None and self._player.position() > 0:
            return self._offset_s + self._player.position() / 1000.0
        return self._offset_s + (time.monotonic() - self._t0)

    def _on_timer_tick(self) -> None:
        pos = self.position_s()
        if pos >= self._duration_s:
            self.stop()
            self.position_changed.emit(self._duration_s)
            return
        self.position_changed.emit(pos)

    def _on_player_state(self, state) -> None:  # pragma: no cover - needs a sound device
        from PyQt6.QtMultimedia import QMediaPlayer

        if state == QMediaPlayer.PlaybackState.StoppedState and self.playing:
            self.playing = False
            self._timer.stop()
            self.state_changed.emit(False)

    def close(self) -> None:
        self.stop()
        if self._player is not None:
            self._player.setSource(QUrl())
        self._tmp.cleanup()
