"""Fixtures for the IdmBridge plug-in tests: the built bundles and a server in another process."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pluginkit import BIN, CLAP, LV2, PLUGIN_DIR, VST3, ServerProc


@pytest.fixture(scope="session")
def bundles():
    """plugin/bin built (a no-op when up to date; `make plugin` installs what the build needs)."""
    if not shutil.which("g++") or not (shutil.os.path.exists("/usr/share/dpf/Makefile.plugins.mk")):
        pytest.fail("the plug-in needs g++ and DPF (Debian dpf-source): run `make plugin` as root, "
                    "or apt-get install dpf-source g++ make lv2-dev")
    r = subprocess.run(["make", "-C", str(PLUGIN_DIR), "-j2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    try:
        import minihost  # noqa: F401
    except ImportError:
        pytest.fail("minihost is missing: run `make plugin` (pip install minihost into the venv)")
    assert VST3.is_dir() and CLAP.is_file() and (LV2 / "manifest.ttl").is_file(), list(BIN.iterdir())
    return BIN


@pytest.fixture
def server(tmp_path, bundles):
    with ServerProc(tmp_path / "server") as srv:
        yield srv
