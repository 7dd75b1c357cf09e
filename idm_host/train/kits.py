"""Sampled drum kits for training data: Hydrogen drumkits, SoundFont (SF2) drum presets, SFZ, and
plain folders of one-shots named by class.

Every loader returns a :class:`SampledKit`: per General MIDI drum note, one or more
:class:`Instrument` s (alternatives, e.g. a jazz and a rock snare), each a list of velocity-layered
mono float32 samples at 44.1 kHz. A note's drum class comes from :data:`GM_KIT_NOTES`.

Velocity is applied the same way for every format: the layer whose velocity range holds the hit's
velocity is chosen (the narrowest when ranges nest, at random among equals: round robin), then
scaled linearly by the velocity. Format-specific velocity curves are not modelled.

Example:
    >>> kit = load_kit("/usr/share/hydrogen/data/drumkits/ForzeeStereo")   # doctest: +SKIP
    >>> kit.classes                                                       # doctest: +SKIP
    ('CY_CR', 'CY_RD', 'HH_CHH', 'HH_OHH', 'KD', 'SD', 'TT_HFT', 'TT_HMT', 'TT_LMT')
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..classes import DRUM_CLASSES
from ..drumsynth import SAMPLE_RATE, envelope, finish, highpass, noise, partials, sweep, time_axis
from .kitformats.base import (CLASS_NOTES, GM_KIT_NOTES, LEAD_TRIM, MAX_SAMPLE_S, PATTERN_NOTES, SILENT_PEAK,
                              Instrument, KitError, PathLike, SampledKit, SampleLayer, note_for_name, prepare_sample,
                              repitch)
from .kitformats.folder import load_folder_kit
from .kitformats.hydrogen import load_hydrogen_kit
from .kitformats.sf2 import Sf2Preset, list_sf2_presets, load_sf2_kit
from .kitformats.sfz import load_sfz_kit, parse_note

__all__ = ["CLASS_NOTES", "GM_KIT_NOTES", "KIT_KINDS", "LEAD_TRIM", "MAX_SAMPLE_S", "PATTERN_NOTES", "SILENT_PEAK",
           "Instrument", "KitError", "PathLike", "SampleLayer", "SampledKit", "Sf2Preset", "detect_kit_kind",
           "kit_classes", "list_sf2_presets", "load_folder_kit", "load_hydrogen_kit", "load_kit", "load_sf2_kit",
           "load_sfz_kit", "note_for_name", "parse_note", "prepare_sample", "repitch", "synthetic_kit"]

KIT_KINDS = ("hydrogen", "sf2", "sfz", "folder")
# synthetic_kit's noise: the one-pole high-pass at 15 kHz, once (hats, crash) or twice (snare, ride), stays
# within 1.5 dB (rms over 0.3..20 kHz) of the moving-average high-passes the kit was first made with
_HISS_HZ = 15000.0


# ------------------------------------------------------------------ any kit
def detect_kit_kind(path: PathLike) -> str:
    """``hydrogen``, ``sf2``, ``sfz`` or ``folder``, from the path.

    Raises:
        KitError: the path does not exist or is a file of another kind.
    """
    p = Path(path)
    if not p.exists():
        raise KitError(f"{p}: kit not found; check the path")
    if p.is_dir():
        return "hydrogen" if (p / "drumkit.xml").exists() else "folder"
    suffix = p.suffix.lower()
    if suffix == ".sf2":
        return "sf2"
    if suffix == ".sfz":
        return "sfz"
    if p.name == "drumkit.xml":
        return "hydrogen"
    raise KitError(f"{p}: unknown kit format {suffix!r}; use a Hydrogen drumkit folder, .sf2, .sfz or a folder of one-shots")


def load_kit(path: PathLike, *, kind: str | None = None, preset: int | str | None = None) -> SampledKit:
    """Load any supported kit (format detected from the path unless ``kind`` is given).

    Args:
        path: a Hydrogen drumkit folder, a ``.sf2``, a ``.sfz`` or a folder of one-shots.
        kind: one of :data:`KIT_KINDS`.
        preset: for SF2 only: program number or name in bank 128.

    Raises:
        KitError: anything wrong with the kit, with the file and the fix in the message.
    """
    kind = kind or detect_kit_kind(path)
    if kind not in KIT_KINDS:
        raise KitError(f"{path}: unknown kit kind {kind!r}; use one of {', '.join(KIT_KINDS)}")
    if kind == "sf2":
        return load_sf2_kit(path, preset)
    if preset is not None:
        raise KitError(f"{path}: 'preset' applies to SoundFonts only, not to a {kind} kit; remove it")
    return {"hydrogen": load_hydrogen_kit, "sfz": load_sfz_kit, "folder": load_folder_kit}[kind](path)


def synthetic_kit(seed: int = 0, *, name: str | None = None) -> SampledKit:
    """A small kit synthesised from noise and sines (the project's own; handy for tests and demos).

    Each class gets a distinct recipe (pitched decaying sine for kick and toms, noise bursts with
    different decays and filters for snare, hats and cymbals); ``seed`` varies pitches and decays.
    The recipes are written over :mod:`idm_host.drumsynth`; decays are time constants in seconds
    (``1 / rng.uniform(...)`` where the seed draws a rate, as the kit was first made).
    """
    rng = np.random.default_rng(seed)

    def burst(length_s: float, passes: int) -> np.ndarray:
        """Noise high-passed ``passes`` times at _HISS_HZ (bright as a snare's wires), unit RMS."""
        x, impulse = noise(rng, time_axis(length_s)), np.eye(1, 256).ravel()
        for _ in range(passes):
            x, impulse = highpass(x, _HISS_HZ), highpass(impulse, _HISS_HZ)
        return x / np.sqrt(np.sum(impulse ** 2))

    def decay(length_s: float, tau_s: float) -> np.ndarray:
        return envelope(time_axis(length_s), tau_s, attack_s=0.0)

    def tone(f0: float, drop: float, tau_s: float, noise_level: float, length_s: float = 0.6) -> np.ndarray:
        t = time_axis(length_s)
        e = envelope(t, tau_s, attack_s=0.0)
        return sweep(t, f0 * (1 + drop), f0, 1 / 30) * e + noise_level * noise(rng, t) * e ** 3

    recipes = {
        36: lambda: tone(rng.uniform(45, 65), 2.0, 1 / rng.uniform(8, 14), 0.05),
        38: lambda: 0.5 * tone(rng.uniform(170, 220), 0.5, 1 / 25, 0.0, 0.4)
        + 0.82 * burst(0.4, 2) * decay(0.4, 1 / rng.uniform(14, 22)),
        42: lambda: burst(0.15, 1) * decay(0.15, 1 / rng.uniform(40, 70)) * 0.6,
        46: lambda: burst(1.0, 1) * decay(1.0, 1 / rng.uniform(4, 7)) * 0.5,
        43: lambda: tone(rng.uniform(80, 100), 0.3, 1 / 7, 0.02),
        47: lambda: tone(rng.uniform(120, 140), 0.3, 1 / 8, 0.02),
        50: lambda: tone(rng.uniform(170, 200), 0.3, 1 / 9, 0.02),
        49: lambda: burst(2.5, 1) * decay(2.5, 1 / rng.uniform(1.5, 2.5)) * 0.5,
        51: lambda: (0.2 * burst(2.0, 2) + partials(time_axis(2.0), (rng.uniform(2500, 3500),), (0.3,)))
        * decay(2.0, 1 / rng.uniform(2.0, 3.5)),
    }
    instruments: dict[int, tuple[Instrument, ...]] = {}
    for note, make in recipes.items():
        layers = []
        for lo, hi in ((0.0, 0.5), (0.5, 1.0)):
            x = finish(make(), 0.6 if hi <= 0.5 else 0.9, fade_s=0.0)
            layers.append(SampleLayer(prepare_sample(x), lo, hi))  # type: ignore[arg-type]
        instruments[note] = (Instrument(f"synthetic {DRUM_CLASSES[GM_KIT_NOTES[note]].name}", note, tuple(layers)),)
    return SampledKit(name or f"synthetic-{seed}", instruments, SAMPLE_RATE, None, "synthetic")


def kit_classes(kits: Iterable[SampledKit]) -> tuple[str, ...]:
    """The classes any of ``kits`` can play, sorted."""
    return tuple(sorted({c for k in kits for c in k.classes}))
