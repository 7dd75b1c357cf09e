"""Helpers for the tests that run other programs (Pure Data, liblo's tools, jackd, pulseaudio,
``idm-host serve``): a free UDP port, stopping a process for sure, and a headless Pd patch's output."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_process(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL when ``proc`` has not exited after ``timeout_s``; returns once it has."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_group(proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """:func:`stop_process` for a process that leads its own group (``start_new_session``): the
    whole group gets the signals."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pd_patch_lines(pd: str, patch: Path, sends: str, until: tuple[str, ...], timeout_s: float) -> list[str]:
    """Run ``patch`` in a headless Pd (no GUI, audio or MIDI) with the ``-send`` messages ``sends``,
    until it prints a line starting with one of ``until``, exits, or ``timeout_s`` passes; its output lines."""
    proc = subprocess.Popen([pd, "-nogui", "-nosound", "-nomidi", "-stderr", "-open", str(patch), "-send", sends],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not any(line.startswith(until) for line in lines) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        stop_process(proc)
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
    return lines
