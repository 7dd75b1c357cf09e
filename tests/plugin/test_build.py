"""IdmBridge builds as VST3, CLAP and LV2 from a clean copy of the tracked sources."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pluginkit import ROOT

#: What the binaries may link: the C and C++ runtimes only.
ALLOWED = {"libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6", "libdl.so.2", "libpthread.so.0",
           "ld-linux-x86-64.so.2"}


def tracked(prefix: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def needed(path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split("[")[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line}


def test_clean_build_of_three_formats(bundles, tmp_path):
    files = tracked("plugin") + tracked("presets/drum_maps")
    assert "plugin/IdmBridge.cpp" in files and any(f.endswith("gm.json") for f in files)
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, tmp_path / f)
    r = subprocess.run(["make", "-C", str(tmp_path / "plugin"), "-j2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "warning" not in r.stderr.lower(), r.stderr[-3000:]
    bin_ = tmp_path / "plugin" / "bin"
    vst3 = bin_ / "IdmBridge.vst3" / "Contents" / "x86_64-linux" / "IdmBridge.so"
    clap = bin_ / "IdmBridge.clap"
    lv2 = bin_ / "IdmBridge.lv2" / "IdmBridge_dsp.so"
    for binary in (vst3, clap, lv2):
        assert binary.is_file() and binary.stat().st_size < 1_000_000, binary
        assert needed(binary) <= ALLOWED, (binary.name, needed(binary) - ALLOWED)
    syms = {b: subprocess.run(["nm", "-D", "--defined-only", str(b)], capture_output=True, text=True).stdout
            for b in (vst3, clap, lv2)}
    assert "GetPluginFactory" in syms[vst3] and "clap_entry" in syms[clap] and "lv2_descriptor" in syms[lv2]
    ttl = (bin_ / "IdmBridge.lv2" / "IdmBridge_dsp.ttl").read_text()
    assert "lv2:AnalyserPlugin" in ttl and "midi:MidiEvent" in ttl and "lv2:OutputPort" in ttl
    manifest = (bin_ / "IdmBridge.lv2" / "manifest.ttl").read_text()
    assert "urn:idm-host:IdmBridge" in manifest
    # the drum maps compiled in are the project's
    header = (tmp_path / "plugin" / "build" / "drum_maps.h").read_text()
    for f in files:
        if f.startswith("presets/drum_maps/"):
            assert f'"{f.rsplit("/", 1)[1][:-5]}"' in header


def test_build_without_dpf_says_how_to_get_it(tmp_path):
    r = subprocess.run(["make", "-C", str(ROOT / "plugin"), "DPF_PATH=" + str(tmp_path / "no-dpf")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "apt-get install dpf-source" in r.stderr, r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_clap_loads_in_a_minimal_clap_host(bundles, tmp_path):
    """CLAP has no Python host here: a small C host (tests/plugin/clap_host.c) loads the bundle,
    activates it and runs blocks through it; the audio must come out unchanged."""
    host = tmp_path / "clap_host"
    src = ROOT / "tests" / "plugin" / "clap_host.c"
    r = subprocess.run(["cc", "-O1", "-I/usr/share/dpf/distrho/src/clap", str(src), "-o", str(host), "-ldl"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(host), str(ROOT / "plugin" / "bin" / "IdmBridge.clap")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passthrough ok" in r.stdout and "org.idm-host.idmbridge" in r.stdout, r.stdout
