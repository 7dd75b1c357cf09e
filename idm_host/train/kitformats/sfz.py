"""SFZ instruments: regions with keys, velocity ranges, ``#include``/``#define``, sample paths.

Imported through :mod:`idm_host.train.kits`, which holds the one loader (:func:`~idm_host.train.kits.load_kit`).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ...levels import db_to_gain
from .base import (GM_KIT_NOTES, Instrument, KitError, PathLike, _SampleCache, SampledKit, SampleLayer, _add, _finish,
                   repitch)

#: The loaders log under the name they had before the split, ``idm_host.train.kits``.
log = logging.getLogger("idm_host.train.kits")

_NOTE_NAME = re.compile(r"^([a-g])([#b]?)(-?\d+)$", re.I)
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def parse_note(value: str) -> int:
    """A MIDI note from a number or a name with C4 = 60 (``"c#2"`` -> 37, ``"36"`` -> 36)."""
    v = value.strip()
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    m = _NOTE_NAME.match(v)
    if not m:
        raise ValueError(f"not a note: {value!r}")
    acc = {"#": 1, "b": -1, "": 0}[m.group(2).lower()]
    return 12 * (int(m.group(3)) + 1) + _PITCH_CLASS[m.group(1).lower()] + acc


def _sfz_text(path: Path, depth: int = 0) -> str:
    if depth > 8:
        raise KitError(f"{path}: #include nests too deeply; check for an include loop")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise KitError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)

    def include(m: re.Match) -> str:
        return _sfz_text(path.parent / m.group(1).replace("\\", "/"), depth + 1)

    return re.sub(r'#include\s+"([^"]+)"', include, text)


def _sfz_regions(text: str, sfz: Path) -> list[dict[str, str]]:
    defines: dict[str, str] = {}

    def define(m: re.Match) -> str:
        defines[m.group(1)] = m.group(2).strip()
        return ""

    text = re.sub(r"#define\s+(\$\w+)\s+([^\n]+)", define, text)
    for k in sorted(defines, key=len, reverse=True):
        text = text.replace(k, defines[k])
    tokens = re.split(r"<(\w+)>", text)
    levels: dict[str, dict[str, str]] = {"control": {}, "global": {}, "master": {}, "group": {}}
    order = ("control", "global", "master", "group")
    regions: list[dict[str, str]] = []
    if tokens[0].strip() and "=" in tokens[0]:
        raise KitError(f"{sfz}: opcodes before any <header>; the file is not valid SFZ")
    for header, body in zip(tokens[1::2], tokens[2::2]):
        header = header.lower()
        opcodes: dict[str, str] = {}
        matches = list(re.finditer(r"(?:^|\s)(\w+)=", body))
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
            opcodes[m.group(1).lower()] = body[m.end():end].strip()
        if header in levels:
            levels[header] = dict(opcodes)
            for lower in order[order.index(header) + 1:]:
                levels[lower] = {}
        elif header == "region":
            merged: dict[str, str] = {}
            for lvl in order:
                merged.update(levels[lvl])
            merged.update(opcodes)
            regions.append(merged)
        elif header in ("curve", "effect", "midi", "sample"):
            continue
        else:
            log.debug("%s: header <%s> ignored", sfz, header)
    return regions


def load_sfz_kit(path: PathLike) -> SampledKit:
    """Load an SFZ drum kit: regions with ``key`` / ``lokey``-``hikey``, ``lovel``-``hivel``, ``sample``.

    Understood: ``<control>`` ``default_path``, ``<global>``/``<master>``/``<group>`` inheritance,
    ``#define``, ``#include``, note names (C4 = 60), ``pitch_keycenter``, ``pitch_keytrack``,
    ``transpose``, ``tune``, ``volume`` (dB), ``amplitude`` (%), ``offset``/``end``, ``seq_position``
    (round robin); release-triggered regions are skipped. Regions of one key with the same velocity
    range and sequence position sound together (they are summed).

    Raises:
        KitError: the file is missing or malformed, a sample is missing, or no region is a drum.
    """
    sfz = Path(path)
    if not sfz.is_file():
        raise KitError(f"{sfz}: SFZ file not found; check the path")
    regions = _sfz_regions(_sfz_text(sfz), sfz)
    if not regions:
        raise KitError(f"{sfz}: no <region> found; the file is not an SFZ instrument")
    cache = _SampleCache()
    # note -> (lovel, hivel, seq) -> summed sample
    layers: dict[int, dict[tuple[int, int, int], np.ndarray]] = {}
    gains: dict[int, dict[tuple[int, int, int], float]] = {}
    for r in regions:
        sample = r.get("sample", "").replace("\\", "/")
        if not sample or sample.startswith("*"):
            continue
        if r.get("trigger", "attack").lower() not in ("attack", "first"):
            continue
        try:
            if "key" in r:
                lokey = hikey = center = parse_note(r["key"])
            else:
                lokey, hikey = parse_note(r.get("lokey", "0")), parse_note(r.get("hikey", "127"))
                center = parse_note(r.get("pitch_keycenter", "60"))
            if "pitch_keycenter" in r:
                center = parse_note(r["pitch_keycenter"])
            lovel, hivel = int(r.get("lovel", 1)), int(r.get("hivel", 127))
            keytrack = float(r.get("pitch_keytrack", 100))
            shift = float(r.get("transpose", 0)) + float(r.get("tune", 0)) / 100.0
            gain = db_to_gain(float(r.get("volume", 0))) * float(r.get("amplitude", 100)) / 100.0
            offset, end = int(r.get("offset", 0)), int(r.get("end", -1))
            seq = int(r.get("seq_position", 1))
        except ValueError as exc:
            raise KitError(f"{sfz}: region with sample {sample!r} has a bad value ({exc}); fix the opcode") from exc
        notes = [n for n in range(max(lokey, 0), min(hikey, 127) + 1) if n in GM_KIT_NOTES]
        if not notes:
            continue
        sample_path = sfz.parent / (r.get("default_path", "").replace("\\", "/")) / sample
        raw = cache.load(sample_path, sfz)
        if raw is None:
            continue
        if offset or end >= 0:
            raw = raw[offset: (end + 1 if end >= 0 else None)]
        for n in notes:
            semis = (n - center) * keytrack / 100.0 + shift
            x = repitch(raw, semis) if abs(semis) > 1e-3 else raw
            key = (lovel, hivel, seq)
            slot = layers.setdefault(n, {})
            g = gains.setdefault(n, {})
            if key in slot:
                a, b = slot[key], x * gain / g[key]
                out = np.zeros(max(a.size, b.size), np.float32)
                out[: a.size] += a
                out[: b.size] += b
                slot[key] = out
            else:
                slot[key], g[key] = x, gain
    instruments: dict[int, list[Instrument]] = {}
    for n, slot in layers.items():
        lay = tuple(SampleLayer(x, (lo - 1) / 127.0 if lo > 1 else 0.0, hi / 127.0, gains[n][(lo, hi, s)])
                    for (lo, hi, s), x in sorted(slot.items()))
        _add(instruments, Instrument(f"{sfz.stem} note {n}", n, lay))
    return _finish(sfz.stem, instruments, sfz, "sfz")
