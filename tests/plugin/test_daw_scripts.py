"""The DAW scripts in examples/ with the paths that broke them: the Pure Data patch run headless
(a path with spaces used to reach the server as several arguments) and the REAPER script run in a
stock Lua 5.4 with a stand-in for REAPER's API (a path with ' used to be quoted for a shell that
REAPER's ExecProcess does not run). Both send to a real server through real oscsend / Pd."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from proctools import free_udp_port, pd_patch_lines
from server_proc import clicks

from idm_host.audio import save_audio
from idm_host.osc import OscServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RATE = 44100


def click_file(path: Path) -> Path:
    x = np.zeros((2, RATE), np.float32)
    x[:, RATE // 4] = 0.9
    x[:, RATE // 2] = -0.9
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_audio(path, x, RATE, bit_depth=32)


def analysed(srv_results: list, timeout_s: float = 120.0):
    deadline = time.monotonic() + timeout_s
    while not srv_results and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv_results


@pytest.mark.parametrize("name", ["my drums/take 2 final.wav", "two  spaces/a b.wav"])
def test_pure_data_patch_with_spaces_in_the_path(tmp_path, name):
    pd = shutil.which("pd")
    if pd is None:
        pytest.fail("pd is missing: apt-get install puredata-core (listed in the Makefile's APT_PACKAGES)")
    path = click_file(tmp_path / name)
    results: list = []
    reply_port = free_udp_port()
    with OscServer(analyze=clicks, port=0, reply_port=reply_port, out_dir=tmp_path / "out",
                   on_result=lambda id_, outcome, client: results.append(outcome)) as srv:
        # the path as a Pd message box would send it: several atoms
        sends = f"idm-listen {reply_port}; idm-server 127.0.0.1 {srv.udp_address[1]}; idm-open {path}"
        lines = pd_patch_lines(pd, EXAMPLES / "idm-bridge.pd", sends, ("idm-done:", "idm-error:"), 120)
    text = "".join(lines).replace("\\ ", " ").replace("\\,", ",")  # Pd escapes spaces and commas it prints
    if "  " in name:
        # Pd itself keeps no run of spaces: the patch joins atoms with one space, so this path
        # cannot be sent from a message box; the server says it is not found, and nothing else
        assert "idm-error:" in text and "not found" in text and "idm-done" not in text, text
        return
    assert "idm-done:" in text and "error" not in text.lower(), text
    hits = [line.split()[1:] for line in lines if line.startswith("idm-hit:")]
    assert [h[1] for h in hits] == ["KD", "SD"], text
    assert len(results) == 1 and results[0].audio.source is not None and Path(results[0].audio.source) == path


REAPER_STUB = r"""
-- a stand-in for the parts of REAPER's API the script calls
local PATH, OS = ...
local console = {}
reaper = {
  GetOS = function() return OS end,
  GetSelectedMediaItem = function() return {} end,
  GetActiveTake = function() return {} end,
  TakeIsMIDI = function() return false end,
  GetMediaItemTake_Source = function() return {} end,
  GetMediaSourceFileName = function() return PATH end,
  time_precise = function() return 4242.0 end,
  MB = function(msg) print("MB: " .. msg) end,
  ShowConsoleMsg = function(msg) io.write("CONSOLE: " .. msg) end,
  ExecProcess = function() error("ExecProcess must not be used on POSIX") end,
}
"""


def run_reaper_script(tmp_path, path: str, port: int) -> str:
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.fail("lua5.4 is missing: apt-get install lua5.4 (`make plugin` installs it when root)")
    script = (EXAMPLES / "reaper-idm-open.lua").read_text().replace("local PORT = 9000", f"local PORT = {port}")
    runner = tmp_path / "run.lua"
    runner.write_text(REAPER_STUB + "\n" + script)
    r = subprocess.run([lua, str(runner), path, "Linux"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize("name", ["it's here/drums.wav", "quote \" and $HOME `x` \\ ;|&/take 1.wav"])
def test_reaper_script_sends_any_path(tmp_path, name):
    path = click_file(tmp_path / name)
    results: list = []
    with OscServer(analyze=clicks, port=0, out_dir=tmp_path / "out",
                   on_result=lambda id_, outcome, client: results.append((id_, outcome))) as srv:
        out = run_reaper_script(tmp_path, str(path), srv.udp_address[1])
        assert "CONSOLE: idm-host: asked" in out and "MB:" not in out, out
        analysed(results)
    assert len(results) == 1, out
    id_, outcome = results[0]
    assert id_ == 4242000 and Path(outcome.audio.source) == path
    assert [c for c in outcome.transcription.classes if outcome.transcription.hits[c]] == ["KD", "SD"]


def test_reaper_script_reports_a_failing_oscsend(tmp_path):
    out = run_reaper_script(tmp_path, str(tmp_path / "x.wav"), 0)  # port 0: oscsend refuses
    assert "MB: oscsend failed (exit" in out and "CONSOLE" not in out, out
