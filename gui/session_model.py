"""The bridge between :class:`idm_host.session.Session` and Qt.

:class:`SessionModel` owns the open session, turns its observer callbacks into Qt signals, caches
each lane's hits as numpy arrays for fast drawing, owns the Undo/Redo actions, and offers *intent*
methods (one undo step each) that the views call. Views never edit the session themselves.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence

from idm_host.errors import IdmError
from idm_host.session import (
    MASTER, RESIDUAL, AddHits, Change, Command, Compound, DeleteHits, MoveHits, Quantize, ReplaceSample,
    RevertSample, Session, SetEffects, SetFittedKit, SetKitParams, SetMixer, SetStems, SetTempo, SetVelocity,
    UseFitted,
)
from idm_host.tempo import Tempo
from idm_host.types import Audio, Stems

from .keys import key_sequences
from .peaks import Peaks

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 10.0
DEFAULT_VELOCITY = 0.8


@dataclass(frozen=True)
class LaneHits:
    """One class's hits as arrays sorted by time: ``times`` (s), ``velocities`` (0..1), ``ids``."""

    times: np.ndarray
    velocities: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


_EMPTY = LaneHits(np.empty(0), np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64))


#: Hits of one lane closer than this after quantising merge (the MIDI reader joins them too).
MERGE_S = 0.001


class QuantiseMerging(Command):
    """``quantise`` and then, in the same step, merge each quantised hit with the hits of its lane
    that are now within :data:`MERGE_S` of it (keeping the loudest). ``merged`` counts the hits removed."""

    def __init__(self, quantise: Quantize):
        self.quantise = quantise
        self.label = quantise.label
        self.merged = 0

    def run(self, session, state):
        state, change = self.quantise.run(session, state)
        moved = set(change.hit_ids)
        gone: list[int] = []
        for c in change.classes:
            hits = state.hits[c]  # sorted by time
            i = 0
            while i < len(hits):
                j = i + 1
                while j < len(hits) and hits[j].time_s - hits[i].time_s < MERGE_S:
                    j += 1
                group = hits[i:j]
                if len(group) > 1 and any(h.id in moved for h in group):
                    keep = max(group, key=lambda h: (h.velocity, -h.id))
                    gone += [h.id for h in group if h is not keep]
                i = j
        self.merged = len(gone)
        if gone:
            state, _ = DeleteHits(gone).run(session, state)
        return state, change


class SessionModel(QObject):
    """The open session, as Qt signals and intents.

    Signals:
        session_changed(): a different session (or none) is open; views reset.
        hits_changed(str): a class's hits changed.
        kit_changed(str): a class's kit slot changed.
        mixer_changed(str): a strip changed (a class, ``"master"`` or ``"residual"``).
        tempo_changed(): BPM or downbeat changed.
        source_changed(): the source audio was relinked or reloaded.
        stems_changed(): the separated stems were replaced (re-separation, or its undo/redo).
        modified_changed(bool): the document differs from its saved state (or not any more).
        error_occurred(str): an intent was refused; the message says why (nothing changed).
        status_message(str): a note about an edit that was made (e.g. hits merged by quantising).
        edited(): after any change (for re-render scheduling).
    """

    session_changed = pyqtSignal()
    hits_changed = pyqtSignal(str)
    kit_changed = pyqtSignal(str)
    mixer_changed = pyqtSignal(str)
    tempo_changed = pyqtSignal()
    source_changed = pyqtSignal()
    stems_changed = pyqtSignal()
    modified_changed = pyqtSignal(bool)
    error_occurred = pyqtSignal(str)
    status_message = pyqtSignal(str)
    edited = pyqtSignal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.session: Session | None = None
        self.mixture: Audio | None = None
        self.mixture_peaks: Peaks | None = None
        self._unsubscribe = None
        self._cache: dict[str, LaneHits] = {}
        self._modified = False
        self.undo_action = QAction("&Undo", self)
        self.undo_action.setShortcuts(key_sequences(QKeySequence.StandardKey.Undo, "Ctrl+Z"))
        self.undo_action.triggered.connect(self.undo)
        self.redo_action = QAction("&Redo", self)
        # on X11 StandardKey.Redo already is Ctrl+Shift+Z: each sequence once, or Qt calls it ambiguous
        self.redo_action.setShortcuts(key_sequences(QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z", "Ctrl+Y"))
        self.redo_action.triggered.connect(self.redo)
        self._update_actions()

    # ------------------------------------------------------------------ document
    def set_session(self, session: Session | None, mixture: Audio | None = None) -> None:
        """Show ``session`` (with the mixture ``mixture`` for the waveform, if known)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.session = session
        self.mixture = mixture
        self.mixture_peaks = None
        if mixture is not None:
            self.mixture_peaks = Peaks(mixture.mono(), mixture.sample_rate)
        self._cache.clear()
        if session is not None:
            self._unsubscribe = session.subscribe(self._on_session_change)
        self._update_actions()
        self.session_changed.emit()

    def close(self) -> None:
        self.set_session(None)

    @property
    def has_session(self) -> bool:
        return self.session is not None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.session.classes if self.session is not None else ()

    @property
    def duration_s(self) -> float:
        return self.session.duration_s if self.session is not None else DEFAULT_DURATION_S

    @property
    def sample_rate(self) -> int:
        return self.session.sample_rate if self.session is not None else 44100

    @property
    def tempo(self) -> tuple[float, float]:
        """``(bpm, downbeat_s)``."""
        if self.session is None:
            return 120.0, 0.0
        t = self.session.tempo
        return t.bpm, t.downbeat_s

    @property
    def tempo_model(self) -> Tempo:
        """The session's :class:`~idm_host.tempo.Tempo` (BPM, downbeat, beats per bar); 4/4 at 120
        BPM without a session. The grid draws, snaps and counts bars by it."""
        return Tempo() if self.session is None else self.session.tempo

    @property
    def modified(self) -> bool:
        """Unsaved edits: :attr:`Session.modified` (a fresh analysis or a just saved/loaded session is not)."""
        return self.session is not None and self.session.modified

    def hits(self, symbol: str) -> LaneHits:
        """The hits of ``symbol`` as arrays (cached until the lane changes)."""
        lane = self._cache.get(symbol)
        if lane is None:
            if self.session is None or symbol not in self.session.hits:
                return _EMPTY
            hs = self.session.hits[symbol]
            lane = LaneHits(
                np.fromiter((h.time_s for h in hs), dtype=np.float64, count=len(hs)),
                np.fromiter((h.velocity for h in hs), dtype=np.float32, count=len(hs)),
                np.fromiter((h.id for h in hs), dtype=np.int64, count=len(hs)),
            )
            for a in (lane.times, lane.velocities, lane.ids):
                a.setflags(write=False)
            self._cache[symbol] = lane
        return lane

    def n_hits(self) -> int:
        return sum(len(self.hits(c)) for c in self.classes)

    def class_of(self, hit_id: int) -> str | None:
        for c in self.classes:
            ids = self.hits(c).ids
            if len(ids) and (ids == hit_id).any():
                return c
        return None

    def default_velocity(self, symbol: str) -> float:
        """Velocity for a newly drawn hit: the median of the lane, else 0.8."""
        v = self.hits(symbol).velocities
        return float(np.clip(np.median(v), 0.05, 1.0)) if len(v) else DEFAULT_VELOCITY

    # ------------------------------------------------------------------ observer
    def _on_session_change(self, change: Change) -> None:
        if "hits" in change.parts:
            for c in change.classes:
                self._cache.pop(c, None)
        self._update_actions()
        if "hits" in change.parts:
            for c in sorted(change.classes):
                if c in self.classes:
                    self.hits_changed.emit(c)
        if "kit" in change.parts:
            for c in sorted(change.classes):
                self.kit_changed.emit(c)
        if "mixer" in change.parts:
            for c in sorted(change.classes):
                self.mixer_changed.emit(c)
        if "tempo" in change.parts:
            self.tempo_changed.emit()
        if "stems" in change.parts:
            self.stems_changed.emit()
        if "source" in change.parts:
            self.source_changed.emit()
        self.edited.emit()

    def _update_actions(self) -> None:
        s = self.session
        self.undo_action.setEnabled(bool(s and s.can_undo))
        self.redo_action.setEnabled(bool(s and s.can_redo))
        self.undo_action.setText(f"&Undo {s.undo_label}" if s and s.undo_label else "&Undo")
        self.redo_action.setText(f"&Redo {s.redo_label}" if s and s.redo_label else "&Redo")
        modified = self.modified
        if modified != self._modified:
            self._modified = modified
            self.modified_changed.emit(modified)

    def mark_saved(self) -> None:
        """Call after saving: updates the modified flag."""
        self._update_actions()

    # ------------------------------------------------------------------ intents
    def apply(self, command: Command) -> Change | None:
        """Apply ``command``; on a refused edit emit ``error_occurred`` and return None."""
        if self.session is None:
            return None
        try:
            return self.session.apply(command)
        except IdmError as exc:
            log.info("edit refused: %s", exc)
            self.error_occurred.emit(str(exc))
            return None

    def _build_and_apply(self, build: Callable[[], Command]) -> bool:
        """Build a command and apply it; one refused while it is built (a bad sample file, stems or
        effects) emits ``error_occurred`` too. Returns whether it was applied."""
        try:
            command = build()
        except IdmError as exc:
            self.error_occurred.emit(str(exc))
            return False
        return self.apply(command) is not None

    def undo(self) -> None:
        if self.session is not None:
            self.session.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.redo()

    def add_hits(self, hits: Mapping[str, Iterable[tuple[float, float]]], *, label: str = "add hits") -> list[int]:
        """Add ``{class: [(time_s, velocity), ...]}`` as one undo step; returns the new ids."""
        commands = [AddHits(c, list(v)) for c, v in hits.items() if v]
        if not commands:
            return []
        change = self.apply(commands[0] if len(commands) == 1 and label == AddHits.label else Compound(commands, label))
        return list(change.hit_ids) if change is not None else []

    def delete_hits(self, ids: Iterable[int]) -> bool:
        ids = [int(i) for i in ids]
        return bool(ids) and self.apply(DeleteHits(ids)) is not None

    def move_hits(self, ids: Iterable[int], delta_s: float | None = None, *, times: Mapping[int, float] | None = None,
                  to_class: str | None = None, merge_key: Any = None) -> bool:
        """Move hits by ``delta_s`` (or to ``times``), optionally into another class's lane."""
        ids = [int(i) for i in ids]
        if times is not None:
            cmd = MoveHits(times={int(k): float(v) for k, v in times.items()}, to_class=to_class, merge_key=merge_key)
        elif ids:
            cmd = MoveHits(ids, float(delta_s or 0.0), to_class=to_class, merge_key=merge_key)
        else:
            return False
        return self.apply(cmd) is not None

    def set_velocities(self, values: Mapping[int, float], *, merge_key: Any = None) -> bool:
        values = {int(k): float(np.clip(v, 0.0, 1.0)) for k, v in values.items()}
        return bool(values) and self.apply(SetVelocity(values=values, merge_key=merge_key)) is not None

    def quantise(self, ids: Iterable[int] | None, grid: str, strength: float) -> bool:
        """Quantise ``ids`` (or every hit with ``None``) to ``grid`` with ``strength`` 0..1; hits of one
        lane that land within :data:`MERGE_S` of each other become one (the loudest), in the same
        undo step, so that the grid shows what a MIDI export writes."""
        cmd = QuantiseMerging(Quantize(None if ids is None else list(ids), grid, strength=strength))
        change = self.apply(cmd)
        if change is not None and cmd.merged:
            self.status_message.emit(f"Quantised; {cmd.merged} hit{'s' if cmd.merged != 1 else ''} that landed "
                                     "on another hit of the same drum merged into it")
        return change is not None

    def set_times(self, times: Mapping[int, float]) -> bool:
        """Move hits to exact times ``{id: time_s}`` (clipped to the file), as one undo step."""
        d = self.duration_s
        times = {int(k): min(max(float(v), 0.0), d) for k, v in times.items()}
        return bool(times) and self.apply(MoveHits(times=times)) is not None

    def set_tempo(self, bpm: float | None = None, downbeat_s: float | None = None) -> bool:
        return self.apply(SetTempo(bpm, downbeat_s)) is not None

    def replace_sample(self, symbol: str, path: str) -> bool:
        """Use the audio file ``path`` as ``symbol``'s one-shot (a bad file changes nothing)."""
        return self._build_and_apply(lambda: ReplaceSample(symbol, path))

    def set_stems(self, stems: Stems | None, *, label: str = "re-separate") -> bool:
        """Replace the separated stems as one undo step (e.g. the result of a re-separation)."""
        return self._build_and_apply(lambda: SetStems(stems, label=label))

    def set_stems_and_kit(self, stems: Stems, fitted: Mapping[str, Any] | None, *, label: str = "re-separate") -> bool:
        """Replace the stems and, when the separation fitted one-shots to the record (``{class: one-shot}``),
        the model's kit slots with them (user samples stay), as one undo step."""
        if not fitted:
            return self.set_stems(stems, label=label)
        return self._build_and_apply(lambda: Compound([SetStems(stems), SetFittedKit(fitted)], label=label))

    def revert_sample(self, symbol: str) -> bool:
        return self.apply(RevertSample(symbol)) is not None

    def use_fitted(self, symbol: str, fitted: bool) -> bool:
        """Play ``symbol``'s one-shot fitted to the record (``True``) or the model's synthetic one (undoable)."""
        return self.apply(UseFitted(symbol, fitted)) is not None

    def set_kit_params(self, symbol: str, *, merge_key: Any = None, **params: Any) -> bool:
        return self.apply(SetKitParams(symbol, merge_key=merge_key, **params)) is not None

    def set_mixer(self, strip: str, *, merge_key: Any = None, **params: Any) -> bool:
        return self.apply(SetMixer(strip, merge_key=merge_key, **params)) is not None

    def set_effects(self, strip: str, effects: Any) -> bool:
        return self._build_and_apply(lambda: SetEffects(strip, effects))

    @property
    def strips(self) -> tuple[str, ...]:
        """Mixer strips: the classes, then the residual and the master."""
        return self.classes + ((RESIDUAL, MASTER) if self.session is not None else ())
