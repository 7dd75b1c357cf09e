"""Audio I/O through pedalboard: formats x rates x channels, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from idm_host.audio import as_audio, load_audio, save_audio
from idm_host.errors import AudioError


def _write(path, x, rate, **kw):
    with AudioFile(str(path), "w", rate, x.shape[0], **kw) as f:
        f.write(x)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "aiff", "mp3"])
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_reads_every_format_rate_and_channel_count(tmp_path, signals, fmt, rate, channels):
    x = np.stack([signals.sine(440 * (c + 1), 0.5, sample_rate=rate) for c in range(channels)])
    path = tmp_path / f"x.{fmt}"
    _write(path, x, rate)
    a = load_audio(path)
    assert a.sample_rate == 44100 and a.channels == channels
    expected = 0.5 * 44100
    slack = 64
    assert abs(a.n_frames - expected) <= slack
    assert a.sha256 and len(a.sha256) == 64
    # the tone survives: its RMS is that of a 0.5-amplitude sine
    mid = a.samples[0, 4000:16000]
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_native_rate_and_mono_mixdown(tmp_path, signals):
    x = np.stack([signals.sine(440, 0.2, sample_rate=48000), np.zeros(9600, np.float32)])
    _write(tmp_path / "s.wav", x, 48000)
    a = load_audio(tmp_path / "s.wav", sample_rate=None, mono=True)
    assert a.sample_rate == 48000 and a.samples.shape == (1, 9600)
    np.testing.assert_allclose(a.samples[0], x.mean(0), atol=1e-4)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk"), "cannot decode"),
    (lambda p: p.write_text("hello, I am text"), "cannot decode"),
    (lambda p: p.mkdir(), "folder"),
])
def test_bad_files_give_clear_errors(tmp_path, make, message):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError, match=message):
        load_audio(p)


def test_zero_length_file(tmp_path):
    _write(tmp_path / "z.wav", np.zeros((1, 0), np.float32), 44100)
    with pytest.raises(AudioError, match="no audio frames|cannot decode"):
        load_audio(tmp_path / "z.wav")


@pytest.mark.parametrize("fmt, depth", [("wav", 16), ("wav", 24), ("wav", 32), ("flac", 24), ("flac", 16)])
def test_save_round_trip_and_atomic_no_overwrite(tmp_path, signals, fmt, depth):
    x = np.stack([signals.sine(220, 0.3), signals.sine(330, 0.3)])
    p = save_audio(tmp_path / f"o.{fmt}", x, 44100, bit_depth=depth)
    back = load_audio(p)
    tol = {16: 1e-4, 24: 1e-6, 32: 1e-7}[depth]
    np.testing.assert_allclose(back.samples, x, atol=tol)
    before = p.read_bytes()
    with pytest.raises(AudioError, match="already exists"):
        save_audio(p, x * 0, 44100)
    assert p.read_bytes() == before
    save_audio(p, x * 0, 44100, overwrite=True, format=fmt)
    assert load_audio(p).samples.max() == 0
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp files left


def test_as_audio_arrays():
    a = as_audio(np.zeros(100, np.float32), 44100)
    assert a.samples.shape == (1, 100)
    with pytest.raises(AudioError, match="sample_rate"):
        as_audio(np.zeros(10))
    with pytest.raises(AudioError, match="NaN"):
        as_audio(np.array([0.0, np.nan]), 44100)
    with pytest.raises(AudioError, match="channels"):
        as_audio(np.zeros((100, 2)), 44100)


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_mp3_encoder_delay_is_removed(tmp_path, rate):
    """pedalboard's decoder keeps the encoder's padding (+1105 samples at 44.1 kHz); we trim it
    from the LAME tag, so a click stays where it was written."""
    x = np.zeros((1, rate), np.float32)
    x[0, rate // 4] = 0.9
    _write(tmp_path / "c.mp3", x, rate)
    a = load_audio(tmp_path / "c.mp3", sample_rate=None)
    assert a.n_frames == rate
    assert abs(int(np.argmax(np.abs(a.samples[0]))) - rate // 4) <= 2
    b = load_audio(tmp_path / "c.mp3")
    assert abs(int(np.argmax(np.abs(b.samples[0]))) - 44100 // 4) <= 3
