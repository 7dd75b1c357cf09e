"""Writing a separation to disk, streamed block by block (memory bounded by the block size).

Layout of an output folder::

    OUT/<track>/KD.wav ... (one stem per class, or per 5-group with classes=5)
    OUT/<track>/residual.wav        mixture minus the sum of stems
    OUT/<track>/onsets.json         the transcription (Transcription.to_dict form)
    OUT/<track>/transcription.mid   General MIDI
    OUT/<track>/kit/<CLASS>.wav     the extracted one-shots

Everything is written under a hidden temporary folder first and moved into place only when all of
it succeeded: a failure or a cancel leaves nothing partial, and existing files are never replaced
without ``overwrite``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .audio import save_audio
from .classes import GROUPS, group_of
from .errors import AudioError, IdmError
from .fsutil import atomic_write_text
from .progress import ProgressCallback, Stage
from .types import Transcription

FORMATS = ("wav", "flac")


def output_names(classes: tuple[str, ...], merge: bool, fmt: str) -> list[str]:
    stems = GROUPS if merge else classes
    return [f"{c}.{fmt}" for c in stems] + [f"residual.{fmt}", "onsets.json", "transcription.mid"] + [
        f"kit/{c}.wav" for c in classes
    ]


def write_separation(
    separator,
    audio,
    out_dir: str | os.PathLike,
    *,
    transcription: Transcription | None = None,
    merge: bool = False,
    format: str = "wav",
    bit_depth: int = 24,
    masking: str = "wiener",
    alpha: float = 1.0,
    drum_map: str = "gm",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Separate ``audio`` with ``separator`` and write stems, residual, onsets, MIDI and kit.

    Args:
        separator: a :class:`~idm_host.engine.Separator`.
        audio: a path, :class:`~idm_host.types.Audio` or array (as the engine takes).
        out_dir: the folder to write into (created).
        transcription: hits to use instead of the model's (used exactly).
        merge: write the 5 groups KD/SD/HH/TT/CY instead of the model's classes.
        format: ``"wav"`` or ``"flac"``; ``bit_depth`` 16, 24 or 32 (float, WAV only).
        overwrite: replace files that exist; otherwise any existing output raises before work starts.

    Returns:
        A summary: paths written, hit counts per class, durations.
    """
    from .midi import write_midi

    fmt = format.lower()
    if fmt not in FORMATS:
        raise AudioError(f"cannot write stems as {format!r}; use wav or flac")
    out = Path(out_dir)
    names = output_names(separator.classes, merge, fmt)
    clash = [n for n in names if (out / n).exists()]
    if clash and not overwrite:
        raise IdmError(f"{out / clash[0]}: already exists ({len(clash)} outputs would be replaced); "
                       "pass --overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    stage = Stage(progress)
    a, enc, tr, kit = separator.prepare(audio, transcription, kit=None, progress=stage.sub(0.0, 0.35))
    work = Path(tempfile.mkdtemp(prefix=".idm-partial-", dir=out))
    try:
        from pedalboard.io import AudioFile

        stem_names = list(GROUPS if merge else separator.classes)
        c = a.channels
        depth = 24 if (fmt == "flac" and bit_depth == 32) else bit_depth
        writers = [
            AudioFile(str(work / f"{s}.{fmt}"), "w", float(a.sample_rate), c, bit_depth=depth)
            for s in stem_names + ["residual"]
        ]
        try:
            group_index = [stem_names.index(group_of(cl)) if merge else i for i, cl in enumerate(separator.classes)]
            for start, stems, residual in separator.iter_blocks(a, tr, kit, masking=masking, alpha=alpha,
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
        stage(0.96, "writing onsets, MIDI and kit")
        atomic_write_text(work / "onsets.json", json.dumps(tr.to_dict(), indent=1))
        write_midi(tr, work / "transcription.mid", drum_map=drum_map)
        for cl, shot in zip(kit.classes, kit.one_shots):
            save_audio(work / "kit" / f"{cl}.wav", shot, kit.sample_rate, bit_depth=24)
        written = []
        for name in names:
            dst = out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / name, dst)
            written.append(str(dst))
        stage(1.0, "done")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "input": str(a.source) if a.source else None,
        "out_dir": str(out),
        "model": separator.model_name,
        "sample_rate": a.sample_rate,
        "channels": a.channels,
        "duration_s": a.duration_s,
        "classes": list(GROUPS if merge else separator.classes),
        "hits": {cl: len(h) for cl, h in tr.hits.items()},
        "files": written,
    }
