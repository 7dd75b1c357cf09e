"""idm-host: drum transcription, separation, editing and re-rendering with the Inverse Drum Machine.

Public names are imported lazily, so ``import idm_host`` neither imports torch nor loads weights.

Example:
    >>> from idm_host import Separator, load_audio          # doctest: +SKIP
    >>> analysis = Separator().analyze(load_audio("loop.wav"))  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # errors
    "IdmError": "errors", "AudioError": "errors", "ModelError": "errors", "ChecksumError": "errors",
    "SessionError": "errors", "SchemaTooNewError": "errors", "PresetError": "errors",
    "MidiError": "errors", "OscError": "errors", "Cancelled": "errors",
    # types
    "Hit": "types", "Audio": "types", "Transcription": "types", "Kit": "types", "Stems": "types",
    "Analysis": "types", "ModelInfo": "types",
    # classes
    "DRUM_CLASSES": "classes", "IDM_CLASSES": "classes", "GROUPS": "classes",
    # audio
    "load_audio": "audio", "save_audio": "audio", "MODEL_SAMPLE_RATE": "audio",
    # progress
    "ProgressCallback": "progress",
    # models
    "list_models": "models", "model_path": "models", "import_official": "installs",
    # MIDI files, drum maps, MIDI ports, OSC bridge
    "write_midi": "midi", "read_midi": "midi", "midi_bytes": "midi",
    "DrumMap": "drum_maps", "load_drum_map": "drum_maps", "list_drum_maps": "drum_maps",
    "send_midi": "midi", "list_midi_outputs": "midi", "open_midi_output": "midi",
    "OscServer": "osc", "OscClient": "osc",
    # engine
    "Separator": "engine", "write_separation": "export", "pull_model": "installs",
    # session and tempo
    "Session": "session", "SessionHit": "session", "KitSlot": "session", "ChannelStrip": "session",
    "Change": "session", "AddHits": "session", "DeleteHits": "session", "MoveHits": "session",
    "SetVelocity": "session", "Quantize": "session", "ReplaceSample": "session",
    "RevertSample": "session", "SetKitParams": "session", "SetMixer": "session",
    "SetEffects": "session", "SetTempo": "session", "SetStems": "session", "Compound": "session",
    "Tempo": "tempo", "estimate_tempo": "tempo", "quantize": "tempo", "snap": "tempo",
    # rendering, effects, presets, kits
    "Render": "render", "render_session": "render", "export_stems": "render",
    "EffectChain": "fx", "load_effect_chain": "fx", "chain_to_json": "fx", "save_effect_chain": "fx",
    "load_preset": "presets", "list_presets": "presets", "load_kit": "kit_presets", "kit_command": "kit_presets",
    "synthesize_kit": "kitgen",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'idm_host' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
