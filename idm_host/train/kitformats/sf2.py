"""SoundFont 2 drum presets (bank 128): the RIFF chunks read directly, each zone rendered per note.

Imported through :mod:`idm_host.train.kits`, which holds the one loader (:func:`~idm_host.train.kits.load_kit`).
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...audio import MODEL_SAMPLE_RATE
from ...levels import db_to_gain
from .base import (GM_KIT_NOTES, MAX_SAMPLE_S, Instrument, KitError, PathLike, SampledKit, SampleLayer, _add, _finish,
                   prepare_sample, repitch)

#: The loaders log under the name they had before the split, ``idm_host.train.kits``.
log = logging.getLogger("idm_host.train.kits")

# generator operators (SoundFont 2.04, section 8.1.2)
_G_START, _G_END, _G_STARTLOOP, _G_ENDLOOP = 0, 1, 2, 3
_G_START_COARSE, _G_END_COARSE = 4, 12
_G_STARTLOOP_COARSE, _G_ENDLOOP_COARSE = 45, 50
_G_HOLD_VOL, _G_DECAY_VOL, _G_SUSTAIN_VOL = 35, 36, 37
_G_INSTRUMENT, _G_KEYRANGE, _G_VELRANGE = 41, 43, 44
_G_ATTENUATION, _G_COARSE, _G_FINE = 48, 51, 52
_G_SAMPLE_ID, _G_SAMPLE_MODES, _G_SCALE_TUNING, _G_ROOT_KEY = 53, 54, 56, 58
_RANGE_GENS = (_G_KEYRANGE, _G_VELRANGE)
_ADDITIVE_PRESET_GENS = (_G_ATTENUATION, _G_COARSE, _G_FINE)

#: The keys of the GS Orchestra set (bank 128, program 48) that do not play a GM drum: 41-53, a GM
#: kit's toms, hats, crash and ride, hold timpani (no class of the model), and 59, a GM ride, a
#: concert cymbal (SC-55 owner's manual). FluidR3_GM's Orchestra Kit is laid out so; its hats, on
#: 27-29, sound together with the High Q, Slap and Scratch of its Misc. Percussion zones on the same
#: keys, so they are not taken either. TimGM6mb's program 48, named Orchestra too, is laid out as a GM
#: kit (Acoustic Tom on 41-50) and is read as one: a preset is read as the GS Orchestra set only where
#: a zone on these keys plays a sample named timpani. Read as a GM kit, FluidR3's set taught timpani
#: as toms, hi-hats, crash and ride (spectral centroid 155-549 Hz; MODEL_CARD.md, session 14).
ORCHESTRA_NOT_DRUMS = frozenset(range(41, 54)) | {59}


@dataclass(frozen=True)
class Sf2Preset:
    """One preset of a SoundFont: ``bank`` 128 holds the drum kits."""

    name: str
    bank: int
    program: int


@dataclass
class _Sf2:
    path: Path
    smpl_offset: int
    smpl_bytes: int
    sm24_offset: int | None
    presets: list[tuple[str, int, int, int]]  # name, program, bank, bag index
    pbag: list[tuple[int, int]]
    pgen: list[tuple[int, bytes]]
    insts: list[tuple[str, int]]
    ibag: list[tuple[int, int]]
    igen: list[tuple[int, bytes]]
    shdr: list[tuple]  # name, start, end, startloop, endloop, rate, pitch, correction, link, type
    cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


def _sf2_name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _read_sf2(path: Path) -> _Sf2:
    def bad(problem: str) -> KitError:
        return KitError(f"{path}: {problem}; the file is not a valid SoundFont 2")

    if not path.is_file():
        raise KitError(f"{path}: SoundFont file not found; check the path")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise bad("no RIFF 'sfbk' header")
        chunks: dict[str, tuple[int, int]] = {}
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"LIST":
                kind = f.read(4)
                sub, end = pos + 12, min(pos + 8 + csize, size)
                while sub + 8 <= end:
                    f.seek(sub)
                    sid, ssize = struct.unpack("<4sI", f.read(8))
                    chunks[f"{kind.decode('latin-1')}/{sid.decode('latin-1')}"] = (sub + 8, ssize)
                    sub += 8 + ssize + (ssize & 1)
            pos += 8 + csize + (csize & 1)
        need = ("sdta/smpl", "pdta/phdr", "pdta/pbag", "pdta/pgen", "pdta/inst", "pdta/ibag", "pdta/igen", "pdta/shdr")
        missing = [n for n in need if n not in chunks]
        if missing:
            raise bad(f"chunks {', '.join(missing)} are missing")

        def read(name: str) -> bytes:
            off, n = chunks[name]
            f.seek(off)
            data = f.read(n)
            if len(data) != n:
                raise bad(f"chunk {name} is truncated")
            return data

        def records(name: str, fmt: str) -> list[tuple]:
            data = read(name)
            step = struct.calcsize(fmt)
            if len(data) % step:
                raise bad(f"chunk {name} has a size that is not a multiple of {step}")
            return [struct.unpack_from(fmt, data, i) for i in range(0, len(data), step)]

        phdr = [(_sf2_name(r[0]), r[1], r[2], r[3]) for r in records("pdta/phdr", "<20sHHHIII")]
        pbag = [(r[0], r[1]) for r in records("pdta/pbag", "<HH")]
        pgen = [(r[0], r[1]) for r in records("pdta/pgen", "<H2s")]
        inst = [(_sf2_name(r[0]), r[1]) for r in records("pdta/inst", "<20sH")]
        ibag = [(r[0], r[1]) for r in records("pdta/ibag", "<HH")]
        igen = [(r[0], r[1]) for r in records("pdta/igen", "<H2s")]
        shdr = [(_sf2_name(r[0]),) + tuple(r[1:]) for r in records("pdta/shdr", "<20sIIIIIBbHH")]
    if len(phdr) < 2 or len(inst) < 2 or len(shdr) < 2:
        raise bad("it holds no preset, instrument or sample")
    smpl_off, smpl_n = chunks["sdta/smpl"]
    sm24 = chunks.get("sdta/sm24")
    return _Sf2(path, smpl_off, smpl_n, sm24[0] if sm24 and sm24[1] >= smpl_n // 2 else None,
                phdr, pbag, pgen, inst, ibag, igen, shdr)


def _zones(bags: list[tuple[int, int]], gens: list[tuple[int, bytes]], first: int, last: int,
           terminal: int, path: Path) -> list[dict[int, bytes]]:
    out = []
    for b in range(first, last):
        if b + 1 >= len(bags):
            raise KitError(f"{path}: zone index {b} is out of range; the SoundFont is damaged")
        g0, g1 = bags[b][0], bags[b + 1][0]
        if g1 > len(gens) or g0 > g1:
            raise KitError(f"{path}: generator index out of range; the SoundFont is damaged")
        out.append({op: amount for op, amount in gens[g0:g1]})
    return out


def _s16(b: bytes) -> int:
    return struct.unpack("<h", b)[0]


def _rng(b: bytes | None) -> tuple[int, int]:
    return (0, 127) if b is None else (b[0], b[1])


def list_sf2_presets(path: PathLike, *, bank: int | None = 128) -> list[Sf2Preset]:
    """The presets of a SoundFont (only ``bank``'s; ``None`` for all), sorted by bank and program.

    Raises:
        KitError: the file is missing or not a SoundFont 2.
    """
    sf = _read_sf2(Path(path))
    out = [Sf2Preset(n, b, p) for n, p, b, _ in sf.presets[:-1] if bank is None or b == bank]
    return sorted(out, key=lambda x: (x.bank, x.program))


def _sf2_sample(sf: _Sf2, index: int, start_off: int, end_off: int) -> tuple[np.ndarray, tuple]:
    if not 0 <= index < len(sf.shdr) - 1:
        raise KitError(f"{sf.path}: a zone points at sample {index}, which does not exist; the SoundFont is damaged")
    hdr = sf.shdr[index]
    start, end = hdr[1] + start_off, hdr[2] + end_off
    n_total = sf.smpl_bytes // 2
    if not 0 <= start < end <= n_total:
        raise KitError(f"{sf.path}: sample {hdr[0]!r} lies outside the sample data; the SoundFont is damaged")
    key = (start, end)
    if key not in sf.cache:
        with open(sf.path, "rb") as f:
            f.seek(sf.smpl_offset + 2 * start)
            x = np.frombuffer(f.read(2 * (end - start)), dtype="<i2").astype(np.float32) / 32768.0
            if sf.sm24_offset is not None:
                f.seek(sf.sm24_offset + start)
                low = np.frombuffer(f.read(end - start), dtype=np.uint8).astype(np.float32)
                x = x + low / (32768.0 * 256.0)
        sf.cache[key] = x
    return sf.cache[key], hdr


def _render_zone(sf: _Sf2, gens: dict[int, bytes], note: int) -> np.ndarray | None:
    """One key of one instrument zone, as played at 44.1 kHz (no velocity curve)."""
    def s(op: int, default: int = 0) -> int:
        return _s16(gens[op]) if op in gens else default

    start_off = s(_G_START) + 32768 * s(_G_START_COARSE)
    end_off = s(_G_END) + 32768 * s(_G_END_COARSE)
    raw, hdr = _sf2_sample(sf, struct.unpack("<H", gens[_G_SAMPLE_ID])[0], start_off, end_off)
    _, start, _, loop_start, loop_end, rate, orig_pitch, correction, _, _ = hdr
    if rate <= 0:
        raise KitError(f"{sf.path}: sample {hdr[0]!r} has sample rate {rate}; the SoundFont is damaged")
    root = s(_G_ROOT_KEY, -1)
    root = root if 0 <= root <= 127 else (orig_pitch if orig_pitch <= 127 else 60)
    semis = (note - root) * s(_G_SCALE_TUNING, 100) / 100.0 + s(_G_COARSE) + (s(_G_FINE) + correction) / 100.0
    x = raw
    if s(_G_SAMPLE_MODES) in (1, 3):  # looped: repeat the loop to MAX_SAMPLE_S, the cut fades it
        ls = loop_start + s(_G_STARTLOOP) + 32768 * s(_G_STARTLOOP_COARSE) - start - start_off
        le = loop_end + s(_G_ENDLOOP) + 32768 * s(_G_ENDLOOP_COARSE) - start - start_off
        if 0 <= ls < le <= x.size:
            reps = int(np.ceil(max(MAX_SAMPLE_S * rate - le, 0) / (le - ls))) + 1
            x = np.concatenate([x[:le], np.tile(x[ls:le], reps)])
    x = repitch(x, semis, from_rate=int(rate))
    # volume envelope: hold, then a dB-linear decay towards the sustain level (no note-off)
    hold_s = 2.0 ** (s(_G_HOLD_VOL, -12000) / 1200.0)
    decay_s = 2.0 ** (s(_G_DECAY_VOL, -12000) / 1200.0)
    sustain_db = min(max(s(_G_SUSTAIN_VOL), 0), 1440) / 10.0
    if sustain_db > 0:
        t = np.arange(x.size) / MODEL_SAMPLE_RATE
        db = np.minimum(96.0 * np.clip(t - hold_s, 0, None) / max(decay_s, 1e-3), sustain_db)
        x = x * db_to_gain(-db).astype(np.float32)
    attenuation_db = min(max(s(_G_ATTENUATION), 0), 1440) / 10.0
    return prepare_sample(x * np.float32(db_to_gain(-attenuation_db)))


def load_sf2_kit(path: PathLike, preset: int | str | None = None, *, bank: int = 128) -> SampledKit:
    """Load a drum preset of a SoundFont 2 file by reading its samples (no synthesiser needed).

    Args:
        path: the ``.sf2`` file.
        preset: program number or preset name; ``None`` takes the first drum preset (lowest program).
        bank: the preset bank; 128 is the GM percussion bank.

    Each key of the preset that is a model class becomes an instrument (the GS Orchestra set, told
    by its timpani, without the keys that are not drums there: :data:`ORCHESTRA_NOT_DRUMS`); instrument
    zones with the same velocity range are summed (stereo pairs at half level each), different ranges
    are velocity layers. Key tracking, root key, tuning, attenuation, sample offsets, loops and the
    hold/decay/sustain volume envelope are applied; filters, modulators and release are not.

    Raises:
        KitError: the file is not a SoundFont, the preset does not exist, or it holds no drum.
    """
    p = Path(path)
    sf = _read_sf2(p)
    presets = [(i, r) for i, r in enumerate(sf.presets[:-1]) if r[2] == bank]
    if preset is None:
        chosen = min(presets, key=lambda ir: ir[1][1]) if presets else None
    elif isinstance(preset, int) or (isinstance(preset, str) and preset.isdigit()):
        chosen = next((ir for ir in presets if ir[1][1] == int(preset)), None)
    else:
        chosen = next((ir for ir in presets if ir[1][0].lower() == str(preset).lower()), None)
    if chosen is None:
        names = ", ".join(f"{r[1]} {r[0]!r}" for _, r in presets) or "none"
        raise KitError(f"{p}: no preset {preset!r} in bank {bank}; available: {names}")
    index, (preset_name, program, _, bag0) = chosen
    bag1 = sf.presets[index + 1][3]
    pzones = _zones(sf.pbag, sf.pgen, bag0, bag1, 0, p)
    pglobal = pzones[0] if pzones and _G_INSTRUMENT not in pzones[0] else {}
    zones = []  # (generators, key range, velocity range, stereo weight, sample name) per played zone
    for pz in pzones:
        if _G_INSTRUMENT not in pz:
            continue
        pz = {**pglobal, **pz}
        ii = struct.unpack("<H", pz[_G_INSTRUMENT])[0]
        if not 0 <= ii < len(sf.insts) - 1:
            raise KitError(f"{p}: preset {preset_name!r} points at instrument {ii}, which does not exist")
        izones = _zones(sf.ibag, sf.igen, sf.insts[ii][1], sf.insts[ii + 1][1], 0, p)
        iglobal = izones[0] if izones and _G_SAMPLE_ID not in izones[0] else {}
        pk, pv = _rng(pz.get(_G_KEYRANGE)), _rng(pz.get(_G_VELRANGE))
        for iz in izones:
            if _G_SAMPLE_ID not in iz:
                continue
            gens = {**iglobal, **iz}
            for op in _ADDITIVE_PRESET_GENS:  # preset generators add to the instrument's
                if op in pz:
                    gens[op] = struct.pack("<h", _s16(gens.get(op, b"\0\0")) + _s16(pz[op]))
            ik, iv = _rng(gens.get(_G_KEYRANGE)), _rng(gens.get(_G_VELRANGE))
            keys = (max(pk[0], ik[0]), min(pk[1], ik[1]))
            vel = (max(pv[0], iv[0]), min(pv[1], iv[1]))
            if vel[0] > vel[1] or keys[0] > keys[1]:
                continue
            sid = struct.unpack("<H", gens[_G_SAMPLE_ID])[0]
            sample_type, sample_name = (sf.shdr[sid][9], sf.shdr[sid][0]) if sid < len(sf.shdr) else (1, "")
            zones.append((gens, keys, vel, 0.5 if sample_type & 0x7FFF in (2, 4) else 1.0, sample_name))
    orchestra = bank == 128 and any("timpani" in name.lower() and not ORCHESTRA_NOT_DRUMS.isdisjoint(range(lo, hi + 1))
                                    for _, (lo, hi), _, _, name in zones)
    if orchestra:
        log.info("%s: preset %r holds timpani where a GM kit has toms: read as the GS Orchestra set, without "
                 "keys %s", p, preset_name, sorted(ORCHESTRA_NOT_DRUMS))
    # note -> (vlo, vhi) -> (summed samples)
    per_note: dict[int, dict[tuple[int, int], np.ndarray]] = {}
    for gens, (klo, khi), (vlo, vhi), weight, _ in zones:
        for key in range(klo, khi + 1):
            if key not in GM_KIT_NOTES or (orchestra and key in ORCHESTRA_NOT_DRUMS):
                continue
            x = _render_zone(sf, gens, key)
            if x is None:
                continue
            slot = per_note.setdefault(key, {})
            prev = slot.get((vlo, vhi))
            if prev is None:
                slot[(vlo, vhi)] = x * np.float32(weight)
            else:
                out = np.zeros(max(prev.size, x.size), np.float32)
                out[: prev.size] += prev
                out[: x.size] += x * np.float32(weight)
                slot[(vlo, vhi)] = out
    instruments: dict[int, list[Instrument]] = {}
    for note, slot in per_note.items():
        layers = tuple(SampleLayer(x, lo / 127.0 if lo > 0 else 0.0, hi / 127.0)
                       for (lo, hi), x in sorted(slot.items()))
        _add(instruments, Instrument(f"{preset_name} note {note}", note, layers))
    return _finish(f"{p.stem}:{preset_name}", instruments, p, "sf2")
