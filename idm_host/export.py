"""Writing a separation to disk, streamed block by block (memory bounded by the block size).

Layout of an output folder::

    OUT/<track>/KD.wav ... (one stem per class, or per 5-group with classes=5)
    OUT/<track>/residual.wav        mixture minus the sum of stems
    OUT/<track>/onsets.json         the transcription (Transcription.to_dict form)
    OUT/<track>/transcription.mid   General MIDI
    OUT/<track>/kit/<CLASS>.wav     the extracted one-shots

Everything is written into a hidden temporary folder beside ``OUT/<track>`` first
(``.<track>.idm-<pid>-<random>.partial``, see :mod:`idm_host.fsutil`) and renamed into place only
when all of it was written and read back whole: a failure, a cancel, SIGTERM or SIGINT leaves
nothing partial and no folder it created; existing files are never replaced without ``overwrite``.
While it writes, ``OUT/.<track>.idm-lock`` is held: a second writer of the same folder fails at
once, and the temporaries a killed writer left are removed by the next one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .audio import save_audio, verify_written
from .classes import GROUPS, group_of
from .errors import AudioError, IdmError
from .fsutil import (FolderLock, atomic_write_text, fsync_dir, make_dirs, make_temp_dir, os_error_text,
                     remove_empty, remove_leftovers, remove_path)
from .progress import ProgressCallback, Stage
from .types import Transcription

FORMATS = ("wav", "flac")


def output_names(classes: tuple[str, ...], merge: bool, fmt: str) -> list[str]:
    stems = GROUPS if merge else classes
    return [f"{c}.{fmt}" for c in stems] + [f"residual.{fmt}", "onsets.json", "transcription.mid"] + [
        f"kit/{c}.wav" for c in classes
    ] + [f"kit/synthetic/{c}.wav" for c in classes]


def write_separation(
    separator,
    audio,
    out_dir: str | os.PathLike,
    *,
    transcription: Transcription | None = None,
    merge: bool = False,
    format: str = "wav",
    bit_depth: int = 24,
    masking: str = "auto",
    alpha: float | None = None,
    drum_map: str = "gm",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    on_ready: Callable[[dict[str, Any], dict[str, list[int]]], None] | None = None,
) -> dict[str, Any]:
    """Separate ``audio`` with ``separator`` and write stems, residual, onsets, MIDI and kit.

    Args:
        separator: a :class:`~idm_host.engine.Separator`.
        audio: a path, :class:`~idm_host.types.Audio` or array (as the engine takes).
        out_dir: the folder to write into (created).
        transcription: hits to use instead of the model's (used exactly).
        merge: write the 5 groups KD/SD/HH/TT/CY instead of the model's classes.
        format: ``"wav"`` or ``"flac"``; ``bit_depth`` 16, 24 or 32 (float, WAV only).
        masking, alpha: as :meth:`~idm_host.engine.Separator.separate`. With adaptive masking,
            ``kit/`` holds the one-shots corrected to sound like the record and ``kit/synthetic/``
            the model's own (otherwise both hold the model's).
        overwrite: replace files that exist; otherwise any existing output raises before work starts.
        on_ready: called with the summary (as returned) and each output's final path -> ``[size,
            mtime_ns]`` once every output is complete in the temporary folder, just before they are
            renamed into place (a batch records the unit there, so that the rename is what commits
            it); if it raises, nothing is renamed.

    Returns:
        A summary: paths written, hit counts per class, durations.

    Raises:
        IdmError: ``out_dir`` is a file or a link, holds outputs (without ``overwrite``), another run
            is writing it (:class:`~idm_host.errors.BusyError`), or the disk is full or read-only.
    """
    fmt = format.lower()
    if fmt not in FORMATS:
        raise AudioError(f"cannot write stems as {format!r}; use wav or flac")
    out = Path(out_dir)
    names = output_names(separator.classes, merge, fmt)
    _check_target(out, names, overwrite)
    created = make_dirs(out.parent)
    try:
        with FolderLock(out):
            remove_leftovers(out, locked=True)
            for old in out.glob(".idm-partial-*") if out.is_dir() else ():  # left by idm-host 0.1's writer
                remove_path(old)
            stage = Stage(progress)
            a, enc, tr, kit = separator.prepare(audio, transcription, kit=None, progress=stage.sub(0.0, 0.35))
            try:
                work = make_temp_dir(out)
            except OSError as exc:
                raise IdmError(f"{out.parent}: cannot write here ({os_error_text(exc)}); "
                               "check the folder's permissions or choose another --out") from exc
            try:
                mode = separator.masking_for(masking, user_hits=transcription is not None, encoded=enc)
                _write_all(separator, work, out, a, tr, kit, merge=merge, fmt=fmt, bit_depth=bit_depth, masking=mode,
                           alpha=alpha, drum_map=drum_map, stage=stage)
                summary = _summary(separator, a, tr, out, merge, [str(out / n) for n in names])
                if on_ready is not None:
                    on_ready(summary, {str(out / n): _stat(work / n) for n in names})
                written = _commit(work, out, names)
                stage(1.0, "done")
            finally:
                if work.exists():
                    remove_path(work)
    except OSError as exc:
        remove_empty(created)
        raise IdmError(f"{out}: cannot write ({os_error_text(exc)}); check space and permissions") from exc
    except BaseException:
        remove_empty(created)
        raise
    return dict(summary, files=written)


def _summary(separator, a, tr, out: Path, merge: bool, files: list[str]) -> dict[str, Any]:
    return {
        "input": str(a.source) if a.source else None,
        "out_dir": str(out),
        "model": separator.model_name,
        "sample_rate": a.sample_rate,
        "channels": a.channels,
        "duration_s": a.duration_s,
        "classes": list(GROUPS if merge else separator.classes),
        "hits": {cl: len(h) for cl, h in tr.hits.items()},
        "files": files,
    }


def _stat(path: Path) -> list[int]:
    """``[size, mtime_ns]`` of a file (a rename keeps both, so the temporary's are the output's)."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _check_target(out: Path, names: list[str], overwrite: bool) -> None:
    """Refuse a target that is a file or a link, holds links where outputs go, or (without
    ``overwrite``) already holds an output; nothing is written through a link."""
    if out.is_symlink():
        raise IdmError(f"{out}: is a link; idm-host writes outputs only into real folders; "
                       "remove the link or choose another --out")
    if out.exists() and not out.is_dir():
        raise IdmError(f"{out}: is a file, not a folder; choose another --out")
    for sub in {Path(n).parent for n in names} - {Path(".")}:
        if (out / sub).is_symlink() or ((out / sub).exists() and not (out / sub).is_dir()):
            raise IdmError(f"{out / sub}: is a link or a file; idm-host writes outputs only into real folders")
    clash = [n for n in names if (out / n).exists() or (out / n).is_symlink()]
    if clash and not overwrite:
        raise IdmError(f"{out / clash[0]}: already exists ({len(clash)} outputs would be replaced); "
                       "pass --overwrite or choose another --out")


def _write_all(separator, work: Path, target: Path, a, tr, kit, *, merge: bool, fmt: str, bit_depth: int, masking: str,
               alpha: float | None, drum_map: str, stage: Stage) -> None:
    """Write every output into ``work`` and read each audio file back (a full disk is an error)."""
    from pedalboard.io import AudioFile

    from .midi import write_midi

    stem_names = list(GROUPS if merge else separator.classes)
    c = a.channels
    depth = 24 if (fmt == "flac" and bit_depth == 32) else bit_depth
    paths = [work / f"{s}.{fmt}" for s in stem_names + ["residual"]]
    writers = []
    try:
        try:
            writers = [AudioFile(str(p), "w", float(a.sample_rate), c, bit_depth=depth) for p in paths]
            group_index = [stem_names.index(group_of(cl)) if merge else i for i, cl in enumerate(separator.classes)]
            plan = separator.fit_adaptive(a, tr, kit) if masking == "adaptive" else None
            for start, stems, residual in separator.iter_blocks(a, tr, kit, masking=masking, alpha=alpha, plan=plan,
                                                                progress=stage.sub(0.35, 0.95)):
                if merge:
                    merged = np.zeros((len(stem_names),) + stems.shape[1:], dtype=np.float32)
                    for i, g in enumerate(group_index):
                        merged[g] += stems[i]
                    stems = merged
                for w, block in zip(writers, list(stems) + [residual]):
                    w.write(np.ascontiguousarray(block))
        finally:
            for w in writers:
                w.close()
    except (RuntimeError, ValueError) as exc:  # pedalboard's writer: "Unable to write data to audio file."
        raise AudioError(f"{target}: cannot write the stems ({exc}); is the disk full?") from exc
    for p in paths:
        verify_written(p, a.n_frames, name=target / p.name)
    stage(0.96, "writing onsets, MIDI and kit")
    atomic_write_text(work / "onsets.json", json.dumps(tr.to_dict(), indent=1))
    write_midi(tr, work / "transcription.mid", drum_map=drum_map)
    adapted = separator.adapted_kit(plan, tr, kit) if plan is not None else kit
    for cl, shot, synthetic in zip(kit.classes, adapted.one_shots, kit.one_shots):
        save_audio(work / "kit" / f"{cl}.wav", shot, kit.sample_rate, bit_depth=24)
        save_audio(work / "kit" / "synthetic" / f"{cl}.wav", synthetic, kit.sample_rate, bit_depth=24)


def _commit(work: Path, out: Path, names: list[str]) -> list[str]:
    """Move the finished outputs into ``out``: one rename of the whole folder when ``out`` is new,
    else file by file (each an atomic replace)."""
    if not out.exists():
        os.rename(work, out)
        fsync_dir(out.parent)
        return [str(out / n) for n in names]
    written = []
    for name in names:
        dst = out / name
        dst.parent.mkdir(exist_ok=True)
        os.replace(work / name, dst)
        written.append(str(dst))
    fsync_dir(out)
    return written
