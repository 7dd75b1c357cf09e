"""The examples for DAW users, run for real: the Pure Data patch headless against a live server, and
the Python snippet of examples/README.md."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from osckit import SR, click_analyze, click_audio
from proctools import free_udp_port, pd_patch_lines

from idm_host.audio import save_audio
from idm_host.osc import OscServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_pure_data_patch_headless(tmp_path):
    pd = shutil.which("pd")
    if pd is None:
        pytest.fail("pd is missing: apt-get install puredata-core (listed in the Makefile's APT_PACKAGES)")
    path = save_audio(tmp_path / "loop.wav", click_audio([0.25, 0.5], length_s=1.0, negative=[0.75]), SR,
                      bit_depth=32)
    reply_port = free_udp_port()
    with OscServer(analyze=click_analyze, port=0, reply_port=reply_port, out_dir=tmp_path / "out") as srv:
        sends = f"idm-listen {reply_port}; idm-server 127.0.0.1 {srv.udp_address[1]}; idm-ping bang; idm-open {path}"
        lines = pd_patch_lines(pd, EXAMPLES / "idm-bridge.pd", sends, ("idm-done:",), 30)
    text = "".join(lines)
    assert "idm-pong: " in text, text
    hits = [line.split()[1:] for line in lines if line.startswith("idm-hit:")]
    assert [(h[0], h[1]) for h in hits] == [("1", "KD"), ("1", "KD"), ("1", "SD")], text
    assert [float(h[2]) for h in hits] == pytest.approx([0.25, 0.5, 0.75], abs=1e-3)
    assert re.search(r"idm-midi: 1 \S+transcription\.mid", text) and "idm-done: 1" in text
    assert "error" not in text.lower(), text


def test_readme_python_snippet(tmp_path):
    code = re.search(r"```python\n(.*?)```", (EXAMPLES / "README.md").read_text(), re.S).group(1)
    with OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path) as srv:
        code = code.replace('"127.0.0.1", 9001', f'"127.0.0.1", {srv.tcp_address[1]}')
        printed: list[str] = []
        exec(compile(code, "examples/README.md", "exec"), {"print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert printed[0].startswith("/idm/progress [1, 0.0, 'queued']") and printed[-1] == "/idm/done [1]"
