"""idm-studio in a real X11 window: Xvfb + openbox, driven by xdotool, looked at with xwininfo/xprop.

The offscreen platform resolves shortcuts and window geometry differently from xcb (PLATFORM.md
section 7), so these checks need a real X server. ``make test`` installs Xvfb, openbox, xdotool and
the xcb libraries; without Xvfb the module is skipped.

Each screen size gets its own Xvfb and app (real_window_driver.py: the app's own ``main()`` plus a
line protocol for asking what the window shows). Screenshots go to ``$IDM_TEST_ARTEFACTS`` (default
``test-artefacts/``) and, with ``IDM_UPDATE_DOCS=1``, to docs/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOP = ROOT / "examples" / "drum-loop.flac"
DRIVER = Path(__file__).with_name("real_window_driver.py")
ARTEFACTS = Path(os.environ.get("IDM_TEST_ARTEFACTS", ROOT / "test-artefacts"))
OPEN_TIMEOUT_S = 240  # a loaded 2-core machine; a quiet one takes about 10 s

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None,
                                reason="Xvfb is not installed (make test installs it: see README, Linux packages)")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is missing; install it with: apt-get install xvfb xdotool openbox x11-utils imagemagick"
    return path


class XServer:
    """Xvfb with openbox on a free display, of ``width`` x ``height``."""

    def __init__(self, width: int, height: int, tmp: Path):
        self.size = (width, height)
        r, wfd = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(wfd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(wfd)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        assert number.isdigit(), "Xvfb did not start"
        self.display = f":{number}"
        self.env = dict(os.environ, DISPLAY=self.display, QT_QPA_PLATFORM="xcb")
        self.wm = subprocess.Popen([_need("openbox")], env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=(tmp / "openbox.log").open("w"))
        time.sleep(0.5)

    def run(self, *args: str) -> str:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=30,
                              check=True).stdout

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run(_need("import"), "-window", "root", str(path))
        return path

    def close(self) -> None:
        for p in (self.wm, self.xvfb):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


class Studio:
    """idm-studio on ``server``, opened on the bundled loop."""

    def __init__(self, server: XServer, tmp: Path):
        self.server = server
        self.log = tmp / "studio-stderr.log"
        env = dict(server.env, IDM_HOST_CONFIG=str(tmp / "config"), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, str(DRIVER), str(LOOP)], env=env, cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("w"))
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while True:
            time.sleep(0.5)
            assert self.proc.poll() is None, f"idm-studio exited: {self.log.read_text()[-3000:]}"
            s = self.ask("state")
            if s.get("opened") and not s.get("busy"):
                break
            assert time.monotonic() < deadline, "the loop did not open in time"
        assert s["error"] is None, s["error"]
        self.win = s["win_id"]
        self.activate()

    def ask(self, op: str, **args) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            assert line, f"idm-studio stopped answering: {self.log.read_text()[-3000:]}"
            if line.startswith("@@"):
                return json.loads(line[2:])

    def state_when(self, ok, timeout_s: float = 15.0) -> dict:
        """The window's state once ``ok(state)`` holds (a loaded machine may take a moment to react
        to a key), or the last state seen after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.ask("state")
            if ok(st) or time.monotonic() > deadline:
                return st
            time.sleep(0.1)

    def activate(self) -> None:
        # keys sent with --window are synthetic and Qt ignores them: activate, then type (PLATFORM.md 7)
        self.server.run("xdotool", "windowactivate", "--sync", str(self.win))
        time.sleep(0.2)

    def key(self, *keys: str) -> None:
        self.server.run("xdotool", "key", "--delay", "60", *keys)
        time.sleep(0.4)

    def click(self, x: int, y: int) -> None:
        self.server.run("xdotool", "mousemove", "--sync", str(x), str(y), "click", "1")
        time.sleep(0.4)

    def frame(self) -> tuple[int, int, int, int]:
        """The window's frame on screen, from X itself: the client's place (xwininfo) plus the frame
        extents the window manager set (_NET_FRAME_EXTENTS)."""
        info = self.server.run("xwininfo", "-id", str(self.win))
        x = int(re.search(r"Absolute upper-left X:\s+(-?\d+)", info).group(1))
        y = int(re.search(r"Absolute upper-left Y:\s+(-?\d+)", info).group(1))
        w = int(re.search(r"Width:\s+(\d+)", info).group(1))
        h = int(re.search(r"Height:\s+(\d+)", info).group(1))
        ext = self.server.run("xprop", "-id", str(self.win), "_NET_FRAME_EXTENTS")
        left, right, top, bottom = (int(v) for v in re.findall(r"\d+", ext.split("=")[1]))
        return x - left, y - top, x + w + right, y + h + bottom

    def stderr(self) -> str:
        return self.log.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
                self.proc.wait(20)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()


def _launch(request, tmp_path_factory, width: int, height: int) -> Studio:
    tmp = tmp_path_factory.mktemp(f"x{width}x{height}")
    server = XServer(width, height, tmp)
    request.addfinalizer(server.close)
    studio = Studio(server, tmp)
    request.addfinalizer(studio.close)
    return studio


@pytest.fixture(scope="module")
def studio720(request, tmp_path_factory):
    return _launch(request, tmp_path_factory, 1280, 720)


def assert_frame_fits(studio: Studio) -> None:
    w, h = studio.server.size
    left, top, right, bottom = studio.frame()
    assert 0 <= left and 0 <= top and right <= w and bottom <= h, \
        f"frame {left},{top}..{right},{bottom} does not fit the {w}x{h} screen"


def test_redo_with_ctrl_shift_z_after_undo(studio720):
    s = studio720
    assert s.ask("state")["clashes"] == {}
    s.ask("focus_grid")
    before = s.ask("state")["counts"]["TT_LMT"]  # the analysis may have found mid toms already
    p = s.ask("point", cls="TT_LMT", time=2.0)
    s.activate()
    s.click(p["x"], p["y"])

    def mid_toms(n: int):
        return lambda st: st["counts"]["TT_LMT"] == before + n

    after_add = s.state_when(mid_toms(1))
    assert after_add["counts"]["TT_LMT"] == before + 1, after_add
    s.key("ctrl+z")
    assert s.state_when(mid_toms(0))["counts"]["TT_LMT"] == before
    s.key("ctrl+shift+z")
    back = s.state_when(mid_toms(1))
    assert back["counts"]["TT_LMT"] == before + 1 and back["n_hits"] == after_add["n_hits"]
    s.key("ctrl+z")
    s.state_when(mid_toms(0))
    s.key("ctrl+y")
    assert s.state_when(mid_toms(1))["counts"]["TT_LMT"] == before + 1
    assert "Ambiguous shortcut" not in s.stderr()


def test_hovering_a_hit_shows_its_exact_time(studio720):
    s = studio720
    hit = s.ask("hit_point", cls="KD", index=2)
    s.activate()
    s.server.run("xdotool", "mousemove", "--sync", str(hit["x"] - 20), str(hit["y"]))
    s.server.run("xdotool", "mousemove", "--sync", str(hit["x"]), str(hit["y"]))
    deadline = time.monotonic() + 10
    while not (tip := s.ask("state")["tooltip"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"Kick: {hit['time']:.4f} s" in tip and "MIDI" in tip, tip


def test_dragging_the_midi_button_onto_the_window_does_nothing(studio720):
    s = studio720
    before = s.ask("state")
    b = s.ask("midi_button")
    target = s.ask("point", cls="TT_HFT", time=1.0)
    s.activate()
    run = s.server.run
    run("xdotool", "mousemove", "--sync", str(b["x"]), str(b["y"]), "mousedown", "1")
    for k in range(1, 9):  # a real drag: the press, several moves, the release over the grid
        x = b["x"] + (target["x"] - b["x"]) * k // 8
        y = b["y"] + (target["y"] - b["y"]) * k // 8
        run("xdotool", "mousemove", "--sync", str(x), str(y))
        time.sleep(0.1)
    run("xdotool", "mouseup", "1")
    time.sleep(1.0)
    after = s.ask("state")
    assert after["modal"] is None, after["modal"]  # no "save first?" and no error dialog
    assert not after["busy"] and after["error"] is None
    assert after["n_hits"] == before["n_hits"] and after["undo"] == before["undo"]


def test_every_dock_fits_1280x720_and_screenshot(studio720):
    s = studio720
    state = s.ask("show_docks")
    assert s.ask("select_class", cls="SD")["selected"] > 0
    assert state["docks"] and all(state["docks"].values()), state["docks"]
    assert "OscDock" in state["docks"], "the OSC dock is missing (see the app's log)"
    time.sleep(0.5)
    assert_frame_fits(s)
    shot = s.server.screenshot(ARTEFACTS / "studio-1280x720.png")
    if os.environ.get("IDM_UPDATE_DOCS") == "1":
        shutil.copy(shot, ROOT / "docs" / "studio-1280x720.png")


def test_paste_near_the_end_says_what_did_not_fit(studio720):
    s = studio720
    copied = s.ask("select_last", n=15, room_s=0.05)
    assert copied["copied"] == 15 and copied["span_s"] > 0.1
    before = s.ask("state")["n_hits"]
    s.activate()
    s.key("ctrl+v")
    after = s.state_when(lambda st: st["n_hits"] > before)
    pasted = after["n_hits"] - before
    assert 0 < pasted < 15
    assert f"Pasted {pasted} of 15 hits; {15 - pasted} would fall after the end" in after["status"]
    assert after["undo"].replace("&", "") == "Undo paste"


def test_quantise_then_export_counts_agree(studio720, tmp_path):
    import pretty_midi

    s = studio720
    s.ask("focus_grid")
    s.activate()
    s.key("ctrl+a", "q")
    state = s.state_when(lambda st: st["undo"].replace("&", "") == "Undo quantise")
    assert state["undo"].replace("&", "") == "Undo quantise"
    assert s.ask("export_midi", folder=str(tmp_path))["error"] is None
    notes = [n for inst in pretty_midi.PrettyMIDI(str(tmp_path / "loop.mid")).instruments for n in inst.notes]
    assert len(notes) == state["n_hits"]


@pytest.mark.parametrize("width,height", [(1366, 768), (1920, 1080)])
def test_every_dock_fits_and_screenshot(request, tmp_path_factory, width, height):
    s = _launch(request, tmp_path_factory, width, height)
    state = s.ask("show_docks")
    s.ask("select_class", cls="SD")
    assert all(state["docks"].values())
    time.sleep(0.5)
    assert_frame_fits(s)
    shot = s.server.screenshot(ARTEFACTS / f"studio-{width}x{height}.png")
    if os.environ.get("IDM_UPDATE_DOCS") == "1" and width == 1920:
        shutil.copy(shot, ROOT / "docs" / f"studio-{width}x{height}.png")
