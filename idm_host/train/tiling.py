"""Whether the same audio gets the same hits wherever it sits: a loop tiled back to back must get, in
every repeat, the hits the loop alone gets (the issue's 10-minute file of the bundled loop found floor
tom, mid tom, ride and crash hits the single loop has none of). :func:`tiling_differences` holds a
:class:`~idm_host.transcriber.Transcriber` to it from its probabilities (the shipped network's test,
``tools/ship_transcriber.py`` and training's ``--tiling-loop`` validation); :func:`tiled_changes`
counts the changes for any transcriber (the transcription benchmark's peer and official weights)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..types import Transcription


def _repeat(times: np.ndarray, r: int, dur: float) -> np.ndarray:
    """The hit times of ``times`` (s, in a loop tiled back to back) that fall in repeat ``r`` of a loop
    ``dur`` long, relative to that repeat's start (a hit 5 ms before a repeat's start counts to it)."""
    return times[(times >= r * dur - 0.005) & (times < (r + 1) * dur - 0.005)] - r * dur


def tiling_differences(transcriber: Any, loop: np.ndarray, *, repeats: int = 20, margin: float = 0.05,
                       separator: Any = None) -> list[str]:
    """Where ``loop`` (mono, 44.1 kHz) tiled ``repeats`` times gets other hits than the loop alone.

    Every hit of the loop alone whose peak clears its class's threshold by ``margin`` must be in
    every repeat within a frame, and a repeat may add nothing but hits whose peak in the loop alone
    lies within ``margin`` of the threshold (those may come and go: the recurrent layers hear the
    loop's ends differently, silence against the next repeat). Returns one line per difference
    (empty: the same hits everywhere), and one where more than 3 kick, snare or closed-hat hits of
    the loop alone lie within the margin (the allowance would hide too much). The shipped network's
    test and ``tools/ship_transcriber.py`` hold a candidate to it. With ``separator`` (a
    :class:`~idm_host.engine.Separator` whose model's IDM head the calibration blends in), the
    head's probabilities for the loop and for the tiled loop are blended in, as the engine does.
    """
    from ..transcriber import FRAME_RATE, SAMPLE_RATE

    loop = np.asarray(loop, dtype=np.float32)
    dur = loop.size / SAMPLE_RATE
    use_head = separator is not None and transcriber.calibration.uses_head(separator.model_sha256)

    def head(x: np.ndarray):
        return separator.onset_head(x, sample_rate=SAMPLE_RATE) if use_head else None

    act = transcriber.blended(transcriber.activations(transcriber.input_of(loop)), head(loop))
    alone = transcriber.transcription_from(act, loop.size)  # what transcribe(loop) gives, from the same activations
    tiled_x = np.tile(loop, repeats)
    tiled = transcriber.transcribe(tiled_x, head=head(tiled_x))
    out: list[str] = []
    near = transcriber.picks(act["prob"], shift=margin)  # what it decides on: a class's or its group's
    for c in transcriber.classes:
        thr = transcriber.decision_threshold(c)
        frames, values = near[c]
        firm = [(int(f), float(v)) for f, v in zip(frames, values) if v >= thr + margin]  # frames in order
        ref = np.array([h.time_s for h in alone.hits[c]])
        got = np.array([h.time_s for h in tiled.hits[c]])
        for r in range(repeats):
            part = _repeat(got, r, dur)
            for f, v in firm:
                t = float(ref[np.argmin(np.abs(ref - f / FRAME_RATE))])
                if np.min(np.abs(part - t), initial=1.0) > 0.0101:
                    out.append(f"{c} at {t:.2f} s (p {v:.2f}, threshold {thr:.2f}) "
                               f"missing in repeat {r}")
            for t in part:
                if not (np.abs(frames / FRAME_RATE - t) <= 0.0151).any():
                    out.append(f"{c} at {t:.2f} s added in repeat {r} (not a hit of the loop alone)")
        if c in ("KD", "SD", "HH_CHH") and len(firm) < len(ref) - 3:  # the allowance must stay small
            out.append(f"{c}: only {len(firm)} of the loop's {len(ref)} hits clear the threshold by {margin}")
    return out


def tiled_changes(transcribe: Callable[[np.ndarray], Transcription], loop: np.ndarray, *, repeats: int = 20,
                  tolerance_s: float = 0.0151) -> dict[str, dict[str, int]]:
    """Per class, how many of the loop alone's hits are missing from the repeats of ``loop`` (mono
    44.1 kHz) tiled ``repeats`` times, and how many hits the repeats add, within ``tolerance_s``
    (a frame and a half of the coarser grid: 15 ms), summed over the repeats. Unlike
    :func:`tiling_differences` it needs no probabilities, so any transcriber can be measured
    (``transcribe``: mono float32 -> :class:`Transcription`); the same audio should get the same hits."""
    loop = np.asarray(loop, dtype=np.float32)
    dur = loop.size / 44100
    alone = transcribe(loop)
    tiled = transcribe(np.tile(loop, repeats))
    out: dict[str, dict[str, int]] = {}
    for c in alone.classes:
        ref = np.array([h.time_s for h in alone.hits[c]])
        got = np.array([h.time_s for h in tiled.hits.get(c, ())])
        missing = added = 0
        for r in range(repeats):
            part = _repeat(got, r, dur)
            missing += sum(1 for t in ref if np.min(np.abs(part - t), initial=1.0) > tolerance_s)
            added += sum(1 for t in part if np.min(np.abs(ref - t), initial=1.0) > tolerance_s)
        out[c] = {"alone": int(ref.size), "missing": int(missing), "added": int(added)}
    return out
