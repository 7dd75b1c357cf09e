"""Session files under faults: links, re-saves, paths in session.json, truncated stems, locks,
permissions and what killed saves leave (issue 11 items 5-7, 9-11; issue 10 item 8)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from idm_host.errors import BusyError, SessionError
from idm_host.fsutil import FolderLock
from idm_host.session import Session, SetTempo
from sessionkit import make_analysis

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under ``folder`` (links as links): name -> (inode, bytes or link target)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(folder))] = (st.st_ino, os.readlink(p).encode())
            elif p.is_file():
                out[str(p.relative_to(folder))] = (st.st_ino, p.read_bytes())
            else:
                out[str(p.relative_to(folder)) + "/"] = (st.st_ino, b"")
    return out


@pytest.fixture
def saved(tmp_path):
    s = Session.from_analysis(make_analysis(duration_s=3.0, channels=2))
    return s.save(tmp_path / "song")


# ------------------------------------------------------------------------------------- links
@pytest.mark.parametrize("part", ["stems", "kit", "extracted"])
def test_a_linked_part_is_refused_and_its_target_untouched(saved, tmp_path, part):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("not the session's")
    s = Session.load(saved)
    real = saved / part
    had_files = real.exists() and any(real.iterdir())
    if real.exists():
        for f in real.iterdir():
            os.replace(f, elsewhere / f.name)
        real.rmdir()
    real.symlink_to(elsewhere, target_is_directory=True)
    before = _snapshot(elsewhere)
    if had_files:  # its files now lie outside the folder
        with pytest.raises(SessionError, match="out of the session folder"):
            Session.load(saved)
    s.apply(SetTempo(bpm=99.0))
    with pytest.raises(SessionError, match="link"):
        s.save(saved)
    assert _snapshot(elsewhere) == before
    copy = s.save(tmp_path / "copy")  # Save As makes real folders
    assert not any(p.is_symlink() for p in copy.rglob("*"))
    assert Session.load(copy).tempo.bpm == 99.0
    assert _snapshot(elsewhere) == before


def test_a_linked_session_folder_is_refused(saved, tmp_path):
    link = tmp_path / "alias.idmsession"
    link.symlink_to(saved, target_is_directory=True)
    before = _snapshot(saved)
    s = Session.load(link)
    s.apply(SetTempo(bpm=97.0))
    with pytest.raises(SessionError, match="link"):
        s.save(link)
    assert _snapshot(saved) == before


def test_stale_links_inside_parts_are_removed_as_links(saved, tmp_path):
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"RIFF not the session's")
    (saved / "stems" / "stale-link.flac").symlink_to(victim)
    s = Session.load(saved)
    s.apply(SetTempo(bpm=101.0))
    s.save(saved)
    assert not (saved / "stems" / "stale-link.flac").is_symlink()
    assert victim.read_bytes() == b"RIFF not the session's"


# ------------------------------------------------------------------------------ byte identity
def test_resaving_rewrites_nothing_that_was_not_edited(saved):
    first = _snapshot(saved)
    for i in range(3):
        s = Session.load(saved)
        s.apply(SetTempo(bpm=100.0 + i))
        s.save(saved)
    after = _snapshot(saved)
    audio = [k for k in first if k.endswith((".flac", ".wav"))]
    assert any(k.startswith("stems/") for k in audio)
    for k in audio:  # same names, same inodes (not rewritten), same bytes
        assert after.get(k) == first[k], k
    assert set(k for k in after if k.endswith((".flac", ".wav"))) == set(audio)


def test_encoding_what_was_decoded_gives_the_same_bytes(saved, tmp_path):
    s = Session.load(saved)
    s.path = None  # no folder to hard-link from: every file is encoded again
    copy = s.save(tmp_path / "again")
    a, b = _snapshot(saved), _snapshot(copy)
    for k in a:
        if k.endswith((".flac", ".wav")):
            assert b[k][1] == a[k][1], k


# ---------------------------------------------------------------------------- paths in the doc
@pytest.mark.parametrize("where", ["stem", "kit"])
@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.flac", "stems/../../outside.flac", "link"])
def test_every_file_named_lies_inside_the_folder(saved, tmp_path, where, bad):
    outside = tmp_path / "outside.flac"
    stem_file = next((saved / "stems").iterdir())
    outside.write_bytes(stem_file.read_bytes())
    if bad == "link":
        (saved / "stems" / "out.flac").symlink_to(outside)
        bad = "stems/out.flac"
    doc = json.loads((saved / "session.json").read_text())
    if where == "stem":
        doc["stems"]["files"]["KD"] = bad
    else:
        doc["kit"]["KD"]["origin"] = "file"
        doc["kit"]["KD"]["file"] = bad
    (saved / "session.json").write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="session folder"):
        Session.load(saved)


def test_deeply_nested_session_json_is_a_clear_error(saved):
    (saved / "session.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SessionError, match="nested too deeply"):
        Session.load(saved)


def test_a_truncated_stem_is_an_error_not_silence(saved):
    stem = max((saved / "stems").iterdir(), key=lambda p: p.stat().st_size)
    data = stem.read_bytes()
    stem.write_bytes(data[: len(data) // 3])
    with pytest.raises(SessionError, match="cut short"):
        Session.load(saved)


# -------------------------------------------------------------------------------- locks, modes
def test_a_second_save_of_the_same_folder_fails_at_once(saved):
    s = Session.load(saved)
    with FolderLock(saved):
        t = time.monotonic()
        with pytest.raises(BusyError, match="another idm-host run"):
            s.save(saved)
        assert time.monotonic() - t < 5.0
    s.save(saved)  # free again
    assert not list(saved.parent.glob(".*idm-lock"))


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_session_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        s = Session.from_analysis(make_analysis(duration_s=1.0))
        p = s.save(tmp_path / "perm")
        s.apply(SetTempo(bpm=90.0))
        s.save(p)  # a re-save replaces session.json
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o777 & ~umask
    for f in p.rglob("*"):
        want = (0o777 if f.is_dir() else 0o666) & ~umask
        assert f.stat().st_mode & 0o777 == want, f


# ------------------------------------------------------------------------------------ leftovers
CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from idm_host.session import Session
    from sessionkit import make_analysis
    s = Session.from_analysis(make_analysis(duration_s=20.0, channels=2))
    print("ready", flush=True)
    s.save(sys.argv[1])
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_what_a_killed_save_leaves_is_removed_by_the_next_save(tmp_path, sig):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(here=str(HERE)))
    work = tmp_path / "work"
    work.mkdir()
    (work / "neighbour.txt").write_text("untouched")
    rng = random.Random(11 + int(sig))
    outcomes = []
    for i in range(4):
        target = work / f"s{i}.idmsession"
        p = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.8))
        p.send_signal(sig)
        p.communicate()
        outcomes.append(target.exists())
        if target.exists():
            Session.load(target)  # whole, or not there at all
        s = Session.from_analysis(make_analysis(duration_s=1.0))
        s.save(target, overwrite=True)
        leftovers = [n for n in os.listdir(work) if n.startswith(".")]
        assert leftovers == [], leftovers
    assert (work / "neighbour.txt").read_text() == "untouched"


def test_leftovers_of_a_live_process_are_left_alone(saved):
    mine = saved.parent / f".{saved.name}.idm-{os.getpid()}-x.partial"
    mine.mkdir()
    gone = saved.parent / f".{saved.name}.idm-999999999-y.partial"
    gone.mkdir()
    from idm_host.fsutil import remove_leftovers

    assert remove_leftovers(saved) == [gone]
    assert mine.exists()
    mine.rmdir()


def test_the_24_bit_mapping_is_exact_for_every_integer():
    """Every 24-bit value survives encode -> decode -> _to_int24, so re-encoding decoded stems is exact."""
    import io

    import numpy as np
    from pedalboard.io import AudioFile

    from idm_host.session.persistence import from_int24 as _from_int24, to_int24 as _to_int24

    q = np.arange(-2 ** 23, 2 ** 23, dtype=np.int32)
    buf = io.BytesIO()
    with AudioFile(buf, "w", 44100, 1, format="flac", bit_depth=24) as f:
        f.write(_from_int24(q)[None])
    with AudioFile(io.BytesIO(buf.getvalue())) as f:
        decoded = f.read(f.frames)[0]
    assert np.array_equal(_to_int24(decoded), q)
