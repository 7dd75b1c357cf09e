"""A real idm-host OSC server in its own process, for the plug-in tests.

Run as ``python server_proc.py OUT_DIR [clicks|model]``: ``clicks`` analyses with the OSC tests'
tiny exact analyser (a sample above 0.5 is a kick, below -0.5 a snare, at its own frame), ``model``
with the shipped model. Every analysed stream's audio is saved as ``OUT_DIR/received-<id>.npy`` (float32,
(channels, frames)), so a test can compare what arrived with what it sent. Prints ``READY <tcp
port>`` when listening and stops when its stdin closes.

The receiver lives in another process because a host that calls the plug-in with Python's GIL
held, while the plug-in's sender waits on a receiver inside the same interpreter, can deadlock
(PLATFORM.md section 8).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def clicks(audio, progress):
    """The OSC tests' exact click analyser (tests/io/osckit.py): every sample above 0.5 in the mono
    mix is a kick at its own frame, every sample below -0.5 a snare."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    from osckit import click_analyze

    return click_analyze(audio, progress)


def main() -> int:
    from idm_host.osc import OscServer

    out = Path(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "clicks"
    out.mkdir(parents=True, exist_ok=True)

    def keep(id_, outcome, client):
        audio = getattr(outcome, "audio", None)
        if audio is not None:
            tmp = out / f".received-{id_}.npy"
            np.save(tmp, np.asarray(audio.samples, dtype=np.float32))
            tmp.replace(out / f"received-{id_}.npy")

    kwargs = {"analyze": clicks} if mode == "clicks" else {}
    srv = OscServer(port=0, tcp_port=0, out_dir=out / "jobs", on_result=keep, write_stems=False, **kwargs).start()
    print(f"READY {srv.tcp_address[1]}", flush=True)
    try:
        sys.stdin.read()
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
