"""The OSC bridge with clients that are not ours: liblo's ``oscsend`` and ``oscdump`` (Debian
liblo-tools), over UDP and TCP."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
from osckit import SR, click_analyze, click_audio
from proctools import free_udp_port, stop_process

from idm_host import __version__
from idm_host.audio import save_audio
from idm_host.osc import OscServer


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install liblo-tools (listed in the Makefile's APT_PACKAGES)")
    return path


class OscDump:
    """``oscdump -L PORT`` in the background; its stdout lines, parsed into (address, types, rest)."""

    def __init__(self):
        self.port = free_udp_port()
        self.proc = subprocess.Popen([tool("oscdump"), "-L", str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.2)  # let it bind
        if self.proc.poll() is not None:
            pytest.fail(f"oscdump exited: {''.join(self.lines)}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def messages(self) -> list[tuple[str, str, str]]:
        out = []
        for line in list(self.lines):
            parts = line.split(" ", 3)  # "<timetag> /address types args..."
            if len(parts) >= 2 and parts[1].startswith("/"):
                out.append((parts[1], parts[2] if len(parts) > 2 else "", parts[3] if len(parts) > 3 else ""))
        return out

    def wait_for(self, address: str, count: int = 1, timeout_s: float = 10.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [m for m in self.messages() if m[0] == address]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"oscdump saw no {count} x {address}: {self.lines[-10:]}")

    def close(self) -> None:
        stop_process(self.proc)


def oscsend(*args: str) -> None:
    subprocess.run([tool("oscsend"), *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def bridge(tmp_path):
    dump = OscDump()
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, reply_port=dump.port, out_dir=tmp_path / "out").start()
    yield srv, dump
    srv.stop()
    dump.close()


def test_oscsend_ping_and_oscdump_pong(bridge):
    srv, dump = bridge
    oscsend("localhost", str(srv.udp_address[1]), "/idm/ping")
    address, types, rest = dump.wait_for("/idm/pong")[0]
    assert types == "s" and rest == f'"{__version__}"'


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_oscsend_open_gets_hits_stems_midi_done(bridge, tmp_path, transport):
    srv, dump = bridge
    path = save_audio(tmp_path / "loop.wav", click_audio([0.25, 0.5], length_s=1.0, negative=[0.75]), SR,
                      bit_depth=32)
    url = (f"osc.udp://localhost:{srv.udp_address[1]}" if transport == "udp"
           else f"osc.tcp://localhost:{srv.tcp_address[1]}")
    oscsend(url, "/idm/open", "is", "12", str(path))
    dump.wait_for("/idm/done")
    hits = dump.wait_for("/idm/hit", count=3)
    assert [h[1] for h in hits] == ["isff"] * 3
    parsed = [h[2].split(" ") for h in hits]
    assert [p[0] for p in parsed] == ["12"] * 3
    assert [p[1] for p in parsed] == ['"KD"', '"KD"', '"SD"']
    assert [float(p[2]) for p in parsed] == pytest.approx([0.25, 0.5, 0.75], abs=1e-4)
    stems = dump.wait_for("/idm/stems")[0]
    midi = dump.wait_for("/idm/midi")[0]
    assert stems[1] == "is" and "loop-12" in stems[2]
    assert midi[2].endswith('transcription.mid"')
    progress = dump.wait_for("/idm/progress")
    assert progress[0][1] == "ifs" and progress[0][2].startswith("12 0.000000")


def test_oscsend_bad_requests_get_errors(bridge):
    srv, dump = bridge
    port = str(srv.udp_address[1])
    oscsend("localhost", port, "/idm/audio/begin", "sTii", "x", "2", "3")
    oscsend("localhost", port, "/idm/audio/begin", "iiii", "5", str(SR), "1", "1000")
    oscsend("localhost", port, "/idm/audio/end", "i", "5")  # no chunks arrived
    oscsend("localhost", port, "/idm/unknown", "f", "1.5")
    oscsend("localhost", port, "/idm/open", "is", "6", "/no/such/file.wav")
    errors = dump.wait_for("/idm/error", count=4)
    text = " | ".join(e[2] for e in errors)
    assert all(e[1] == "is" for e in errors)
    assert "argument 1 must be an int32" in text
    assert "ended after 0 of 1000 frames" in text
    assert "unknown address '/idm/unknown'" in text
    assert "not found" in text
    oscsend("localhost", port, "/idm/ping")
    dump.wait_for("/idm/pong")
