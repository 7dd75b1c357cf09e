"""Cut-short audio is an error naming the file and how much is readable, never silence (issue 11 item 8);
whole files of every kind pass; a full disk while writing is an error."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pedalboard.io import AudioFile

from idm_host.audio import check_complete, load_audio
from idm_host.errors import AudioError

SR = 44100


def _write(path, x, sr=SR, **kw):
    with AudioFile(str(path), "w", sr, x.shape[0], **kw) as f:
        f.write(x)
    return path


@pytest.fixture(scope="module")
def tone():
    t = np.arange(SR * 4) / SR
    return (0.4 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(7 * t))).astype(np.float32)[None].repeat(2, 0)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "aiff"])
@pytest.mark.parametrize("keep", [0.2, 1 / 3, 0.9, 0.995])
def test_cut_short_files_are_errors(tmp_path, tone, fmt, keep):
    whole = _write(tmp_path / f"whole.{fmt}", tone)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AudioError, match="cut short") as e:
        load_audio(cut)
    msg = str(e.value)
    assert str(cut) in msg and "readable" in msg
    m = re.search(r"\((\d+\.\d+) s", msg)
    if m and fmt != "ogg":  # OGG pages are large: what is readable is known per page
        assert float(m.group(1)) == pytest.approx(4.0 * keep, abs=0.15)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "aiff"])
def test_whole_files_of_every_shape_pass(tmp_path, fmt):
    rng = np.random.default_rng(3)
    rates = (22050, 32000, 44100, 48000) if fmt == "mp3" else (16000, 22050, 44100, 48000)
    for i in range(10):
        ch, n, sr = int(rng.integers(1, 3)), int(rng.integers(200, 2 * SR)), int(rng.choice(rates))
        x = (rng.uniform(-1, 1, (ch, n)) * rng.uniform(0.01, 1.0)).astype(np.float32)
        kw = {"bit_depth": int(rng.choice([16, 24]))} if fmt in ("wav", "flac", "aiff") else {}
        p = _write(tmp_path / f"f{i}.{fmt}", x, sr, **kw)
        check_complete(p)
        assert load_audio(p, sample_rate=None).n_frames > 0


def test_streamed_files_without_a_length_pass(tmp_path, tone):
    p = _write(tmp_path / "s.wav", tone, bit_depth=16)
    data = bytearray(p.read_bytes())
    i = data.find(b"data")
    data[i + 4:i + 8] = (0xFFFFFFFF).to_bytes(4, "little")  # a WAV written to a pipe
    p.write_bytes(bytes(data))
    check_complete(p)


FULL = textwrap.dedent("""
    import resource, sys
    import numpy as np
    resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))
    from idm_host.audio import save_audio
    from idm_host.errors import AudioError
    try:
        x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 441000)).astype(np.float32)  # incompressible
        save_audio(sys.argv[1], x, 44100, format=sys.argv[2])
    except AudioError as exc:
        print("ERR", exc)
""")


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_full_disk_while_writing_is_an_error(tmp_path, fmt):
    target = tmp_path / f"big.{fmt}"
    r = subprocess.run([sys.executable, "-c", FULL, str(target), fmt], capture_output=True, text=True)
    assert r.stdout.startswith("ERR") and str(target) in r.stdout, (r.stdout, r.stderr)
    assert not target.exists() and list(tmp_path.iterdir()) == []
