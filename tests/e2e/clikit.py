"""Running ``python -m idm_host`` in a subprocess, for the end-to-end tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "idm_host", *map(str, args)]


def cli(*args, env=None, timeout=600, preexec_fn=None, wrap=None) -> subprocess.CompletedProcess:
    """Run ``idm-host ARGS`` from the repository root; ``env`` adds variables, ``wrap(cmd)`` may
    prefix the command (e.g. with ``unshare``)."""
    e = dict(os.environ)
    e.update(env or {})
    cmd = cli_cmd(*args) if wrap is None else wrap(cli_cmd(*args))
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout, cwd=REPO,
                          preexec_fn=preexec_fn)
