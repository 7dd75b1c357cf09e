"""Kits as plain folders of one-shots, each file named by its drum (and velocity layer).

Imported through :mod:`idm_host.train.kits`, which holds the one loader (:func:`~idm_host.train.kits.load_kit`).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ...audio import AUDIO_SUFFIXES
from .base import (Instrument, KitError, PathLike, _SampleCache, SampledKit, SampleLayer, _add, _finish, note_for_name)

#: The loaders log under the name they had before the split, ``idm_host.train.kits``.
log = logging.getLogger("idm_host.train.kits")

_VEL_NUMBER = re.compile(r"(?:^|[^a-z])(?:v|vel|velocity|layer)[ _-]?(\d+)", re.I)


def load_folder_kit(path: PathLike) -> SampledKit:
    """Load a folder of one-shots named by class: ``kick*.wav``, ``KD_01.wav``, ``snare/*.flac`` ...

    A file is classified by its name (:func:`note_for_name`), else by the name of the folder it is
    in. Several files of one drum are velocity layers when their names carry a layer number
    (``_v1``, ``vel3``: ranges split evenly in number order), else round-robin alternatives.

    Raises:
        KitError: the folder is missing, holds no audio, or no file names a drum class.
    """
    p = Path(path)
    if not p.is_dir():
        raise KitError(f"{p}: not a folder; a one-shot kit is a folder of files such as kick.wav, snare.wav")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise KitError(f"{p}: holds no audio files (.wav, .flac, .aiff, .ogg, .mp3)")
    cache = _SampleCache()
    by_note: dict[int, list[tuple[int | None, np.ndarray, str]]] = {}
    for f in files:
        note = note_for_name(f.stem)
        if note is None and f.parent != p:
            note = note_for_name(f.parent.name)
        if note is None:
            log.debug("%s: %s names no drum class; skipped", p, f.name)
            continue
        samples = cache.load(f, p)
        if samples is None:
            continue
        m = _VEL_NUMBER.search(f.stem)
        by_note.setdefault(note, []).append((int(m.group(1)) if m else None, samples, f.name))
    instruments: dict[int, list[Instrument]] = {}
    for note, entries in by_note.items():
        numbered = sorted({e[0] for e in entries if e[0] is not None})
        layers = []
        for number, samples, _ in entries:
            if number is not None and len(numbered) > 1:
                i = numbered.index(number)
                lo, hi = i / len(numbered), (i + 1) / len(numbered)
            else:
                lo, hi = 0.0, 1.0
            layers.append(SampleLayer(samples, lo, hi))
        _add(instruments, Instrument(entries[0][2], note, tuple(layers)))
    return _finish(p.name, instruments, p, "folder")
