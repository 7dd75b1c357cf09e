"""Audio file I/O on :class:`pedalboard.io.AudioFile`.

Reads every format pedalboard reads (WAV, FLAC, MP3, OGG, AIFF), any rate (resampled to the model
rate), mono or stereo; writes WAV/FLAC at 16/24-bit or float atomically (temporary file, then
``os.replace``), never overwriting unless asked.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Union

import numpy as np

from .errors import AudioError, IdmError
from .fsutil import atomic_file
from .types import Audio

log = logging.getLogger(__name__)

#: The model's sample rate (Hz).
MODEL_SAMPLE_RATE = 44100
#: Longest input read in one go (s). Longer files are still read: the engine chunks them.
WRITE_FORMATS = ("wav", "flac")
BIT_DEPTHS = (16, 24, 32)

PathLike = Union[str, os.PathLike]


def file_sha256(path: PathLike, *, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_size), b""):
            h.update(block)
    return h.hexdigest()


#: Samples of delay an MP3 decoder adds on top of the encoder delay written in the LAME tag.
MP3_DECODER_DELAY = 529


def mp3_gapless_info(path: PathLike) -> tuple[int, int] | None:
    """``(samples to skip at the start, samples to drop at the end)`` from an MP3's LAME/Info tag.

    MP3 encoders pad the start and end of the stream; decoders (pedalboard's too) return that
    padding, which would shift every onset by ~25 ms. Returns ``None`` when the file has no such tag.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    pos = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        pos = 10 + size
        if pos >= len(head):
            with open(path, "rb") as f:
                f.seek(pos)
                head = f.read(1 << 12)
            pos = 0
    frame = head[pos:pos + 1024]
    if len(frame) < 4 or frame[0] != 0xFF or (frame[1] & 0xE0) != 0xE0:
        return None
    tag = max(frame.find(b"Xing"), frame.find(b"Info"))
    if tag < 0:
        return None
    enc = -1
    for name in (b"LAME", b"Lavc", b"Lavf", b"GOGO"):
        enc = frame.find(name, tag)
        if enc >= 0:
            break
    if enc < 0 or enc + 24 > len(frame):
        return None
    d = frame[enc + 21:enc + 24]
    delay = (d[0] << 4) | (d[1] >> 4)
    padding = ((d[1] & 0x0F) << 8) | d[2]
    return delay + MP3_DECODER_DELAY, max(0, padding - MP3_DECODER_DELAY)


def load_audio(
    path: PathLike,
    *,
    sample_rate: int | None = MODEL_SAMPLE_RATE,
    mono: bool = False,
) -> Audio:
    """Read an audio file.

    Args:
        path: any file pedalboard reads (WAV, FLAC, MP3, OGG, AIFF).
        sample_rate: resample to this rate (Hz); ``None`` keeps the file's rate.
        mono: mix down to one channel (the mean of the channels).

    Returns:
        :class:`Audio` with float32 ``(channels, frames)`` samples, the file path and its sha256.

    Raises:
        AudioError: the file is missing, empty, corrupt, not audio, or has no frames.

    Example:
        >>> audio = load_audio("loop.flac")            # doctest: +SKIP
        >>> audio.samples.shape, audio.sample_rate     # doctest: +SKIP
        ((2, 441000), 44100)
    """
    from pedalboard.io import AudioFile

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes); export the audio again")
    gapless = mp3_gapless_info(p) if p.suffix.lower() == ".mp3" else None
    try:
        with AudioFile(str(p)) as f:
            native_rate = int(round(f.samplerate))
            if f.frames <= 0:
                raise AudioError(f"{p}: the file holds no audio frames")
            if gapless is not None:
                samples = f.read(f.frames)
                skip, drop = gapless
                if skip + drop < samples.shape[-1]:
                    samples = samples[..., skip:samples.shape[-1] - drop]
                rate = native_rate
            elif sample_rate is not None and native_rate != sample_rate:
                with f.resampled_to(float(sample_rate)) as r:
                    samples = r.read(r.frames)
                rate = int(sample_rate)
            else:
                samples = f.read(f.frames)
                rate = native_rate
    except AudioError:
        raise
    except Exception as exc:  # pedalboard raises ValueError/RuntimeError with varied messages
        raise AudioError(
            f"{p}: cannot decode audio ({exc}); supported formats are WAV, FLAC, MP3, OGG and AIFF"
        ) from exc
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    if gapless is not None and sample_rate is not None and rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
        rate = int(sample_rate)
    if samples.shape[1] == 0:
        raise AudioError(f"{p}: the file holds no audio frames")
    if not np.isfinite(samples).all():
        raise AudioError(f"{p}: the file contains NaN or infinite samples")
    if mono and samples.shape[0] > 1:
        samples = samples.mean(axis=0, keepdims=True, dtype=np.float32)
    return Audio(samples, rate, p, file_sha256(p))


def as_audio(audio: "Audio | PathLike | np.ndarray", sample_rate: int | None = None) -> Audio:
    """Coerce a path, an :class:`Audio` or an array (with ``sample_rate``) into :class:`Audio`.

    Arrays may be ``(frames,)`` or ``(channels, frames)``; they are not resampled here.
    """
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, sample_rate=None)
    try:
        import torch

        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(audio, dtype=np.float32)
    if sample_rate is None:
        raise AudioError("an array was given without sample_rate; pass sample_rate=44100 (Hz)")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise AudioError(f"audio array has shape {arr.shape}; expected (frames,) or (channels, frames)")
    if arr.shape[0] > arr.shape[1]:
        raise AudioError(
            f"audio array has shape {arr.shape}: more channels than frames; pass (channels, frames)"
        )
    if arr.shape[1] == 0:
        raise AudioError("audio array has no frames")
    if not np.isfinite(arr).all():
        raise AudioError("audio array contains NaN or infinite samples")
    return Audio(np.ascontiguousarray(arr), int(sample_rate))


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 ``(channels, frames)`` with pedalboard's windowed-sinc resampler."""
    if from_rate == to_rate:
        return samples
    from pedalboard.io import AudioFile
    import io

    buf = io.BytesIO()
    with AudioFile(buf, "w", from_rate, samples.shape[0], format="wav", bit_depth=32) as f:
        f.write(samples)
    buf.seek(0)
    with AudioFile(buf) as f, f.resampled_to(float(to_rate)) as r:
        return np.ascontiguousarray(r.read(r.frames), dtype=np.float32)


def to_model_rate(audio: Audio, sample_rate: int = MODEL_SAMPLE_RATE) -> Audio:
    """``audio`` at ``sample_rate`` (resampled if needed)."""
    if audio.sample_rate == sample_rate:
        return audio
    return Audio(resample(audio.samples, audio.sample_rate, sample_rate), sample_rate, audio.source, audio.sha256)


def save_audio(
    path: PathLike,
    samples: np.ndarray,
    sample_rate: int,
    *,
    format: str | None = None,
    bit_depth: int = 24,
    overwrite: bool = False,
) -> Path:
    """Write float32 ``(channels, frames)`` (or ``(frames,)``) atomically.

    Args:
        path: destination; its suffix chooses the format unless ``format`` is given.
        sample_rate: in Hz.
        format: ``"wav"`` or ``"flac"``.
        bit_depth: 16, 24 or 32 (32 = float for WAV; FLAC stores at most 24).
        overwrite: replace an existing file; otherwise an existing file raises.

    Raises:
        AudioError: the file exists (without ``overwrite``), or the format or depth is unsupported.
    """
    from pedalboard.io import AudioFile

    p = Path(path)
    fmt = (format or p.suffix.lstrip(".") or "wav").lower()
    if fmt not in WRITE_FORMATS:
        raise AudioError(f"{p}: cannot write format {fmt!r}; use one of {', '.join(WRITE_FORMATS)}")
    if bit_depth not in BIT_DEPTHS:
        raise AudioError(f"{p}: bit depth {bit_depth} is not supported; use 16, 24 or 32 (float)")
    if fmt == "flac" and bit_depth == 32:
        bit_depth = 24
    if p.exists() and not overwrite:
        raise AudioError(f"{p}: already exists; choose another name or allow overwriting")
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    try:
        with atomic_file(p, overwrite=overwrite, suffix=f".{fmt}.part") as fh:
            with AudioFile(fh, "w", float(sample_rate), arr.shape[0], format=fmt, bit_depth=bit_depth) as f:
                f.write(np.ascontiguousarray(arr))
    except IdmError as exc:
        raise AudioError(str(exc)) from exc
    except Exception as exc:  # pedalboard's encoder errors
        raise AudioError(f"{p}: cannot write audio ({exc})") from exc
    return p
