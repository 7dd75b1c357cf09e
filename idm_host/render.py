"""Rendering: hits x kit -> per-class stems -> per-class effect chains -> mix.

For each class, every hit at ``time_s`` starts the class's one-shot at sample
``round(time_s * sample_rate)``, scaled by ``level x 10**(gain_db/20) x curve(velocity)`` (see
:class:`~idm_host.session.KitSlot`); this is the convolution of a velocity impulse train with the
one-shot, computed by FFT (padded to a power of two) when hits are dense and by direct overlap-add
when they are sparse (the cheaper of the two; both give the same sum). With the model's extracted
kit and track gains this reproduces the engine's synthetic stems.

Then, per class: choke (an open hat's ring is cut, with a 5 ms fade, at the next hit of a class
that chokes it), blend with the separated stem (``sample``: only the sample; ``layer``: sample plus
stem; ``replace``: sample, and the stem muted around each hit but kept between hits), the effect
chain (fresh plugin instances for every render), then the mixer: the fader (``gain_db``), mute/solo
and pan (constant-power law, unity at centre: see :func:`pan_gains`). The sum goes through the
master chain, the master fader and the master mute.

The mixer is :func:`mix_strip` and :func:`master_gain`, used by every path that makes sound: the
GUI's stem preview is ``render(session, source="stems", effects=False)`` (the separated stems
instead of hits x kit), and export, ``idm-host render`` and the OSC ``/idm/render`` call
:func:`render` too, so what is heard is what is exported.

Example:
    >>> out = render(session)                                       # doctest: +SKIP
    >>> export_stems(out, "remix/", format="flac", bit_depth=24)     # doctest: +SKIP
    >>> audition = render(session, classes=["SD"], start_s=10, end_s=20)  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import AudioError, IdmError
from .levels import db_to_gain
from .progress import ProgressCallback, Stage

log = logging.getLogger(__name__)

#: Fade applied where a choke cuts a ring, and at the edges of the ``replace`` gate (s).
CHOKE_FADE_S = 0.005
GATE_FADE_S = 0.002
#: Class effect chains skip silences longer than this and keep this much tail (s); see render().
DEFAULT_TAIL_S = 4.0


@dataclass(frozen=True)
class Render:
    """A rendered session (or part of one).

    Attributes:
        classes: the class symbols rendered, one per stem.
        stems: float32 ``(classes, channels, frames)``: each class after its effects, fader and pan.
        mix: float32 ``(channels, frames)``: the sum (with the residual strip, if it plays) after the
            master chain and fader.
        sample_rate: in Hz.
        start_s: the time of the first frame in the session (s).
    """

    classes: tuple[str, ...]
    stems: np.ndarray
    mix: np.ndarray
    sample_rate: int
    start_s: float = 0.0

    @property
    def n_frames(self) -> int:
        return int(self.mix.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.mix.shape[0])

    def stem(self, symbol: str) -> np.ndarray:
        return self.stems[self.classes.index(symbol)]


# ----------------------------------------------------------------------------------- hits x shot
def _fast_len(n: int) -> int:
    return 1 << max(0, int(math.ceil(math.log2(max(n, 1)))))


def render_hits(
    frames: np.ndarray,
    gains: np.ndarray,
    one_shot: np.ndarray,
    n_frames: int,
    *,
    method: str = "auto",
) -> np.ndarray:
    """Place ``one_shot`` at each start frame with each gain and sum: float32 ``(n_frames,)``.

    Equivalent to the linear convolution of an impulse train (``gains`` at ``frames``) with
    ``one_shot``, truncated to ``n_frames``. Start frames may be negative (the hit started before
    the window: only its tail sounds).

    Args:
        frames: int start frames ``(hits,)``.
        gains: linear gains ``(hits,)``.
        one_shot: float32 ``(samples,)``.
        n_frames: output length.
        method: ``"fft"`` (FFT convolution padded to a power of two), ``"direct"`` (overlap-add)
            or ``"auto"`` (the cheaper).
    """
    frames = np.asarray(frames, dtype=np.int64)
    gains = np.asarray(gains, dtype=np.float64)
    shot = np.asarray(one_shot, dtype=np.float32)
    out = np.zeros(n_frames, dtype=np.float32)
    L = shot.size
    keep = (frames < n_frames) & (frames + L > 0) & (gains != 0)
    frames, gains = frames[keep], gains[keep]
    if frames.size == 0 or n_frames == 0:
        return out
    if method == "auto":
        n_fft = _fast_len(n_frames + L)
        direct_cost = frames.size * L
        fft_cost = 3 * n_fft * math.log2(n_fft) * 1.5
        method = "direct" if direct_cost <= fft_cost else "fft"
    if method == "direct":
        for f, g in zip(frames.tolist(), gains.tolist()):
            a, b = max(f, 0), min(f + L, n_frames)
            out[a:b] += np.float32(g) * shot[a - f:b - f]
        return out
    if method != "fft":
        raise IdmError(f"render method {method!r} is unknown; use auto, fft or direct")
    # hits that began before the window: fold them in directly, the FFT takes the rest
    early = frames < 0
    for f, g in zip(frames[early].tolist(), gains[early].tolist()):
        b = min(f + L, n_frames)
        out[:b] += np.float32(g) * shot[-f:b - f]
    frames, gains = frames[~early], gains[~early]
    if frames.size:
        n_fft = _fast_len(n_frames + L - 1)
        train = np.zeros(n_fft, dtype=np.float64)
        np.add.at(train, frames, gains)
        spec = np.fft.rfft(train) * np.fft.rfft(shot.astype(np.float64), n_fft)
        out += np.fft.irfft(spec, n_fft)[:n_frames].astype(np.float32)
    return out


def tuned(one_shot: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """A one-shot played ``semitones`` higher like a sampler does (pitch and length change together)."""
    if semitones == 0:
        return one_shot
    from .audio import resample

    ratio = 2.0 ** (semitones / 12.0)
    # the sample plays as if it had been recorded at sample_rate * ratio
    return resample(np.asarray(one_shot, np.float32)[None, :], int(round(sample_rate * ratio)), sample_rate)[0]


def _choke_ends(frames: np.ndarray, chokers: np.ndarray, L: int) -> np.ndarray:
    """For each start frame, how many samples play before the next choking hit (at most L)."""
    if chokers.size == 0:
        return np.full(frames.shape, L, dtype=np.int64)
    idx = np.searchsorted(chokers, frames, side="right")
    nxt = np.where(idx < chokers.size, chokers[np.minimum(idx, chokers.size - 1)], np.iinfo(np.int64).max)
    return np.minimum(nxt - frames, L)


def _render_choked(frames, gains, shot, n_frames, ends, fade_n) -> np.ndarray:
    out = np.zeros(n_frames, dtype=np.float32)
    L = shot.size
    for f, g, e in zip(frames.tolist(), gains.tolist(), ends.tolist()):
        if e <= 0:
            continue
        seg = np.float32(g) * shot[:e]
        if e < L:  # cut: fade out over the last fade_n samples before the choking hit
            n = min(fade_n, e)
            seg = seg.copy()
            seg[e - n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        a, b = max(f, 0), min(f + e, n_frames)
        if b > a:
            out[a:b] += seg[a - f:b - f]
    return out


def _replace_gate(frames: np.ndarray, holds: np.ndarray, n_frames: int, fade_n: int) -> np.ndarray:
    """1 everywhere except around each hit: a fade down over ``fade_n`` samples before it, 0 for
    ``hold`` samples from it, a fade up after; float32 ``(n_frames,)``."""
    gate = np.ones(n_frames, dtype=np.float32)
    down = np.linspace(1.0, 0.0, fade_n + 2, dtype=np.float32)[1:-1]
    up = down[::-1].copy()

    def put(a: int, ramp: np.ndarray) -> None:
        lo, hi = max(a, 0), min(a + ramp.size, n_frames)
        if hi > lo:
            np.minimum(gate[lo:hi], ramp[lo - a:hi - a], out=gate[lo:hi])

    for f, h in zip(frames.tolist(), holds.tolist()):
        put(f - fade_n, down)
        lo, hi = max(f, 0), min(f + h, n_frames)
        if hi > lo:
            gate[lo:hi] = 0.0
        put(f + h, up)
    return gate


# ------------------------------------------------------------------------------------- one class
def _class_track(session: Any, cls: str, start_frame: int, n_frames: int, shots: dict[str, np.ndarray]) -> np.ndarray:
    """The dry track of one class (before effects): float32 ``(channels, n_frames)``."""
    sr = session.sample_rate
    slot = session.kit[cls]
    shot = shots[cls]
    L = shot.size
    hits = session.hits[cls]
    times = np.array([h.time_s for h in hits], dtype=np.float64)
    vel = np.array([h.velocity for h in hits], dtype=np.float64)
    all_frames = np.round(times * sr).astype(np.int64)
    gains = slot.level * db_to_gain(slot.gain_db) * np.asarray(slot.velocity_gain(vel), dtype=np.float64)
    rel = all_frames - start_frame
    if slot.choked_by:
        chokers = np.sort(np.concatenate([np.round(np.array([h.time_s for h in session.hits[c]]) * sr)
                                          .astype(np.int64) for c in slot.choked_by] + [np.zeros(0, np.int64)]))
        ends = _choke_ends(all_frames, chokers, L)
        sample = _render_choked(rel, gains, shot, n_frames, ends, max(1, int(CHOKE_FADE_S * sr)))
    else:
        sample = render_hits(rel, gains, shot, n_frames)
    track = sample[None, :]
    stems = session.stems
    if slot.blend != "sample":
        if stems is None or cls not in stems.classes:
            log.warning("%s: blend %r needs the separated stems, which this session does not keep; "
                        "playing the sample only", cls, slot.blend)
            return track
        stem = stems.stem(cls)[:, start_frame:start_frame + n_frames]
        if stem.shape[1] < n_frames:
            stem = np.pad(stem, ((0, 0), (0, n_frames - stem.shape[1])))
        stem = stem * np.float32(db_to_gain(slot.stem_gain_db))
        if slot.blend == "replace":
            order = np.argsort(all_frames)
            fr = all_frames[order]
            gaps = np.diff(np.r_[fr, np.iinfo(np.int64).max // 2])
            holds = np.minimum(gaps, L)
            stem = stem * _replace_gate(fr - start_frame, holds, n_frames, max(1, int(GATE_FADE_S * sr)))[None, :]
        track = track + stem
    return np.ascontiguousarray(track, dtype=np.float32)


def pan_gains(pan: float) -> tuple[float, float]:
    """Left and right gains of the constant-power pan law, unity at centre.

    ``theta = (pan + 1) * pi / 4``; ``left = sqrt(2) cos(theta)``, ``right = sqrt(2) sin(theta)``:
    ``left**2 + right**2 == 2`` for every pan, so a panned class keeps its loudness; centre (0)
    leaves both channels at 1, hard left (-1) gives ``(sqrt(2), 0)``.

    Example:
        >>> [round(g, 4) for g in pan_gains(0.0)], [round(g, 4) for g in pan_gains(-1.0)]
        ([1.0, 1.0], [1.4142, 0.0])
    """
    theta = (float(pan) + 1.0) * math.pi / 4.0
    left, right = math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)
    return (1.0, 1.0) if pan == 0.0 else (left, right)


def audible_strips(mixer: Any, strips: Iterable[str]) -> set[str]:
    """The strips of ``strips`` that sound: not muted, and soloed when any strip (a class or the
    residual; the master has no solo) is."""
    from .session import MASTER

    any_solo = any(m.solo for name, m in mixer.items() if name != MASTER)
    return {c for c in strips if not mixer[c].mute and (mixer[c].solo or not any_solo)}


def mix_strip(x: np.ndarray, strip: Any, channels: int, out: np.ndarray | None = None) -> np.ndarray:
    """One strip through its fader and pan: ``x`` ``(1 or 2, n)`` -> ``(channels, n)`` float32.

    Mono output takes the mean of a stereo track (pan does not apply); stereo output spreads a mono
    track to both sides, then applies :func:`pan_gains` to each side. Mute and solo are decided by
    :func:`audible_strips`; this only shapes the sound of a strip that plays.
    """
    gain = db_to_gain(strip.gain_db)
    if out is None:
        out = np.empty((channels, x.shape[-1]), dtype=np.float32)
    if channels == 1:
        src = x if x.shape[0] == 1 else x.mean(axis=0, keepdims=True, dtype=np.float32)
        np.multiply(src, np.float32(gain), out=out)
        return out
    left, right = pan_gains(strip.pan)
    np.multiply(x[0], np.float32(gain * left), out=out[0])
    np.multiply(x[1] if x.shape[0] > 1 else x[0], np.float32(gain * right), out=out[1])
    return out


def master_gain(mixer: Any) -> float:
    """The master fader as a factor, 0 when the master is muted."""
    from .session import MASTER

    m = mixer[MASTER]
    return 0.0 if m.mute else db_to_gain(m.gain_db)


def _stem_track(session: Any, cls: str, start_frame: int, n_frames: int) -> np.ndarray:
    """The separated stem of ``cls`` over the range, zero-padded: float32 ``(channels, n_frames)``."""
    st = session.stems
    x = st.stem(cls)[:, start_frame:start_frame + n_frames]
    if x.shape[1] < n_frames:
        x = np.pad(x, ((0, 0), (0, n_frames - x.shape[1])))
    return np.ascontiguousarray(x, dtype=np.float32)


def _effects_doc(strip: Any) -> Any:
    eff = strip.effects
    if eff is None:
        return None
    from .fx import resolve_chain

    doc = resolve_chain(eff)
    return doc if doc["effects"] else None


def _active_runs(x: np.ndarray, gap_n: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` spans of ``x`` (channels, n) holding non-zero samples, joined across
    silent gaps shorter than ``gap_n``."""
    nz = np.flatnonzero(np.any(x != 0, axis=0))
    if nz.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(nz) > gap_n)
    starts = np.r_[nz[0], nz[breaks + 1]]
    ends = np.r_[nz[breaks] + 1, nz[-1] + 1]
    return list(zip(starts.tolist(), ends.tolist()))


#: Effects whose output does not depend on absolute time (no LFO, no block or resampling phase):
#: only chains made of these may skip silence.
TIME_INVARIANT = frozenset({"Bitcrush", "Clipping", "Compressor", "Convolution", "Delay", "Distortion", "Gain",
                            "HighShelfFilter", "HighpassFilter", "Invert", "LadderFilter", "Limiter",
                            "LowShelfFilter", "LowpassFilter", "NoiseGate", "PeakFilter", "Reverb"})


def _time_invariant(effects: Iterable[Any]) -> bool:
    for e in effects:
        if e["type"] == "Mix":
            if not all(_time_invariant(c) for c in e["chains"]):
                return False
        elif e["type"] == "Chain":
            if not _time_invariant(e["effects"]):
                return False
        elif e["type"] not in TIME_INVARIANT:
            return False
    return True


def _process_chain(doc: Any, x: np.ndarray, sample_rate: int, tail_s: float | None = None) -> np.ndarray:
    """Run ``x`` through a fresh chain built from ``doc``.

    With ``tail_s`` and a chain of :data:`TIME_INVARIANT` effects, stretches of digital silence
    longer than ``tail_s`` are skipped: each active span is processed from a reset chain and keeps
    ``tail_s`` of its effects' tail (faster for sparse tracks; the difference is what the effects
    still ring after ``tail_s`` of silence: below -100 dB for the shipped presets at 4 s).
    """
    if doc is None:
        return x
    from .fx import EffectChain

    with EffectChain(doc) as chain:  # fresh plugin instances for every job
        if tail_s is None or not _time_invariant(doc["effects"]):
            return np.ascontiguousarray(chain.process(x, sample_rate), dtype=np.float32)
        n = x.shape[1]
        tail_n = int(tail_s * sample_rate)
        runs = _active_runs(x, tail_n)
        if not runs:
            return np.ascontiguousarray(chain.process(x, sample_rate), dtype=np.float32)
        covered = sum(min(b + tail_n, n) - a for a, b in runs)
        if len(runs) == 1 and covered >= 0.9 * n:
            return np.ascontiguousarray(chain.process(x, sample_rate), dtype=np.float32)
        out = np.zeros_like(x, dtype=np.float32)
        for a, b in runs:
            b = min(b + tail_n, n)
            y = np.asarray(chain.process(np.ascontiguousarray(x[:, a:b]), sample_rate, reset=True), dtype=np.float32)
            out[:, a:b] = y[:, : b - a]
        return out


# ----------------------------------------------------------------------------------------- render
def render(
    session: Any,
    *,
    classes: Iterable[str] | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    channels: int | None = None,
    effects: bool = True,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    tail_s: float | None = DEFAULT_TAIL_S,
    source: str = "kit",
) -> Render:
    """Render a session (or one class / a time range of it, for audition).

    Args:
        session: a :class:`~idm_host.session.Session`.
        classes: render only these classes (mute and solo still apply among them); default all.
        start_s: start of the range (s); hits before it ring into the range.
        end_s: end of the range (s); default the session's duration.
        channels: 1 or 2; default 2 when the source is stereo or any class is panned, else 1.
        effects: run the class and master effect chains.
        progress: ``progress(fraction, message)``; may raise :class:`~idm_host.errors.Cancelled`.
        workers: threads for the class chains (pedalboard releases the GIL); default the CPU count (max 4).
        tail_s: class chains skip digital silence longer than this (s), keeping this much of each
            effect tail; ``None`` processes every track whole (exact, slower on sparse classes).
        source: ``"kit"`` (hits x kit, blended with the stems as each slot says) or ``"stems"``
            (the separated stems as they are: the GUI's stem preview); the mixer is the same.

    Returns:
        a :class:`Render` with post-fader stems and the mix.

    Raises:
        IdmError: an unknown class or an invalid range; PresetError for a broken effect chain.
    """
    from .session import MASTER, RESIDUAL

    sr = session.sample_rate
    wanted = tuple(session.classes if classes is None else classes)
    for c in wanted:
        if c not in session.classes:
            raise IdmError(f"class {c!r} is not in this session; use one of {', '.join(session.classes)}")
    end_s = session.duration_s if end_s is None else float(end_s)
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        raise IdmError(f"render range {start_s}..{end_s} s is invalid; use 0 <= start < end")
    start_frame = int(round(start_s * sr))
    n_frames = int(round(end_s * sr)) - start_frame
    mixer = session.mixer
    if channels is None:
        stereo_src = session.source.channels > 1 or (session.stems is not None and session.stems.audio.shape[1] > 1)
        channels = 2 if stereo_src or any(mixer[c].pan != 0.0 for c in session.classes) else 1
    if channels not in (1, 2):
        raise IdmError(f"channels={channels} is not supported; use 1 (mono) or 2 (stereo)")
    if source not in ("kit", "stems"):
        raise IdmError(f"render source {source!r} is unknown; use 'kit' or 'stems'")
    if source == "stems" and session.stems is None:
        from .errors import SessionError

        raise SessionError("this session keeps no stems; analyse the audio again or re-separate")
    stage = Stage(progress)
    sounding = audible_strips(mixer, wanted + (RESIDUAL,))
    audible = [c for c in wanted if c in sounding]
    play_residual = classes is None and session.stems is not None and RESIDUAL in sounding
    shots = {c: tuned(session.kit[c].one_shot, session.kit[c].tune_semitones, sr)
             for c in (audible if source == "kit" else ())}
    docs = {c: (_effects_doc(mixer[c]) if effects else None) for c in audible}

    stems = np.zeros((len(wanted), channels, n_frames), dtype=np.float32)
    mix = np.zeros((channels, n_frames), dtype=np.float32)

    def one(c: str) -> None:
        if source == "stems":
            x = _stem_track(session, c, start_frame, n_frames)
        else:
            x = _class_track(session, c, start_frame, n_frames, shots)
        x = _process_chain(docs[c], x, sr, tail_s)
        mix_strip(x, mixer[c], channels, out=stems[wanted.index(c)])  # each class writes only its own row

    n_workers = workers or min(4, os.cpu_count() or 1)
    done = 0
    if n_workers > 1 and len(audible) > 1:
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="idm-render") as pool:
            futures = {c: pool.submit(one, c) for c in audible}
            for c in audible:
                futures[c].result()
                mix += stems[wanted.index(c)]
                done += 1
                stage(0.9 * done / max(1, len(audible)), f"rendered {c}")
    else:
        for c in audible:
            one(c)
            mix += stems[wanted.index(c)]
            done += 1
            stage(0.9 * done / max(1, len(audible)), f"rendered {c}")
    if play_residual:
        res = session.stems.residual[:, start_frame:start_frame + n_frames]
        res = np.pad(res, ((0, 0), (0, n_frames - res.shape[1])))
        res = _process_chain(_effects_doc(mixer[RESIDUAL]) if effects else None, res, sr)
        mix = mix + mix_strip(res, mixer[RESIDUAL], channels)
    if effects:
        mix = _process_chain(_effects_doc(mixer[MASTER]), mix, sr)
    master = master_gain(mixer)
    if master != 1.0:
        mix = (mix * np.float32(master)).astype(np.float32)
    stage(1.0, "mixed")
    return Render(wanted, stems, np.ascontiguousarray(mix), sr, start_frame / sr)


def export_stems(
    result: Render,
    out_dir: "str | os.PathLike",
    *,
    format: str = "wav",
    bit_depth: int = 24,
    overwrite: bool = False,
    mix: bool = True,
    name: str = "{stem}.{ext}",
) -> list[Path]:
    """Write each stem (``<CLASS>.wav``) and the mix (``mix.wav``) into ``out_dir``.

    Args:
        format: ``"wav"`` or ``"flac"``.
        bit_depth: 16, 24 or 32 (float; WAV only).
        overwrite: replace existing files; otherwise nothing is written if any target exists.
        name: file name template with ``{stem}`` and ``{ext}``.

    Raises:
        AudioError: a target exists (without ``overwrite``), or the format/depth is unsupported.
    """
    from .audio import WRITE_FORMATS, save_audio

    fmt = format.lower()
    if fmt not in WRITE_FORMATS:
        raise AudioError(f"cannot write format {format!r}; use one of {', '.join(WRITE_FORMATS)}")
    if fmt == "flac" and bit_depth == 32:
        raise AudioError("FLAC stores at most 24-bit; use --format wav for 32-bit float")
    out = Path(out_dir)
    items = [(c, result.stems[i]) for i, c in enumerate(result.classes)]
    if mix:
        items.append(("mix", result.mix))
    targets = [(out / name.format(stem=c, ext=fmt), x) for c, x in items]
    if not overwrite:
        existing = [str(p) for p, _ in targets if p.exists()]
        if existing:
            raise AudioError(f"{existing[0]}: already exists ({len(existing)} file(s) in all); "
                             "choose another folder or pass --overwrite")
    written = []
    for p, x in targets:
        written.append(save_audio(p, x, result.sample_rate, format=fmt, bit_depth=bit_depth, overwrite=overwrite))
    return written


def render_synthetic_stems(session: Any) -> np.ndarray:
    """The model's synthetic stems re-made from the session's hits and extracted kit (no fx, no
    mixer, no blends): float32 ``(classes, frames)``; a check against the engine's stems."""
    sr = session.sample_rate
    n = int(round(session.duration_s * sr))
    out = np.zeros((len(session.classes), n), dtype=np.float32)
    for k, c in enumerate(session.classes):
        shot, gain = session.extracted_one_shot(c)
        hits = session.hits[c]
        frames = np.round(np.array([h.time_s for h in hits]) * sr).astype(np.int64)
        out[k] = render_hits(frames, gain * np.array([h.velocity for h in hits]), shot, n)
    return out


#: ``idm_host.render_session``: the package cannot export ``render`` itself, because the submodule
#: ``idm_host.render`` takes that attribute once imported.
render_session = render

__all__ = ["Render", "render", "render_session", "render_hits", "export_stems", "render_synthetic_stems", "tuned",
           "pan_gains", "audible_strips", "mix_strip", "master_gain"]
