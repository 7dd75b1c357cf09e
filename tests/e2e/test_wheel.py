"""The wheel: built from a copy of the checkout, installed (without dependencies) into a fresh venv
that borrows .venv's site-packages for numpy & co., and run from outside the checkout. It must carry
the presets (drum maps, effect chains, kits), the default model and one version string."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "idm_host", "gui", "presets")

pytestmark = pytest.mark.slow


def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv python, wheel path, clean environment, a folder outside the checkout)``."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:  # a copy, so that building writes nothing into the checkout
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src])
    (wheel,) = (tmp / "dist").glob("idm_host-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # A path line in a .pth adds .venv's site-packages after the venv's own, but the .pth files in it
    # (the checkout's editable install) are not run: idm_host can only come from the wheel.
    (site / "zz-borrow-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("IDM_HOST_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    outside = tmp / "elsewhere"
    outside.mkdir()
    env["IDM_HOST_MODELS"] = str(tmp / "models-cache")
    env["IDM_HOST_CONFIG"] = str(tmp / "config")
    return py, wheel, env, outside


def test_wheel_carries_the_presets(installed):
    _, wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPO / "presets")) for p in (REPO / "presets").rglob("*") if p.is_file()}
    assert shipped, "no presets in the checkout"
    missing = {s for s in shipped if f"idm_host/_presets/{s}" not in names}
    assert not missing, f"the wheel lacks presets: {sorted(missing)}"
    assert any(n.startswith("idm_host/models/default/") for n in names)


def test_installed_wheel_lists_the_drum_maps(installed):
    py, _, env, outside = installed
    r = run([py.parent / "idm-host", "midi", "maps"], cwd=outside, env=env)
    listed = {line.split()[0] for line in r.stdout.splitlines() if line and not line[0].isspace()}
    expected = {p.stem for p in (REPO / "presets" / "drum_maps").glob("*.json")}
    assert expected <= listed, f"missing drum maps {sorted(expected - listed)} in:\n{r.stdout}"
    assert len(expected) > 1  # more than the General MIDI fallback
    where = run([py, "-c", "import idm_host, idm_host.presets as p; print(idm_host.__file__); print(p.shipped_dir())"],
                cwd=outside, env=env).stdout.split()
    venv = py.parent.parent
    assert all(Path(w).is_relative_to(venv) for w in where), where  # from the wheel, not the checkout
    assert sorted(p.name for p in Path(where[1]).iterdir()) == sorted(
        p.name for p in (REPO / "presets").iterdir() if p.is_dir())


def test_one_version_string(installed):
    py, _, env, outside = installed
    r = run([py.parent / "idm-host", "--version"], cwd=outside, env=env)
    meta = run([py, "-c", "import importlib.metadata as m, idm_host; print(m.version('idm-host'), idm_host.__version__)"],
               cwd=outside, env=env).stdout.split()
    assert meta[0] == meta[1]
    assert r.stdout.strip() == f"idm-host {meta[0]}"
