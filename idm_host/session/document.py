"""The document: :class:`Session`, its state, its undo and redo history, and its observers.

Edits are :mod:`.commands`; the files are :mod:`.persistence` (see the package's docstring for both).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import AudioError, BusyError, IdmError, SessionError
from ..tempo import Tempo, estimate_tempo
from ..types import Analysis, Kit, Stems, Transcription
from . import persistence, schema
from .commands import Command, check_class
from .parts import (MASTER, RESIDUAL, ChannelStrip, Change, KitSlot, PathLike, SessionHit, SessionState, SourceInfo,
                    frozen_array)

log = logging.getLogger("idm_host.session")

#: Largest undo history kept.
MAX_UNDO = 500


@dataclass
class _Step:
    command: Command
    before: SessionState
    after: SessionState
    change: Change


Observer = Callable[[Change], None]


class Session:
    """The editable document. Build with :meth:`from_analysis` or :meth:`load`.

    Attributes:
        classes: class symbols in model order.
        sample_rate: the session rate (Hz).
        source: :class:`SourceInfo` of the analysed audio.
        stems: the separated stems (with residual), or ``None`` when not kept (read-only: change
            them with :class:`SetStems`, which is undoable).
        model: the model name that made the analysis.
        path: the folder this session was loaded from or last saved to.
        source_problem: ``None``, or a sentence saying the source file is missing or changed.
    """

    def __init__(self, *, classes: Sequence[str], sample_rate: int, source: SourceInfo, state: SessionState,
                 extracted: Mapping[str, tuple[np.ndarray, float]], stems: Stems | None = None,
                 model: str = "", next_hit_id: int = 1):
        self.classes = tuple(classes)
        self.sample_rate = int(sample_rate)
        self.source = source
        self.model = model
        self.path: Path | None = None
        self.source_problem: str | None = None
        self._extracted = {c: (frozen_array(a), float(g)) for c, (a, g) in extracted.items()}
        self._state = state if stems is None else replace(state, stems=stems)
        #: The snapshot last analysed, loaded or saved: :attr:`modified` compares with it.
        self._saved_state: SessionState | None = self._state
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._observers: list[Observer] = []
        self._next_id = int(next_hit_id)
        #: ``(stems, {strip: (file, scale)})``: where the stems object last loaded or saved lies
        #: (so re-saving stems nobody replaced costs no encoding and no hashing).
        self._stem_files: tuple[Stems, dict[str, tuple[str, float]]] | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_analysis(cls, analysis: Analysis, source: PathLike | None = None, *, keep_stems: bool = True,
                      tempo: Tempo | None = None) -> "Session":
        """A new session from an analysis.

        Args:
            analysis: the engine's result.
            source: the analysed file (defaults to ``analysis.audio.source``); its sha256 is recorded.
            keep_stems: keep the separated stems (for the ``replace``/``layer`` blends); they are saved
                with the session.
            tempo: a tempo to use instead of the estimate.
        """
        audio = analysis.audio
        src = Path(source) if source is not None else audio.source
        sha = audio.sha256 if audio.source is not None and src == audio.source else None
        return cls.from_transcription(
            analysis.transcription, analysis.kit,
            SourceInfo.for_file(src, sample_rate=audio.sample_rate, duration_s=audio.duration_s,
                                channels=audio.channels, sha256=sha),
            track_gains=analysis.track_gains, model=analysis.model,
            stems=analysis.stems if keep_stems else None, tempo=tempo,
            synthetic_kit=(analysis.extra or {}).get("synthetic_kit"))

    @classmethod
    def from_transcription(cls, transcription: Transcription, kit: Kit, source: SourceInfo, *,
                           track_gains: Any = None, model: str = "", stems: Stems | None = None,
                           tempo: Tempo | None = None, synthetic_kit: Kit | None = None) -> "Session":
        """A new session from hits and the kit that plays them, without an analysis's audio.

        Args:
            transcription: the hits; its ``duration_s`` (else ``source.duration_s``) bounds the tempo estimate.
            kit: the model's one-shots, one per class of ``transcription``, with their track gains
                (``track_gains`` stands in for a kit that carries none).
            source: the audio the hits belong to (:meth:`SourceInfo.for_file` builds it from a path).
            model: the model's name.
            stems: the separated stems to keep, or ``None``.
            tempo: a tempo to use instead of the estimate.
            synthetic_kit: the model's own one-shots when ``kit`` is fitted to the record (an adaptive
                analysis's ``extra["synthetic_kit"]``): the slots are then ``"fitted"`` and keep both.
        """
        tr = transcription
        classes = tuple(tr.classes)
        missing = [c for c in classes if c not in kit.classes]
        if missing:
            raise SessionError(f"the analysis's kit lacks one-shots for {missing}; analyse the audio again")
        # the engine's synthetic stem k = kit.velocity_scale * kit.gain(k) * sum velocity * one-shot
        # (kit.track_gains fold in the input level); older kits carry no gains: use the analysis's
        gains = np.asarray(kit.track_gains if getattr(kit, "track_gains", None) is not None
                           else track_gains, dtype=np.float64).reshape(-1)
        if gains.size != len(kit.classes):
            raise SessionError(f"the analysis has {gains.size} track gains for {len(kit.classes)} kit classes")
        gains = gains * float(getattr(kit, "velocity_scale", 1.0))
        extracted = {c: (kit.one_shot(c), float(gains[kit.classes.index(c)])) for c in classes}
        next_id = 1
        hits: dict[str, tuple[SessionHit, ...]] = {}
        for c in classes:
            lane = []
            for h in tr.hits[c]:
                lane.append(SessionHit(h.time_s, next_id, h.velocity))
                next_id += 1
            hits[c] = tuple(sorted(lane))
        # no choke by default: the model's own kit renders exactly like its synthetic stems
        if synthetic_kit is not None:
            missing = [c for c in classes if c not in synthetic_kit.classes]
            if missing:
                raise SessionError(f"the analysis's synthetic kit lacks one-shots for {missing}; analyse the audio again")
            fitted = {c: frozen_array(extracted[c][0]) for c in classes}
            # the model's own one-shots are the extracted ones; the fitted ones play
            extracted = {c: (frozen_array(synthetic_kit.one_shot(c)), extracted[c][1]) for c in classes}
            slots = {c: KitSlot(fitted[c], "fitted", extracted[c][1], fitted=fitted[c], synthetic=extracted[c][0])
                     for c in classes}
        else:
            slots = {c: KitSlot(extracted[c][0], "extracted", extracted[c][1]) for c in classes}
        mixer = {c: ChannelStrip() for c in classes}
        mixer[MASTER] = ChannelStrip()
        mixer[RESIDUAL] = ChannelStrip(mute=True)
        if tempo is None:
            tempo = estimate_tempo(tr.hits, duration_s=tr.duration_s or source.duration_s)
        state = SessionState(MappingProxyType(hits), MappingProxyType(slots), MappingProxyType(mixer), tempo, stems)
        return cls(classes=classes, sample_rate=kit.sample_rate, source=source, state=state, extracted=extracted,
                   model=model, next_hit_id=next_id)

    # ---------------------------------------------------------------- state access
    @property
    def state(self) -> SessionState:
        """The current immutable snapshot."""
        return self._state

    @property
    def hits(self) -> Mapping[str, tuple[SessionHit, ...]]:
        return self._state.hits

    @property
    def kit(self) -> Mapping[str, KitSlot]:
        return self._state.kit

    @property
    def mixer(self) -> Mapping[str, ChannelStrip]:
        return self._state.mixer

    @property
    def tempo(self) -> Tempo:
        return self._state.tempo

    @property
    def duration_s(self) -> float:
        return self.source.duration_s

    def hit(self, hit_id: int) -> tuple[str, SessionHit]:
        """``(class, hit)`` for an id. Raises SessionError if there is no such hit."""
        for c, hs in self._state.hits.items():
            for h in hs:
                if h.id == hit_id:
                    return c, h
        raise SessionError(f"hit id {hit_id!r} is not in the session; it may have been deleted")

    def hits_in(self, cls: str, start_s: float, end_s: float) -> tuple[SessionHit, ...]:
        """Hits of ``cls`` with ``start_s <= time_s < end_s``."""
        return tuple(h for h in self._state.hits[check_class(self, cls)] if start_s <= h.time_s < end_s)

    def extracted_one_shot(self, cls: str) -> tuple[np.ndarray, float]:
        """The model's one-shot for ``cls`` (read-only float32) and its track gain."""
        return self._extracted[check_class(self, cls)]

    def transcription(self) -> Transcription:
        """The current hits as a :class:`Transcription` (for MIDI export and the engine)."""
        return Transcription(self.classes, {c: tuple(h.as_hit() for h in hs) for c, hs in self._state.hits.items()},
                             self.duration_s)

    def kit_arrays(self) -> Kit:
        """The extracted one-shots as a :class:`Kit` (the model's synthetic kit, whatever is in use)."""
        n = max(a.size for a, _ in self._extracted.values())
        arr = np.zeros((len(self.classes), n), dtype=np.float32)
        for i, c in enumerate(self.classes):
            a = self._extracted[c][0]
            arr[i, : a.size] = a
        gains = np.array([self._extracted[c][1] for c in self.classes], dtype=np.float32)
        return Kit(self.classes, arr, self.sample_rate, gains, 1.0)

    @property
    def stems(self) -> Stems | None:
        """The separated stems and residual, or ``None`` (change them with :class:`SetStems`)."""
        return self._state.stems

    @stems.setter
    def stems(self, value: Any) -> None:
        raise SessionError("session.stems cannot be assigned; apply SetStems(stems) so the change can be undone")

    @property
    def modified(self) -> bool:
        """Whether there are unsaved changes.

        False straight after :meth:`from_analysis`, :meth:`load` or :meth:`save`. Any applied,
        undone or redone command makes it True, except that undo/redo back to the snapshot last
        saved (or loaded, or analysed) makes it False again; :meth:`relink` makes it True.
        """
        return self._state is not self._saved_state

    # ---------------------------------------------------------------- editing
    def _take_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def apply(self, command: Command) -> Change:
        """Run an edit; it becomes one undo step (or folds into the last one, see ``merge_key``).

        Raises:
            SessionError: the edit is invalid; the session is unchanged.
        """
        if not isinstance(command, Command):
            raise SessionError(f"{command!r} is not a session command")
        before = self._state
        try:
            after, change = command.run(self, before)
        except IdmError as exc:
            if isinstance(exc, (SessionError, BusyError)):
                raise
            raise SessionError(str(exc)) from exc
        last = self._undo[-1] if self._undo else None
        if (last is not None and command.merge_key is not None and type(last.command) is type(command)
                and last.command.merge_key == command.merge_key and not self._redo):
            last.after, last.command = after, command
            last.change = Change(last.change.parts | change.parts, last.change.classes | change.classes,
                                 change.label, "apply", change.hit_ids)
        else:
            self._undo.append(_Step(command, before, after, change))
            del self._undo[:-MAX_UNDO]
        self._redo.clear()
        self._state = after
        self._notify(change)
        return change

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].change.label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].change.label if self._redo else None

    def undo(self) -> Change | None:
        """Undo the last step; returns its :class:`Change` (kind ``"undo"``) or ``None`` if nothing to undo."""
        return self._move_step(self._undo, self._redo, "undo")

    def redo(self) -> Change | None:
        """Redo the last undone step; returns its :class:`Change` (kind ``"redo"``) or ``None``."""
        return self._move_step(self._redo, self._undo, "redo")

    def _move_step(self, source: list[_Step], target: list[_Step], kind: str) -> Change | None:
        """Move the last step of ``source`` onto ``target`` and go to its state before (undo) or after (redo)."""
        if not source:
            return None
        step = source.pop()
        target.append(step)
        self._state = step.before if kind == "undo" else step.after
        change = replace(step.change, kind=kind)
        self._notify(change)
        return change

    def subscribe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback(change)`` after every apply/undo/redo/relink; returns an unsubscribe function."""
        self._observers.append(callback)

        def unsubscribe() -> None:
            try:
                self._observers.remove(callback)
            except ValueError:
                pass

        return unsubscribe

    def _notify(self, change: Change) -> None:
        for cb in list(self._observers):
            try:
                cb(change)
            except Exception:  # an observer's bug must not corrupt the document
                log.exception("session observer %r failed on %s", cb, change.label)

    # ---------------------------------------------------------------- source
    def check_source(self) -> str | None:
        """Check the source file; sets and returns :attr:`source_problem` (``None`` when all is well)."""
        from ..audio import file_sha256

        p = self.source.path
        if p is None:
            self.source_problem = None
        elif not Path(p).is_file():
            self.source_problem = f"{p}: the source audio is missing (moved or deleted); relink it with relink(path)"
        elif self.source.sha256 and file_sha256(p) != self.source.sha256:
            self.source_problem = (f"{p}: the source audio changed since the analysis (sha256 differs); "
                                   "relink it with relink(path, allow_changed=True) or analyse it again")
        else:
            self.source_problem = None
        return self.source_problem

    def relink(self, path: PathLike, *, allow_changed: bool = False) -> None:
        """Point the session at the source's new location.

        Raises:
            SessionError: the file is not readable audio, or its content differs (sha256) and
                ``allow_changed`` is false.
        """
        from ..audio import file_sha256, load_audio

        p = Path(path)
        try:
            audio = load_audio(p, sample_rate=None)
        except AudioError as exc:
            raise SessionError(f"cannot relink to {p}: {exc}") from exc
        sha = file_sha256(p)
        if self.source.sha256 and sha != self.source.sha256 and not allow_changed:
            raise SessionError(f"{p}: its content differs from the analysed audio (sha256); "
                               "pass allow_changed=True to use it anyway")
        self.source = SourceInfo(str(p.resolve()), sha, self.source.sample_rate,
                                 audio.duration_s if allow_changed else self.source.duration_s, self.source.channels)
        self.source_problem = None
        self._saved_state = None  # the document changed (not undoable)
        self._notify(Change(frozenset({"source"}), frozenset(), "relink source", "relink"))

    # ---------------------------------------------------------------- save / load
    @property
    def next_hit_id(self) -> int:
        """The id the next new hit gets (ids are never reused)."""
        return self._next_id

    def to_dict(self) -> dict:
        """session.json's content, without writing the audio files (their names are filled by save)."""
        return persistence.session_dict(self)

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Save as a ``NAME.idmsession/`` folder, atomically.

        Saving to the folder this session came from (or was last saved to) needs no flag; any other
        existing folder needs ``overwrite=True``, and a folder that is not a session is never replaced.

        Returns:
            the folder path.

        Raises:
            SessionError: the folder exists (without ``overwrite``), is not a session, or cannot be written.
        """
        p, stem_files = persistence.save_session(self, path, overwrite=overwrite, stem_files=self._stem_files)
        self.path = p
        self._saved_state = self._state
        self._stem_files = stem_files
        return p

    @classmethod
    def load(cls, path: PathLike) -> "Session":
        """Open a ``NAME.idmsession/`` folder (an older schema is migrated as it is read).

        A missing or changed source file does not stop loading: :attr:`source_problem` says what is
        wrong and :meth:`relink` fixes it.

        Raises:
            SchemaTooNewError: written by a newer idm-host.
            SessionError: the folder is missing, not a session, or its files are corrupt.
        """
        got = persistence.read_session(path)
        s = cls(classes=got.classes, sample_rate=got.sample_rate, source=got.source, state=got.state,
                extracted=got.extracted, model=got.model, next_hit_id=got.next_hit_id)
        s.path = got.path
        s._stem_files = got.stem_files
        problem = s.check_source()
        if problem:
            log.warning("%s", problem)
        return s

    def info(self) -> dict:
        """A JSON-able summary (for ``idm-host session info``)."""
        return {
            "path": str(self.path) if self.path else None,
            "schema_version": schema.SESSION_SCHEMA_VERSION,
            "model": self.model,
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "source": self.source.to_dict(),
            "source_problem": self.source_problem,
            "tempo": self.tempo.to_dict(),
            "classes": {c: {"hits": len(self.hits[c]), "kit": self.kit[c].origin,
                            "fitted": self.kit[c].fitted is not None,
                            "sample": self.kit[c].sample_path, "blend": self.kit[c].blend,
                            "effects": self.mixer[c].effects} for c in self.classes},
            "n_hits": sum(len(h) for h in self.hits.values()),
            "stems": self.stems is not None,
        }
