"""The README's Python example runs as written (on the project's example loop, as loop.wav)."""
from __future__ import annotations

import re
from pathlib import Path

from idm_host.audio import load_audio, save_audio

REPO = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path, monkeypatch, demo_loop):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    loop = load_audio(demo_loop, sample_rate=None)
    save_audio(tmp_path / "loop.wav", loop.samples, loop.sample_rate)
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["stems"].audio.shape[0] == len(namespace["sep"].classes)
