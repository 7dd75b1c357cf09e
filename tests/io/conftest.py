"""Fixtures for the MIDI/OSC tests: a real JACK server (dummy driver) for MIDI ports."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from proctools import stop_process

JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"


@pytest.fixture(scope="session")
def jack_server():
    """A private jackd with the dummy driver (no sound card needed); yields the mido backend name.

    The server gets a unique name (``JACK_DEFAULT_SERVER``) so parallel test runs do not meet, and
    ``JACK_NO_START_SERVER`` stops libjack from starting a second one behind our back.
    """
    exe = shutil.which("jackd")
    if exe is None:
        pytest.fail("jackd is missing: apt-get install jackd2 (listed in the Makefile's APT_PACKAGES)")
    name = f"idmtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER", "JACK_NO_AUDIO_RESERVATION")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    # jackd's output goes to a file: under load the dummy driver logs xruns, and an unread pipe
    # fills up and blocks jackd (no MIDI is delivered any more)
    log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
    proc = subprocess.Popen([exe, "-n", name, "--no-realtime", "-d", "dummy", "-r", "44100", "-p", "1024"],
                            stdout=log, stderr=subprocess.STDOUT)
    lsp = shutil.which("jack_lsp")
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            out = Path(log.name).read_text(errors="replace")
            pytest.fail(f"jackd exited ({proc.returncode}): {out[-500:]}")
        ok = lsp is not None and subprocess.run([lsp], capture_output=True, timeout=5).returncode == 0
        if ok:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("jackd did not come up within 15 s")
        time.sleep(0.1)
    try:
        yield JACK_BACKEND
    finally:
        stop_process(proc)
        log.close()
        os.unlink(log.name)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def server(tmp_path):
    """An OSC server on UDP and TCP (free ports) that analyses with the click analyser of osckit; a
    test module that needs other limits or callbacks defines its own ``server``, which takes precedence."""
    from osckit import click_analyze

    from idm_host.osc import OscServer

    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path / "osc-out").start()
    yield srv
    srv.stop()


# Peers on the OSC test servers (``server``: the one above or the test module's own).
@pytest.fixture
def udp(server):
    from osckit import UdpPeer

    peer = UdpPeer(server.udp_address)
    yield peer
    peer.close()


@pytest.fixture
def tcp(server):
    from osckit import TcpPeer

    peer = TcpPeer(server.tcp_address)
    yield peer
    peer.close()
