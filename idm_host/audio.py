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
#: File suffixes taken as audio wherever folders are scanned (batch inputs, kit folders, training kits).
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".aif", ".aiff", ".bwf")

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


# ------------------------------------------------------------------------------ completeness
# pedalboard reads a truncated file as if it were whole: a cut WAV or MP3 comes back at its
# declared length with silence after the cut, a cut FLAC as silence throughout, a cut OGG as
# shorter. So each container is checked before it is decoded: the length its header declares (or
# its end-of-stream mark) against what the bytes hold.

class _Incomplete(Exception):
    def __init__(self, readable_s: float | None, declared_s: float | None, where: str = ""):
        super().__init__(where)
        self.readable_s, self.declared_s, self.where = readable_s, declared_s, where


def _riff_check(data: bytes, size: int) -> None:
    big = data[:4] == b"FORM"
    if data[:4] not in (b"RIFF", b"FORM") or len(data) < 12:
        return
    endian = "big" if big else "little"
    pos, fmt = 12, None
    channels = rate = frames = None
    while pos + 8 <= size:
        cid = data[pos:pos + 4]
        n = int.from_bytes(data[pos + 4:pos + 8], endian)
        body = pos + 8
        if cid == b"fmt " and not big and body + 16 <= size:
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            fmt = int.from_bytes(data[body + 12:body + 14], "little")  # block align
        elif cid == b"COMM" and big and body + 18 <= size:
            channels = int.from_bytes(data[body:body + 2], "big")
            frames = int.from_bytes(data[body + 2:body + 6], "big")
            bits = int.from_bytes(data[body + 6:body + 8], "big")
            exp = int.from_bytes(data[body + 8:body + 10], "big") & 0x7FFF
            mant = int.from_bytes(data[body + 10:body + 18], "big")
            rate = int(round(mant * 2.0 ** (exp - 16383 - 63))) if mant else None
            fmt = channels * ((bits + 7) // 8)
        elif cid in (b"data", b"SSND"):
            if not fmt or not rate:
                return  # an unusual layout: leave it to the decoder
            start = body + (8 + int.from_bytes(data[body:body + 4], "big") if cid == b"SSND" else 0)
            declared_bytes = n - (8 if cid == b"SSND" else 0)
            if cid == b"data" and n in (0, 0xFFFFFFFF):
                return  # a streamed WAV that never got its size: nothing to compare
            declared = frames if frames is not None else declared_bytes // fmt
            have = max(0, size - start) // fmt
            if have < declared:
                raise _Incomplete(have / rate, declared / rate)
            return
        pos = body + n + (n & 1)
    if rate and fmt:
        raise _Incomplete(0.0, None, "before its audio data")


_CRC8 = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _CRC8.append(_c)
_CRC16 = []
for _i in range(256):
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x8005) & 0xFFFF if _c & 0x8000 else (_c << 1) & 0xFFFF
    _CRC16.append(_c)


def _crc16(buf: bytes) -> int:
    c = 0
    table = _CRC16
    for b in buf:
        c = ((c << 8) & 0xFFFF) ^ table[(c >> 8) ^ b]
    return c


def _flac_frame_header(buf: bytes, i: int, rate: int, channels: int) -> tuple[int, int, bool] | None:
    """``(number, block size, variable blocking)`` of a valid FLAC frame header at ``buf[i]``, else None."""
    if i + 6 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xFE != 0xF8:
        return None
    variable = bool(buf[i + 1] & 1)
    bs_code, sr_code = buf[i + 2] >> 4, buf[i + 2] & 0x0F
    ch_code, ss_code = buf[i + 3] >> 4, (buf[i + 3] >> 1) & 7
    if bs_code == 0 or sr_code == 15 or ch_code > 10 or ss_code == 3 or buf[i + 3] & 1:
        return None
    if (ch_code + 1 if ch_code < 8 else 2) != channels:
        return None
    j = i + 4
    first = buf[j]
    if first < 0x80:
        extra, number = 0, first
    elif 0xC0 <= first < 0xFE:
        extra = 1
        while first & (0x80 >> (extra + 1)):
            extra += 1
        number = first & (0x3F >> extra)
    else:
        return None
    if j + 1 + extra > len(buf):
        return None
    for k in range(extra):
        b = buf[j + 1 + k]
        if b & 0xC0 != 0x80:
            return None
        number = (number << 6) | (b & 0x3F)
    j += 1 + extra
    if bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code == 6:
        block, j = buf[j] + 1 if j < len(buf) else 0, j + 1
    elif bs_code == 7:
        block, j = int.from_bytes(buf[j:j + 2], "big") + 1, j + 2
    else:
        block = 256 << (bs_code - 8)
    j += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if j >= len(buf):
        return None
    crc = 0
    for b in buf[i:j]:
        crc = _CRC8[crc ^ b]
    if crc != buf[j]:
        return None
    return number, block, variable


def _flac_check(data: bytes, size: int) -> None:
    if data[:4] != b"fLaC":
        return
    pos, info = 4, None
    while True:
        if pos + 4 > size:
            raise _Incomplete(0.0, None, "in its header")
        last, kind = data[pos] & 0x80, data[pos] & 0x7F
        n = int.from_bytes(data[pos + 1:pos + 4], "big")
        if kind == 0 and pos + 4 + 34 <= size:
            info = data[pos + 4:pos + 4 + 34]
        pos += 4 + n
        if last:
            break
    if info is None or pos > size:
        raise _Incomplete(0.0, None, "in its header")
    max_block = int.from_bytes(info[2:4], "big")
    max_frame = int.from_bytes(info[7:10], "big")
    packed = int.from_bytes(info[10:18], "big")
    rate, channels, total = packed >> 44, ((packed >> 41) & 7) + 1, packed & ((1 << 36) - 1)
    if total == 0 or rate == 0:
        return  # length unknown (a streamed FLAC): nothing to compare
    end = size - 128 if size - pos > 128 and data[size - 128:size - 125] == b"TAG" else size
    tail_from = max(pos, end - max(4 * max_frame, 1 << 16) if max_frame else end - (1 << 20))
    tail = bytes(data[tail_from:end])
    readable = None
    i = tail.rfind(b"\xff")
    while i >= 0:
        hdr = _flac_frame_header(tail, i, rate, channels)
        if hdr is not None:
            number, block, variable = hdr
            start = number if variable else number * max_block
            if start < total:
                if start + block >= total and _crc16(tail[i:]) == 0:
                    return  # the last frame is there, whole
                if readable is None:
                    readable = start  # the latest frame found: it may itself be cut, so count it out
        i = tail.rfind(b"\xff", 0, i)
    raise _Incomplete((readable or 0) / rate, total / rate)


_MP3_BITRATES = {  # (mpeg1?, layer) -> kbit/s by index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_BITRATES[(False, 3)] = _MP3_BITRATES[(False, 2)]
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """``(frame bytes, samples per frame, sample rate)`` of an MPEG audio frame header at ``pos``."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    br_index, sr_index, padding = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3, (data[pos + 2] >> 1) & 1
    if version == 1 or layer_bits == 0 or br_index in (0, 15) or sr_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _MP3_BITRATES[(mpeg1, layer)][br_index] * 1000
    rate = _MP3_RATES[version][sr_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    spf = 1152 if (layer == 2 or mpeg1) else 576
    return spf // 8 * bitrate // rate + padding, spf, rate


def _mp3_check(data: bytes, size: int) -> None:
    pos = 0
    if data[:3] == b"ID3" and size >= 10:
        pos = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F))
    first = _mp3_frame(data, pos)
    if first is None:
        return  # not what we parse (free format, junk before the first frame): the decoder decides
    declared = None
    head = data[pos:pos + first[0]]
    tag = max(head.find(b"Xing"), head.find(b"Info"))
    if tag >= 0 and tag + 12 <= len(head) and int.from_bytes(head[tag + 4:tag + 8], "big") & 1:
        declared = int.from_bytes(head[tag + 8:tag + 12], "big")
        pos += first[0]  # the tag frame holds no audio
    spf, rate = first[1], first[2]
    frames = 0
    while pos < size:
        fr = _mp3_frame(data, pos)
        if fr is None:
            break  # a trailing tag (ID3v1, APE) or junk: the audio ends here
        if pos + fr[0] > size:
            raise _Incomplete(frames * spf / rate, (declared or frames + 1) * spf / rate)
        frames += 1
        pos += fr[0]
    if declared is not None and frames < declared:
        raise _Incomplete(frames * spf / rate, declared * spf / rate)


def _ogg_check(data: bytes, size: int) -> None:
    if data[:4] != b"OggS":
        return
    pos, rate, serial, granule, eos = 0, None, None, 0, False
    while pos < size:
        if data[pos:pos + 4] != b"OggS" or pos + 27 > size:
            break
        nseg = data[pos + 26]
        if pos + 27 + nseg > size:
            break
        body = pos + 27 + nseg
        end = body + sum(data[pos + 27:body])
        if end > size:
            break
        page_serial = int.from_bytes(data[pos + 14:pos + 18], "little")
        if serial is None:
            serial = page_serial
            if data[body:body + 7] == b"\x01vorbis" and body + 16 <= size:
                rate = int.from_bytes(data[body + 12:body + 16], "little")
            elif data[body:body + 8] == b"OpusHead":
                rate = 48000
        if page_serial == serial:
            g = int.from_bytes(data[pos + 6:pos + 14], "little", signed=True)
            if g >= 0:
                granule = g
            eos = bool(data[pos + 5] & 0x04)
        pos = end
    if not eos:  # the last page read does not end the stream: the rest is missing
        raise _Incomplete(granule / rate if rate else None, None)


def check_complete(path: PathLike) -> None:
    """Raise :class:`AudioError` if the file at ``path`` is cut short.

    WAV/AIFF: the data chunk's declared size against the bytes present; FLAC: the declared total
    samples against the last whole frame (CRC-checked); MP3: frame by frame against the Xing/Info
    frame count, and a last frame cut in the middle; OGG: the end-of-stream page. Files whose
    header declares no length (streamed WAV/FLAC) pass; so do formats not listed (the decoder
    decides).

    Raises:
        AudioError: naming the file and how much of it is readable.
    """
    import mmap

    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                head = data[:4]
                if head in (b"RIFF", b"FORM"):
                    _riff_check(data, size)
                elif head == b"fLaC":
                    _flac_check(data, size)
                elif head == b"OggS":
                    _ogg_check(data, size)
                elif head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
                    _mp3_check(data, size)
    except _Incomplete as inc:
        if inc.readable_s is None:
            have = "how much is readable is unknown"
        elif inc.declared_s is None:
            have = f"{inc.readable_s:.2f} s are readable"
        else:
            have = f"{inc.readable_s:.2f} s of its {inc.declared_s:.2f} s are readable"
        where = f" {inc.where}" if inc.where else ""
        raise AudioError(f"{p}: the file is cut short{where} ({have}); copy or export it again") from None
    except (OSError, ValueError) as exc:
        raise AudioError(f"{p}: cannot read ({exc})") from exc


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
        AudioError: the file is missing, empty, cut short (:func:`check_complete`), corrupt, not
            audio, or has no frames.

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
    check_complete(p)
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
            fh.flush()
            verify_written(fh.name, arr.shape[1], name=p)
    except IdmError as exc:
        raise AudioError(str(exc)) from exc
    except Exception as exc:  # pedalboard's encoder errors
        raise AudioError(f"{p}: cannot write audio ({exc}; is the disk full?)") from exc
    return p


def verify_written(path: PathLike, frames: int, *, name: PathLike | None = None) -> None:
    """Check that a file just written holds ``frames`` frames, whole.

    pedalboard's FLAC writer reports no error when the disk fills up (or a file size limit is hit):
    it leaves a file of a few bytes. Every file idm-host writes is read back this cheap way.

    Raises:
        AudioError: naming ``name`` (default ``path``).
    """
    from pedalboard.io import AudioFile

    shown = name if name is not None else path
    try:
        check_complete(path)
        with AudioFile(str(path)) as f:
            got = f.frames
    except Exception as exc:
        raise AudioError(f"{shown}: the file was not written whole (is the disk full?)") from exc
    if got != frames:
        raise AudioError(f"{shown}: the file was not written whole ({got} of {frames} frames; is the disk full?)")
