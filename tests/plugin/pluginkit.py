"""Helpers for the IdmBridge tests: the built bundles, a server in another process, host loops."""
from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "plugin"
BIN = PLUGIN_DIR / "bin"
VST3 = BIN / "IdmBridge.vst3"
CLAP = BIN / "IdmBridge.clap"
LV2 = BIN / "IdmBridge.lv2"
HERE = Path(__file__).resolve().parent


class ServerProc:
    """``server_proc.py`` in a child process; ``port`` is its TCP port."""

    def __init__(self, out_dir: Path, mode: str = "clicks", timeout_s: float = 60.0):
        self.out_dir = Path(out_dir)
        self.proc = subprocess.Popen([sys.executable, str(HERE / "server_proc.py"), str(out_dir), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"server process did not start: {line!r}")
        self.port = int(line.split()[1])

    def received(self, timeout_s: float = 60.0, count: int = 1) -> list[np.ndarray]:
        """The audio of the streams analysed so far (waits for ``count`` of them), by stream id."""
        deadline = time.monotonic() + timeout_s
        while True:
            files = sorted(self.out_dir.glob("received-*.npy"), key=lambda p: int(p.stem.split("-")[1]))
            if len(files) >= count or time.monotonic() > deadline:
                return [np.load(f) for f in files]
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "ServerProc":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------- state
# JUCE (minihost, pedalboard) wraps a VST3 component's state as "VC2!" + XML holding
# "<IComponent>size.base64</IComponent>", in JUCE's own base64 (little-endian 6-bit groups over
# this alphabet). DPF's payload inside is NUL-separated "key value" pairs between markers.
_JUCE_B64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"
_ICOMP = re.compile(rb"<IComponent>(\d+)\.([^<]*)</IComponent>")


def _juce_decode(size: int, text: str) -> bytes:
    out = bytearray(size)
    bit = 0
    for ch in text:
        v = _JUCE_B64.index(ch)
        for b in range(6):
            if bit >= size * 8:
                break
            if v >> b & 1:
                out[bit >> 3] |= 1 << (bit & 7)
            bit += 1
    return bytes(out)


def _juce_encode(data: bytes) -> str:
    bits = len(data) * 8
    chars = []
    for start in range(0, bits, 6):
        v = 0
        for b in range(6):
            k = start + b
            if k < bits and data[k >> 3] >> (k & 7) & 1:
                v |= 1 << b
        chars.append(_JUCE_B64[v])
    return f"{len(data)}." + "".join(chars)


def _dpf_pairs(payload: bytes) -> tuple[dict[str, str], dict[str, str], bytes]:
    parts = payload.split(b"\0")
    states, params, section = {}, {}, None
    k = 0
    while k < len(parts):
        p = parts[k].decode("utf-8", "replace")
        if p in ("__dpf_state_begin__", "__dpf_parameters_begin__"):
            section = states if p == "__dpf_state_begin__" else params
            k += 1
            continue
        if p in ("__dpf_state_end__", "__dpf_parameters_end__"):
            section = None
            k += 1
            continue
        if section is not None and k + 1 < len(parts):
            section[p] = parts[k + 1].decode("utf-8", "replace")
            k += 2
            continue
        k += 1
    return states, params, payload


def vst3_state(blob: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """(states, parameters) of an IdmBridge VST3 state blob from JUCE."""
    m = _ICOMP.search(blob)
    if m is None:
        raise ValueError("no <IComponent> in the VST3 state")
    states, params, _ = _dpf_pairs(_juce_decode(int(m.group(1)), m.group(2).decode()))
    return states, params


def vst3_with_state(blob: bytes, **values: str) -> bytes:
    """``blob`` with DPF state keys set (host, port, drum_map, analysis)."""
    m = _ICOMP.search(blob)
    states, params = vst3_state(blob)
    states.update({k: str(v) for k, v in values.items()})
    out = [b"__dpf_state_begin__"]
    for k, v in states.items():
        out += [k.encode(), v.encode()]
    out.append(b"__dpf_state_end__")
    out.append(b"__dpf_parameters_begin__")
    for k, v in params.items():
        out += [k.encode(), v.encode()]
    out.append(b"__dpf_parameters_end__")
    payload = b"\0".join(out) + b"\0\xfe\0"  # DPF reads up to the 0xFE terminator
    xml = blob[8:m.start(1)] + _juce_encode(payload).encode() + blob[m.end(2):]
    if blob[:4] != b"VC2!":
        raise ValueError("not a JUCE VST3 state ('VC2!' header)")
    return b"VC2!" + struct.pack("<I", len(xml.rstrip(b"\0"))) + xml  # the header holds the XML's size


def set_states(plugin, **values) -> None:
    """Set DPF states on a minihost (VST3 or LV2) or pedalboard (VST3) instance."""
    if hasattr(plugin, "raw_state"):  # pedalboard
        plugin.raw_state = vst3_with_state(plugin.raw_state, **values)
        return
    blob = plugin.get_state()
    if blob.lstrip().startswith(b"<"):
        plugin.set_state(lv2_with_state(blob, **values))
    else:
        plugin.set_state(vst3_with_state(blob, **values))


def get_states(plugin) -> dict[str, str]:
    blob = plugin.raw_state if hasattr(plugin, "raw_state") else plugin.get_state()
    if blob.lstrip().startswith(b"<"):  # LV2 (minihost): Turtle
        return lv2_state(blob)
    return vst3_state(blob)[0]


# LV2 (minihost) state is Turtle; DPF names host-visible states <URI#key>, the others <urn:distrho:key>.
_LV2_KEY = r'<urn:(?:idm-host:IdmBridge#|distrho:)(\w+)>\s+'
_LV2_STATE = re.compile(_LV2_KEY + r'(?:"""(.*?)"""|"((?:[^"\\]|\\.)*)")', re.S)


def lv2_state(blob: bytes) -> dict[str, str]:
    text = blob.decode("utf-8", "replace").rstrip("\0")
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3).encode().decode("unicode_escape")
            for m in _LV2_STATE.finditer(text)}


def lv2_with_state(blob: bytes, **values: str) -> bytes:
    text = blob.decode("utf-8").rstrip("\0")

    def sub(m):
        key = m.group(1)
        if key not in values:
            return m.group(0)
        v = str(values[key]).replace("\\", "\\\\").replace('"', '\\"')
        return m.group(0)[: m.end(1) - m.start(0) + 1] + ' """' + v + '"""'

    return _LV2_STATE.sub(sub, text).encode("utf-8")


def status(plugin) -> dict[str, object]:
    """The plug-in's ``status`` state: counters as ints, and ``log``: its log lines."""
    text = get_states(plugin).get("status", "")
    out: dict[str, object] = {"log": []}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "log":
            out["log"].append(value)
        elif value.strip().isdigit():
            out[key] = int(value)
    return out


# ----------------------------------------------------------------------------------------- hosts
HOSTS = ("pedalboard-vst3", "minihost-vst3", "minihost-lv2")


def open_plugin(host: str, rate: int = 48000, block: int = 512):
    """An IdmBridge instance in a headless host: ``pedalboard-vst3``, ``minihost-vst3`` or
    ``minihost-lv2``."""
    if host == "pedalboard-vst3":
        import pedalboard

        return pedalboard.load_plugin(str(VST3))
    import minihost

    path = VST3 if host == "minihost-vst3" else LV2
    return minihost.Plugin(str(path), sample_rate=float(rate), max_block_size=block)


def set_param(plugin, name: str, value) -> None:
    """Set a parameter by its name, to a label (pedalboard) or a plain value (minihost)."""
    if hasattr(plugin, "raw_state"):  # pedalboard: by label or value
        setattr(plugin, name, value)
        return
    for i in range(plugin.num_params):
        info = plugin.get_param_info(i)
        if info["name"].lower().replace(" ", "_").startswith(name):  # "edit" is "Edit in idm-studio"
            lo, hi = 0.0, float({"capture": 2, "play_hits": 1, "drum_map": _n_maps() - 1, "edit": 1}[name])
            plugin.set_param(i, (float(value) - lo) / (hi - lo))
            return
    raise KeyError(name)


def _n_maps() -> int:
    return len(list((ROOT / "presets" / "drum_maps").glob("*.json")))


def drum_map_index(name: str) -> int:
    return sorted(p.stem for p in (ROOT / "presets" / "drum_maps").glob("*.json")).index(name)


def block_sizes(pattern=(512,)):
    k = 0
    while True:
        yield pattern[k % len(pattern)]
        k += 1


def run_pass(plugin, x: np.ndarray, rate: int, *, start: int = 0, blocks=(512,), playing: bool = True,
             realtime: bool = False, max_block_s: list | None = None):
    """Push ``x`` (channels, frames) through ``plugin`` block by block with the transport at
    ``start`` (minihost; pedalboard has no transport). Returns the output and the MIDI events as
    ``(timeline frame, status, data1, data2)``. ``realtime`` paces the blocks at the audio rate;
    ``max_block_s`` (a list) receives the longest single process call in seconds."""
    y = np.zeros_like(x)
    events = []
    pos = 0
    sizes = block_sizes(blocks)
    t0 = time.perf_counter()
    longest = 0.0
    pedal = hasattr(plugin, "raw_state")
    while pos < x.shape[1]:
        n = min(next(sizes), x.shape[1] - pos)
        inb = np.ascontiguousarray(x[:, pos:pos + n])
        c0 = time.perf_counter()
        if pedal:
            y[:, pos:pos + n] = plugin.process(inb, float(rate), reset=False)
        else:
            outb = np.zeros_like(inb)
            plugin.set_transport(120.0, position_samples=start + pos, is_playing=playing)
            for off, status, d1, d2 in plugin.process_midi(inb, outb, [], 1024):
                events.append((start + pos + off, status, d1, d2))
            y[:, pos:pos + n] = outb
        longest = max(longest, time.perf_counter() - c0)
        pos += n
        if realtime:
            ahead = pos / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    if max_block_s is not None:
        max_block_s.append(longest)
    return y, events


def stop_transport(plugin, rate: int, at: int = 0) -> None:
    """One block with the transport stopped (ends a take captured 'While playing')."""
    if hasattr(plugin, "raw_state"):
        return
    z = np.zeros((2, 64), np.float32)
    plugin.set_transport(120.0, position_samples=at, is_playing=False)
    plugin.process_midi(z, np.zeros_like(z), [], 64)


def wait_status(plugin, key: str, value: int, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = status(plugin)
        if st.get(key, 0) >= value or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def clicks(rate: int, seconds: float, kicks=(), snares=(), seed: int = 0) -> np.ndarray:
    """Quiet noise (|x| < 0.5) with +0.9 kicks and -0.8 snares at the given frames."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.standard_normal((2, int(rate * seconds))) * 0.05, -0.4, 0.4).astype(np.float32)
    for f in kicks:
        x[:, f] = 0.9
    for f in snares:
        x[:, f] = -0.8
    return x


def note_ons(events) -> list[tuple[int, int, int]]:
    """(frame, note, velocity) of the note-ons among MIDI events."""
    return [(f, d1, d2) for f, st, d1, d2 in events if st & 0xF0 == 0x90 and d2 > 0]
