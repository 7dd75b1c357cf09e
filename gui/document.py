"""The long operations behind the window's commands, written to run on a :class:`gui.jobs.JobRunner`.

Each function takes ``progress=`` (an :data:`idm_host.progress.ProgressCallback`), calls only
``idm_host``'s public API and returns plain results; none touches Qt widgets.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from idm_host.audio import load_audio, save_audio
from idm_host.classes import GROUPS
from idm_host.errors import IdmError, SessionError
from idm_host.progress import ProgressCallback, Stage
from idm_host.session import SESSION_SUFFIX, Session
from idm_host.types import Audio, Stems

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class Opened:
    """A session ready to show: the document and its mixture (``None`` if the source is missing)."""

    session: Session
    mixture: Audio | None
    path: Path
    analysed: bool


def is_session_path(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix == SESSION_SUFFIX or (p.is_dir() and (p / "session.json").is_file()) or p.name == "session.json"


class SeparatorCache:
    """Keeps one :class:`idm_host.Separator` per model name, built on first use (on the worker).

    ``use_lock`` serialises the model's use: the window's jobs and the OSC server's worker share it.
    """

    def __init__(self, factory: Callable[[str], Any] | None = None):
        self._factory = factory
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.use_lock = threading.RLock()

    def get(self, model: str) -> Any:
        with self._lock:
            sep = self._cache.get(model)
            if sep is None:
                if self._factory is not None:
                    sep = self._factory(model)
                else:
                    from idm_host import Separator

                    sep = Separator(model)
                self._cache[model] = sep
            return sep


def analyse_file(path: str | Path, *, separators: SeparatorCache, model: str = "default",
                 progress: ProgressCallback | None = None) -> Opened:
    """Load an audio file, analyse it with ``model`` and make a new session from it."""
    stage = Stage(progress)
    stage(0.0, "loading the model")
    sep = separators.get(model)
    stage(0.02, "reading the audio")
    audio = load_audio(path, sample_rate=sep.sample_rate)
    with separators.use_lock:
        analysis = sep.analyze(audio, progress=stage.sub(0.05, 0.97))
    stage(0.98, "building the session")
    session = Session.from_analysis(analysis, path)
    stage(1.0, "done")
    return Opened(session, analysis.audio, Path(path), True)


def analyse_audio(audio: Audio, *, separators: SeparatorCache, model: str = "default",
                  progress: ProgressCallback | None = None) -> Any:
    """Analyse audio already in memory (the OSC server's requests) with the shared model."""
    sep = separators.get(model)
    with separators.use_lock:
        return sep.analyze(audio, progress=progress)


def analysis_to_opened(analysis: Any, source: str | Path | None = None) -> Opened:
    """A session from an analysis made elsewhere (e.g. by the OSC server)."""
    session = Session.from_analysis(analysis, source)
    return Opened(session, analysis.audio, Path(source) if source else Path("osc-stream"), True)


def open_session(path: str | Path, *, progress: ProgressCallback | None = None) -> Opened:
    """Load a ``.idmsession`` folder and, if it can be found, its source audio for the waveform."""
    stage = Stage(progress)
    stage(0.0, "reading the session")
    session = Session.load(path)
    stage(0.7, "reading the source audio")
    mixture = None
    if session.source_problem is None and session.source.path:
        try:
            mixture = load_audio(session.source.path, sample_rate=session.sample_rate)
        except IdmError as exc:
            log.warning("source audio unavailable: %s", exc)
    if mixture is None and session.stems is not None:
        st = session.stems
        mixture = Audio(st.audio.sum(axis=0) + st.residual, st.sample_rate)
    stage(1.0, "done")
    return Opened(session, mixture, Path(session.path or path), False)


#: Masking modes offered for "Re-separate with My Edits" (idm_host.masking.MODES minus "none"), with labels.
RESEPARATE_MASKING = (("auto", "Automatic (fitted to the record)"), ("adaptive", "Fitted to the Record"),
                      ("power", "Power-ratio Masks"), ("wiener", "Magnitude-ratio Masks"))


@dataclass(frozen=True)
class Reseparated:
    """What :func:`reseparate` made: the new stems, and the one-shots fitted to the record
    (``{class: float32 one-shot}``) when the masks were fitted (else ``None``)."""

    stems: Stems
    fitted: dict[str, np.ndarray] | None


def reseparate(session: Session, mixture: Audio, *, separators: SeparatorCache, masking: str = "auto",
               progress: ProgressCallback | None = None) -> Reseparated:
    """Separate the mixture again with the session's edited hits as the onsets (the model's synthetic
    one-shots as the starting templates, so re-separating twice fits the same kit); ``masking`` is the
    engine's mode ("auto": fitted to the record, as the hits are the user's)."""
    if mixture is None:
        raise SessionError("the source audio is not available; relink it before re-separating")
    stage = Stage(progress)
    stage(0.0, "loading the model")
    sep = separators.get(session.model or "default") if session.model not in ("", "synthetic") else \
        separators.get("default")
    with separators.use_lock:
        analysis = sep.analyze(mixture, session.transcription(), kit=session.kit_arrays(), masking=masking,
                               progress=stage.sub(0.05, 1.0))
    fitted = None
    if "synthetic_kit" in (analysis.extra or {}):
        fitted = {c: analysis.kit.one_shot(c) for c in session.classes if c in analysis.kit.classes}
    return Reseparated(analysis.stems, fitted)


def save_session(session: Session, path: str | Path, *, overwrite: bool = False,
                 progress: ProgressCallback | None = None) -> Path:
    if progress:
        progress(0.0, "saving")
    out = session.save(path, overwrite=overwrite)
    if progress:
        progress(1.0, "saved")
    return out


def mix_of_stems(session: Session) -> np.ndarray:
    """The separated stems through the mixer (gain, pan, mute, solo, master): float32 ``(2, frames)``.

    A quick preview without effects, made by the same mixer as every render and export
    (:func:`idm_host.render.render` with ``source="stems"``).
    """
    from idm_host.render import render

    return render(session, source="stems", effects=False, channels=2).mix


@dataclass(frozen=True)
class ExportOptions:
    """What :func:`export` writes into ``folder``.

    Attributes:
        stems: write the separated stems.
        grouping: ``"classes"`` (one per model class) or ``"groups"`` (the 5 KD/SD/HH/TT/CY groups).
        audio_format: ``"wav"`` or ``"flac"``.
        bit_depth: 24, or 32 (float; FLAC stores 24).
        mix: write the rendered mix (with kit, mixer and effects) as ``mix.<fmt>``.
        midi: write ``<name>.mid`` with ``drum_map``.
        kit: write each class's one-shot in use as ``kit/<class>.<fmt>``, and for a slot fitted to the
            record its synthetic one-shot as ``kit/synthetic/<class>.<fmt>`` (as ``idm-host separate``).
        overwrite: replace files that exist (otherwise an existing file stops the export first).
    """

    folder: Path
    name: str = "drums"
    stems: bool = True
    grouping: str = "classes"
    audio_format: str = "wav"
    bit_depth: int = 24
    mix: bool = False
    midi: bool = True
    drum_map: str = "gm"
    kit: bool = False
    overwrite: bool = False


def planned_files(session: Session, opts: ExportOptions) -> list[Path]:
    """The files :func:`export` would write, in order."""
    folder = Path(opts.folder)
    ext = opts.audio_format
    out: list[Path] = []
    if opts.stems:
        names = GROUPS if opts.grouping == "groups" else session.classes
        out += [folder / f"{opts.name}-{c}.{ext}" for c in names]
    if opts.mix:
        out.append(folder / f"{opts.name}-mix.{ext}")
    if opts.midi:
        out.append(folder / f"{opts.name}.mid")
    if opts.kit:
        for c in session.classes:
            out.append(folder / "kit" / f"{c}.{ext}")
            if session.kit[c].synthetic is not None:
                out.append(folder / "kit" / "synthetic" / f"{c}.{ext}")
    return out


def export(session: Session, opts: ExportOptions, *, progress: ProgressCallback | None = None) -> list[Path]:
    """Write what ``opts`` asks for; refuses (before writing anything) to replace files unless allowed.

    Returns:
        the paths written.
    """
    from idm_host.midi import write_midi

    plan = planned_files(session, opts)
    if not opts.overwrite:
        existing = [p for p in plan if p.exists()]
        if existing:
            raise IdmError(f"{existing[0]}: already exists ({len(existing)} file(s) in the way); "
                           "choose another folder or name, or tick 'Replace existing files'")
    stage = Stage(progress)
    written: list[Path] = []
    n_steps = max(len(plan), 1)
    step = 0

    def tick(msg: str) -> None:
        nonlocal step
        step += 1
        stage(step / n_steps, msg)

    depth = opts.bit_depth
    if opts.stems:
        st = session.stems
        if st is None:
            raise SessionError("this session keeps no stems; re-separate first")
        if opts.grouping == "groups":
            st = st.merged()
        folder = Path(opts.folder)
        for i, c in enumerate(st.classes):
            p = folder / f"{opts.name}-{c}.{opts.audio_format}"
            written.append(save_audio(p, st.audio[i], st.sample_rate, format=opts.audio_format,
                                      bit_depth=depth, overwrite=opts.overwrite))
            tick(f"stem {c}")
    if opts.mix:
        mix = render_mix(session, progress=None)
        p = Path(opts.folder) / f"{opts.name}-mix.{opts.audio_format}"
        written.append(save_audio(p, mix, session.sample_rate, format=opts.audio_format, bit_depth=depth,
                                  overwrite=opts.overwrite))
        tick("mix")
    if opts.midi:
        p = Path(opts.folder) / f"{opts.name}.mid"
        write_midi(session.transcription(), p, drum_map=opts.drum_map, tempo=session.tempo,
                   overwrite=opts.overwrite)
        written.append(p)
        tick("MIDI")
    if opts.kit:
        for c in session.classes:
            p = Path(opts.folder) / "kit" / f"{c}.{opts.audio_format}"
            written.append(save_audio(p, np.asarray(session.kit[c].one_shot), session.sample_rate,
                                      format=opts.audio_format, bit_depth=depth, overwrite=opts.overwrite))
            tick(f"one-shot {c}")
            synthetic = session.kit[c].synthetic
            if synthetic is not None:  # kit/ plays like the record; kit/synthetic/ is the model's own (as `separate`)
                p = Path(opts.folder) / "kit" / "synthetic" / f"{c}.{opts.audio_format}"
                written.append(save_audio(p, np.asarray(synthetic), session.sample_rate, format=opts.audio_format,
                                          bit_depth=depth, overwrite=opts.overwrite))
                tick(f"synthetic one-shot {c}")
    stage(1.0, "exported")
    return written


def render_mix(session: Session, *, progress: ProgressCallback | None = None) -> np.ndarray:
    """The session rendered by :func:`idm_host.render.render` (hits x kit -> stems -> effects ->
    mixer -> master): float32 ``(channels, frames)``."""
    from idm_host.render import render

    return render(session, progress=progress).mix


def write_temp_midi(session: Session, folder: Path, *, drum_map: str = "gm") -> Path:
    """Write the session's hits to a fresh MIDI file in ``folder`` (for dragging out of the window)."""
    from idm_host.midi import write_midi

    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(session.source.path).stem if session.source.path else "drums"
    p = folder / f"{stem}-drums.mid"
    write_midi(session.transcription(), p, drum_map=drum_map, tempo=session.tempo, overwrite=True)
    return p


def write_temp_stem(session: Session, symbol: str, folder: Path) -> Path:
    """Write one separated stem to a WAV in ``folder`` (for dragging out of the window)."""
    st = session.stems
    if st is None or symbol not in st.classes:
        raise SessionError(f"no separated stem for {symbol}; re-separate first")
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(session.source.path).stem if session.source.path else "drums"
    return save_audio(folder / f"{stem}-{symbol}.wav", st.stem(symbol), st.sample_rate, bit_depth=32, overwrite=True)


def read_midi_hits(path: str | Path, session: Session, *, drum_map: str = "gm"
                   ) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """The hits of a drum MIDI file for ``session``: ``({class: [(time_s, velocity)]}, n_after_end)``;
    hits after the end of the session's audio are counted, not returned."""
    from idm_host.midi import read_midi

    tr = read_midi(path, drum_map=drum_map, classes=session.classes)
    out: dict[str, list[tuple[float, float]]] = {}
    late = 0
    for c in session.classes:
        for h in tr.hits.get(c, ()):
            if h.time_s <= session.duration_s:
                out.setdefault(c, []).append((float(h.time_s), float(h.velocity)))
            else:
                late += 1
    return out, late
