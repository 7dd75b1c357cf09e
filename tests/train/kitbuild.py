"""Tiny kits written by the tests themselves: a Hydrogen drumkit, an SFZ, an SF2 and a one-shot folder.

Each drum is a short, distinct synthetic sound so that tests can tell which sample played.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from idm_host.audio import save_audio

SR = 44100


def drum(kind: str, level: float = 0.8, length_s: float = 0.25, seed: int = 0) -> np.ndarray:
    """A distinct test sound per ``kind``; peak exactly ``level``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(length_s * SR)) / SR
    freq = {"kick": 60.0, "snare": 200.0, "hat": 7000.0, "ohat": 6000.0, "tom_lo": 90.0, "tom_mid": 130.0,
            "tom_hi": 180.0, "crash": 5000.0, "ride": 3000.0}[kind]
    x = np.sin(2 * np.pi * freq * t) + (0.3 * rng.standard_normal(t.size) if kind in ("snare", "hat", "ohat", "crash") else 0)
    x = x * np.exp(-12 * t)
    return (level * x / np.abs(x).max()).astype(np.float32)


def write_hydrogen(folder: Path, *, component_layout: bool = False) -> Path:
    """A drumkit.xml with kick (2 velocity layers), snare, closed hat, a clap (not a class), crash."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"kick_soft.wav": drum("kick", 0.4), "kick_hard.wav": drum("kick", 0.9),
             "snare.flac": drum("snare"), "hat.wav": drum("hat"), "clap.wav": drum("snare", seed=3),
             "crash.wav": drum("crash", length_s=1.0)}
    for name, x in files.items():
        save_audio(folder / name, np.stack([x, x]), SR, overwrite=True)  # stereo on disk
    def layers(*items):
        out = []
        for f, lo, hi, gain in items:
            out.append(f"<layer><filename>{f}</filename><min>{lo}</min><max>{hi}</max><gain>{gain}</gain><pitch>0</pitch></layer>")
        body = "".join(out)
        return f"<instrumentComponent><drumkitComponent>0</drumkitComponent><gain>1</gain>{body}</instrumentComponent>" \
            if component_layout else body
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>Test Kit</name>
 <instrumentList>
  <instrument><id>0</id><name>Kick</name><volume>1</volume><gain>1</gain><midiOutNote>36</midiOutNote>
   {layers(("kick_soft.wav", 0, 0.5, 1), ("kick_hard.wav", 0.5, 1, 1))}</instrument>
  <instrument><id>1</id><name>Snare</name><volume>1</volume><gain>0.5</gain><midiOutNote>38</midiOutNote>
   {layers(("snare.flac", 0, 1, 1))}</instrument>
  <instrument><id>2</id><name>Hand Clap</name><midiOutNote>39</midiOutNote>{layers(("clap.wav", 0, 1, 1))}</instrument>
  <instrument><id>3</id><name>Thing</name><midiOutNote>42</midiOutNote>{layers(("hat.wav", 0, 1, 1))}</instrument>
  <instrument><id>4</id><name>Crash</name><midiOutNote>60</midiOutNote>{layers(("crash.wav", 0, 1, 1))}</instrument>
 </instrumentList>
</drumkit_info>
"""
    (folder / "drumkit.xml").write_text(xml)
    return folder


def write_sfz(folder: Path) -> Path:
    """An SFZ with a default_path, #define, a kick with two velocity layers, a snare by note name,
    a tom region spanning notes 47-48 (keycenter 48, pitch tracked), and a release region."""
    (folder / "smp").mkdir(parents=True, exist_ok=True)
    save_audio(folder / "smp" / "k1.wav", drum("kick", 0.3), SR, overwrite=True)
    save_audio(folder / "smp" / "k2.wav", drum("kick", 0.9), SR, overwrite=True)
    save_audio(folder / "smp" / "sn.wav", drum("snare", 0.7), SR, overwrite=True)
    save_audio(folder / "smp" / "tom.wav", drum("tom_lo", 0.7), SR, overwrite=True)
    text = """// test kit
#define $KICK 36
<control> default_path=smp/
<global> volume=0
<group> key=$KICK
<region> sample=k1.wav lovel=1 hivel=64
<region> sample=k2.wav lovel=65 hivel=127
/* snare by name */
<group>
<region> sample=sn.wav key=d2 volume=-6
<region> sample=tom.wav lokey=47 hikey=48 pitch_keycenter=48
<region> sample=sn.wav key=38 trigger=release
"""
    path = folder / "kit.sfz"
    path.write_text(text)
    return path


def _chunk(cid: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return cid + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _name(s: str) -> bytes:
    return s.encode("latin-1")[:19].ljust(20, b"\0")


def write_sf2(path: Path, *, sample_rate: int = 22050, hat_name: str = "hat") -> Path:
    """An SF2 with a melodic preset (bank 0) and a drum preset 'Tiny Drums' (bank 128, program 0):
    kick on keys 35-36 with two velocity layers (1-63 soft, 64-127 hard), snare on 38 at -6 dB
    (attenuation 60 cB), closed hat on 42. Samples are 16-bit at ``sample_rate`` with root keys so
    that each key plays at its recorded pitch (the kick is rooted at 36, so key 35 is a semitone down).
    ``hat_name`` names the sample on key 42 (``Timpani 2``: the GS Orchestra set's layout, where a GM
    kit's hats and toms are timpani)."""
    sounds = [("kick_soft", drum("kick", 0.4, 0.2)), ("kick_hard", drum("kick", 0.9, 0.2)),
              ("snare", drum("snare", 0.8, 0.2)), (hat_name, drum("hat", 0.5, 0.1))]
    smpl = b""
    shdr = b""
    pos = 0
    for name, x in sounds:
        # resample the 44.1 kHz test sound to the file's rate by linear interpolation
        n = int(len(x) * sample_rate / SR)
        y = np.interp(np.arange(n) * SR / sample_rate, np.arange(len(x)), x)
        pcm = np.round(y * 32767).astype("<i2")
        smpl += pcm.tobytes() + b"\0" * 92  # 46 zero samples after each sample
        root = 36 if name.startswith("kick") else 60
        shdr += struct.pack("<20sIIIIIBbHH", _name(name), pos, pos + n, pos, pos + n, sample_rate, root, 0, 0, 1)
        pos += n + 46
    shdr += struct.pack("<20sIIIIIBbHH", _name("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)

    def gen(op: int, amount: int | tuple[int, int]) -> bytes:
        if isinstance(amount, tuple):
            return struct.pack("<HBB", op, amount[0], amount[1])
        return struct.pack("<Hh", op, amount) if amount < 0 else struct.pack("<HH", op, amount)

    # instruments: 0 = drums, 1 = a melodic one (uses the snare sample)
    izones = [
        [gen(43, (35, 36)), gen(44, (1, 63)), gen(53, 0)],
        [gen(43, (35, 36)), gen(44, (64, 127)), gen(53, 1)],
        [gen(43, (38, 38)), gen(48, 60), gen(58, 38), gen(53, 2)],
        [gen(43, (42, 42)), gen(58, 42), gen(53, 3)],
    ]
    mel_zones = [[gen(53, 2)]]
    ibag = b""
    igen = b""
    inst = b""
    gi = 0
    bi = 0
    for iname, zones in (("DrumInst", izones), ("Melodic", mel_zones)):
        inst += struct.pack("<20sH", _name(iname), bi)
        for z in zones:
            ibag += struct.pack("<HH", gi, 0)
            igen += b"".join(z)
            gi += len(z)
            bi += 1
    inst += struct.pack("<20sH", _name("EOI"), bi)
    ibag += struct.pack("<HH", gi, 0)
    igen += struct.pack("<HH", 0, 0)
    # presets: melodic (bank 0 prog 0) -> inst 1; drums (bank 128 prog 0) -> inst 0
    phdr = struct.pack("<20sHHHIII", _name("Piano"), 0, 0, 0, 0, 0, 0)
    phdr += struct.pack("<20sHHHIII", _name("Tiny Drums"), 0, 128, 1, 0, 0, 0)
    phdr += struct.pack("<20sHHHIII", _name("EOP"), 0, 0, 2, 0, 0, 0)
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0) + struct.pack("<HH", 2, 0)
    pgen = gen(41, 1) + gen(41, 0) + struct.pack("<HH", 0, 0)
    imod = pmod = b"\0" * 10
    body = b"sfbk" + _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", b"EMU8000\0"),
                          _chunk(b"INAM", b"Tiny\0\0")) \
        + _list(b"sdta", _chunk(b"smpl", smpl)) \
        + _list(b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", pmod), _chunk(b"pgen", pgen),
                _chunk(b"inst", inst), _chunk(b"ibag", ibag), _chunk(b"imod", imod), _chunk(b"igen", igen),
                _chunk(b"shdr", shdr))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def write_folder(folder: Path) -> Path:
    """One-shots named by class: kick_v1/kick_v2 (velocity layers), snare (two round-robin files),
    a sub-folder 'ride' with an oddly named file, and a file naming no class."""
    folder.mkdir(parents=True, exist_ok=True)
    save_audio(folder / "Kick_v1.wav", drum("kick", 0.3), SR, overwrite=True)
    save_audio(folder / "Kick_v2.wav", drum("kick", 0.9), SR, overwrite=True)
    save_audio(folder / "SD_a.wav", drum("snare", 0.5), SR, overwrite=True)
    save_audio(folder / "SD_b.flac", drum("snare", 0.6, seed=1), SR, overwrite=True)
    (folder / "ride").mkdir(exist_ok=True)
    save_audio(folder / "ride" / "take3.wav", drum("ride", 0.5), SR, overwrite=True)
    save_audio(folder / "vocal.wav", drum("snare", 0.5, seed=9), SR, overwrite=True)
    return folder
