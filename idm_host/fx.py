"""Effect chains: pedalboard plugins <-> JSON, validation, and VST3 plugins hosted in a child process.

pedalboard has no serialiser, so this module keeps an allow-list of its built-in effects with each
parameter's type and range, turns chains into JSON and back (the round trip renders bit-identical
audio), and rejects unknown effects, unknown parameters and out-of-range values with a
:class:`~idm_host.errors.PresetError` naming the effect, the parameter and the allowed range.

A chain in JSON (an ``fx`` preset file, or inline in a session)::

    {"schema_version": 1, "name": "tight-kick", "description": "...",
     "effects": [
        {"type": "HighpassFilter", "params": {"cutoff_frequency_hz": 30}},
        {"type": "Compressor", "params": {"threshold_db": -18, "ratio": 4, "attack_ms": 5}},
        {"type": "Mix", "chains": [[], [{"type": "Distortion", "params": {"drive_db": 30}}]]},
        {"type": "VST3", "path": "/usr/lib/vst3/ZamCompX2.vst3", "params": {"ratio": 4}}
     ]}

A bare list of effects, or a preset name (``"tight-kick"``), is accepted wherever a chain is.
``Mix`` runs its chains in parallel and sums them (an empty chain is the dry signal); ``Chain``
nests a serial chain. VST3 plugins run in a child process (:class:`PluginHost`), so a plugin that
crashes raises :class:`PluginCrashedError` instead of taking the program down.

Example:
    >>> chain = load_effect_chain("tight-kick")                # doctest: +SKIP
    >>> wet = chain.process(dry, 44100)                         # doctest: +SKIP
    >>> chain_to_json(pedalboard.Pedalboard([pedalboard.Gain(gain_db=-3.0)]))["effects"]
    [{'type': 'Gain', 'params': {'gain_db': -3.0}}]
"""
from __future__ import annotations

import copy
import inspect
import logging
import math
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import IdmError, PresetError, PresetTooNewError
from .presets import load_preset

log = logging.getLogger(__name__)

FX_SCHEMA_VERSION = 1
#: Seconds a VST3 plugin may take to load in its child process.
VST3_LOAD_TIMEOUT_S = 30.0
#: Seconds a VST3 plugin may take per processing call.
VST3_PROCESS_TIMEOUT_S = 60.0
#: Deepest nesting of Mix/Chain containers a chain may have.
MAX_NESTING = 16


@dataclass(frozen=True)
class Param:
    """One parameter of a built-in effect: ``kind`` is ``float``, ``bool``, ``enum`` or ``path``."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    enum: str | None = None  # the pedalboard enum class, as "Class.Enum"
    unit: str = ""


def _f(lo: float, hi: float, unit: str = "") -> Param:
    return Param("float", lo, hi, unit=unit)


_HZ = _f(10.0, 22000.0, "Hz")
_Q = _f(0.05, 20.0)
_DB_EQ = _f(-36.0, 36.0, "dB")
_UNIT = _f(0.0, 1.0)
_MS = _f(0.0, 5000.0, "ms")

#: The built-in effects allowed in chains, with their parameters' types and ranges.
BUILTIN_EFFECTS: dict[str, dict[str, Param]] = {
    "Bitcrush": {"bit_depth": _f(1.0, 32.0, "bits")},
    "Chorus": {"rate_hz": _f(0.0, 100.0, "Hz"), "depth": _UNIT, "centre_delay_ms": _f(0.0, 100.0, "ms"),
               "feedback": _f(-0.99, 0.99), "mix": _UNIT},
    "Clipping": {"threshold_db": _f(-60.0, 0.0, "dB")},
    "Compressor": {"threshold_db": _f(-80.0, 0.0, "dB"), "ratio": _f(1.0, 100.0), "attack_ms": _f(0.01, 1000.0, "ms"),
                   "release_ms": _f(1.0, 5000.0, "ms")},
    "Convolution": {"impulse_response_filename": Param("path"), "mix": _UNIT},
    "Delay": {"delay_seconds": _f(0.0, 5.0, "s"), "feedback": _f(0.0, 0.99), "mix": _UNIT},
    "Distortion": {"drive_db": _f(0.0, 60.0, "dB")},
    "Gain": {"gain_db": _f(-60.0, 36.0, "dB")},
    "HighShelfFilter": {"cutoff_frequency_hz": _HZ, "gain_db": _DB_EQ, "q": _Q},
    "HighpassFilter": {"cutoff_frequency_hz": _HZ},
    "Invert": {},
    "LadderFilter": {"mode": Param("enum", enum="LadderFilter.Mode"), "cutoff_hz": _HZ, "resonance": _UNIT,
                     "drive": _f(1.0, 100.0)},
    "Limiter": {"threshold_db": _f(-60.0, 0.0, "dB"), "release_ms": _f(1.0, 5000.0, "ms")},
    "LowShelfFilter": {"cutoff_frequency_hz": _HZ, "gain_db": _DB_EQ, "q": _Q},
    "LowpassFilter": {"cutoff_frequency_hz": _HZ},
    "MP3Compressor": {"vbr_quality": _f(0.0, 10.0)},
    "GSMFullRateCompressor": {"quality": Param("enum", enum="Resample.Quality")},
    "NoiseGate": {"threshold_db": _f(-100.0, 0.0, "dB"), "ratio": _f(1.0, 100.0), "attack_ms": _f(0.01, 1000.0, "ms"),
                  "release_ms": _f(1.0, 5000.0, "ms")},
    "PeakFilter": {"cutoff_frequency_hz": _HZ, "gain_db": _DB_EQ, "q": _Q},
    "Phaser": {"rate_hz": _f(0.0, 100.0, "Hz"), "depth": _UNIT, "centre_frequency_hz": _HZ,
               "feedback": _f(-0.99, 0.99), "mix": _UNIT},
    "PitchShift": {"semitones": _f(-24.0, 24.0, "semitones")},
    "Resample": {"target_sample_rate": _f(100.0, 192000.0, "Hz"), "quality": Param("enum", enum="Resample.Quality")},
    "Reverb": {"room_size": _UNIT, "damping": _UNIT, "wet_level": _UNIT, "dry_level": _UNIT, "width": _UNIT,
               "freeze_mode": _UNIT},
}
CONTAINERS = ("Mix", "Chain")
VST3 = "VST3"


# --------------------------------------------------------------------------------------- validation
def _where(path: str) -> str:
    return f" ({path})" if path else ""


def _enum_class(spec: str) -> Any:
    import pedalboard

    owner, name = spec.split(".")
    return getattr(getattr(pedalboard, owner), name)


def _check_param(effect: str, name: str, value: Any, spec: Param, where: str, base_dir: Path | None) -> Any:
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PresetError(f"{effect}.{name} must be a number{where}; got {value!r}")
        if not spec.lo <= value <= spec.hi:
            unit = f" {spec.unit}" if spec.unit else ""
            raise PresetError(f"{effect}.{name} = {value!r}{unit} is out of range{where}; "
                              f"use {spec.lo:g}..{spec.hi:g}{unit}")
        return float(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise PresetError(f"{effect}.{name} must be true or false{where}; got {value!r}")
        return value
    if spec.kind == "enum":
        members = list(_enum_class(spec.enum).__members__)  # type: ignore[arg-type]
        if value not in members:
            raise PresetError(f"{effect}.{name} = {value!r} is not valid{where}; use one of {', '.join(members)}")
        return value
    if spec.kind == "path":
        if not isinstance(value, str) or not value:
            raise PresetError(f"{effect}.{name} must be a file path{where}; got {value!r}")
        p = _relative_to(value, base_dir)
        if not p.is_file():
            raise PresetError(f"{effect}.{name}: file {p} not found{where}; check the path")
        if not os.access(p, os.R_OK):
            raise PresetError(f"{effect}.{name}: file {p} is not readable{where}; check its permissions")
        if effect == "Convolution":
            _check_impulse_response(p, f"{effect}.{name}", where)
        return str(p)
    raise PresetError(f"internal: unknown parameter kind {spec.kind}")  # pragma: no cover


def _check_impulse_response(p: Path, label: str, where: str) -> None:
    """An impulse response must be an audio file, whole, of at most a minute."""
    from pedalboard.io import AudioFile

    from .audio import check_complete
    from .errors import AudioError

    try:
        check_complete(p)
        with AudioFile(str(p)) as f:
            seconds = f.frames / f.samplerate
    except AudioError as exc:
        raise PresetError(f"{label}: {exc}{where}") from exc
    except Exception as exc:  # pedalboard: not a format it reads
        raise PresetError(f"{label}: {p} is not an audio file{where}; an impulse response is a WAV, FLAC, "
                          "AIFF, OGG or MP3 file") from exc
    if not 0 < seconds <= 60.0:
        raise PresetError(f"{label}: {p} holds {seconds:.1f} s of audio{where}; an impulse response is "
                          "0-60 s long")


def _relative_to(path: str, base_dir: Path | None) -> Path:
    """``path``, resolved against the preset file's folder when it is relative."""
    p = Path(path)
    return base_dir / p if not p.is_absolute() and base_dir is not None else p


def _validate_entry(entry: Any, where: str, base_dir: Path | None, depth: int = 0) -> dict:
    if depth > MAX_NESTING:
        raise PresetError(f"effect chain nested more than {MAX_NESTING} Mix/Chain levels deep{_where(where[:200])}")
    if not isinstance(entry, Mapping):
        raise PresetError(f"each effect must be an object like {{\"type\": \"Gain\", \"params\": {{...}}}}{_where(where)}; "
                          f"got {entry!r}")
    kind = entry.get("type")
    allowed_keys = {"type", "params", "name", "chains", "effects", "path", "state_b64"}
    extra = set(entry) - allowed_keys
    if extra:
        raise PresetError(f"effect {kind!r} has unknown keys {sorted(extra)}{_where(where)}; "
                          f"use type, params (and chains for Mix, path for VST3)")
    if kind in CONTAINERS:
        if kind == "Mix":
            chains = entry.get("chains")
            if not isinstance(chains, list) or not chains:
                raise PresetError(f"Mix needs \"chains\": a list of effect lists{_where(where)}")
            return {"type": "Mix", "chains": [_validate_list(c, f"{where}/Mix[{i}]", base_dir, depth + 1)
                                              for i, c in enumerate(chains)]}
        return {"type": "Chain", "effects": _validate_list(entry.get("effects", []), f"{where}/Chain", base_dir,
                                                           depth + 1)}
    params = entry.get("params", {})
    if not isinstance(params, Mapping):
        raise PresetError(f"{kind}: params must be an object{_where(where)}; got {params!r}")
    if kind == VST3:
        path = entry.get("path")
        if not isinstance(path, str) or not path:
            raise PresetError(f"VST3 effect needs \"path\" to a .vst3 plugin{_where(where)}")
        p = _relative_to(path, base_dir)
        if not p.exists():
            raise PresetError(f"VST3 plugin {p} not found{_where(where)}; install it or fix the path")
        if p.suffix.lower() != ".vst3":
            raise PresetError(f"VST3 plugin {p} is not a .vst3 plugin{_where(where)}; give the path of a .vst3 "
                              "bundle or file")
        if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
            raise PresetError(f"VST3 plugin {p} is not readable{_where(where)}; check its permissions")
        for k, v in params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise PresetError(f"VST3 parameter {k} must be a number or string{_where(where)}; got {v!r}")
        out = {"type": VST3, "path": str(p), "params": dict(params)}
        if "state_b64" in entry:
            out["state_b64"] = str(entry["state_b64"])
        return out
    if kind not in BUILTIN_EFFECTS:
        raise PresetError(f"unknown effect {kind!r}{_where(where)}; use one of "
                          f"{', '.join(sorted(BUILTIN_EFFECTS))}, Mix, Chain or VST3")
    specs = BUILTIN_EFFECTS[kind]
    clean = {}
    for name, value in params.items():
        if name not in specs:
            raise PresetError(f"{kind} has no parameter {name!r}{_where(where)}; "
                              f"its parameters are {', '.join(specs) or 'none'}")
        clean[name] = _check_param(kind, name, value, specs[name], _where(where), base_dir)
    if kind == "Convolution" and "impulse_response_filename" not in clean:
        raise PresetError(f"Convolution needs params.impulse_response_filename{_where(where)}")
    return {"type": kind, "params": clean}


def _validate_list(effects: Any, where: str, base_dir: Path | None, depth: int = 0) -> list[dict]:
    if not isinstance(effects, list):
        raise PresetError(f"an effect chain must be a list of effects{_where(where[:200])}; got {type(effects).__name__}")
    return [_validate_entry(e, f"{where}[{i}]" if where else f"effect {i + 1}", base_dir, depth)
            for i, e in enumerate(effects)]


def resolve_chain(spec: Any, *, base_dir: Path | None = None) -> dict:
    """Validate a chain and return its canonical document.

    Args:
        spec: a preset name or path (str / PathLike), a chain document (``{"effects": [...]}``),
            or a bare list of effects.
        base_dir: folder that relative file paths (impulse responses, plugins) are relative to.

    Returns:
        ``{"schema_version": 1, "name": ..., "effects": [...]}`` with every value checked.

    Raises:
        PresetError: unknown preset, effect or parameter, a wrong type or an out-of-range value.
        SchemaTooNewError: a preset from a newer idm-host.
    """
    name = None
    if isinstance(spec, (str, os.PathLike)):
        try:
            data, path = load_preset("fx", spec)
        except RecursionError:
            raise PresetError(f"{spec}: the effect chain is nested too deeply to read") from None
        base_dir = path.parent
        name = data.get("name") or path.stem
        where = str(path)
        spec = data
    else:
        where = ""
    if isinstance(spec, list):
        effects = spec
        doc: dict[str, Any] = {}
    elif isinstance(spec, Mapping):
        doc = dict(spec)
        version = doc.get("schema_version", FX_SCHEMA_VERSION)
        if isinstance(version, int) and version > FX_SCHEMA_VERSION:
            raise PresetTooNewError(f"{where or 'effect chain'}: schema {version} is newer than this idm-host reads "
                                    f"({FX_SCHEMA_VERSION}); update idm-host")
        if "effects" not in doc:
            raise PresetError(f"{where or 'effect chain'}: no \"effects\" list; a chain looks like "
                              "{\"schema_version\": 1, \"effects\": [...]}")
        effects = doc["effects"]
    else:
        raise PresetError(f"an effect chain must be a preset name, a list or an object; got {type(spec).__name__}")
    try:
        clean = _validate_list(effects, where, base_dir)
    except PresetError as exc:
        if where and where not in str(exc):
            raise PresetError(f"{where}: {exc}") from exc
        raise
    return {"schema_version": FX_SCHEMA_VERSION, "name": name or doc.get("name"),
            "description": doc.get("description", ""), "effects": clean}


def validate_effects(spec: Any) -> None:
    """Raise :class:`PresetError` if ``spec`` (see :func:`resolve_chain`) is not a valid chain."""
    resolve_chain(spec)


# ------------------------------------------------------------------------------------ serialisation
def _props(plugin: Any) -> dict[str, Any]:
    """The writable properties of a built-in plugin (pedalboard has no serialiser of its own)."""
    cls = type(plugin)
    out = {}
    for k in dir(cls):
        attr = inspect.getattr_static(cls, k, None)
        if isinstance(attr, property) and (attr.fset is not None or k == "impulse_response_filename"):
            v = getattr(plugin, k)
            if hasattr(v, "name") and hasattr(v, "value") and not isinstance(v, (int, float, str)):
                v = v.name
            elif isinstance(v, (np.floating, float)):
                v = float(v)
            out[k] = v
    return out


def chain_to_json(board: Any, *, name: str | None = None, description: str = "") -> dict:
    """Serialise a :class:`pedalboard.Pedalboard` (built-in effects, Mix and Chain) to a chain document.

    Raises:
        PresetError: the board holds an effect outside the allow-list, or a Convolution made from an
            array (it has no file to point at).
    """
    import pedalboard

    def entry(p: Any) -> dict:
        kind = type(p).__name__
        if isinstance(p, pedalboard.Mix):
            return {"type": "Mix", "chains": [[entry(q) for q in c] if isinstance(c, pedalboard.Chain) else [entry(c)]
                                              for c in p]}
        if isinstance(p, pedalboard.Chain):
            return {"type": "Chain", "effects": [entry(q) for q in p]}
        if kind not in BUILTIN_EFFECTS:
            raise PresetError(f"cannot save effect {kind}: only {', '.join(sorted(BUILTIN_EFFECTS))}, Mix and Chain "
                              "can be saved (VST3 plugins are saved from their JSON entry)")
        params = {k: v for k, v in _props(p).items() if k in BUILTIN_EFFECTS[kind]}
        if kind == "Convolution" and not params.get("impulse_response_filename"):
            raise PresetError("cannot save a Convolution built from an array; load the impulse response from a file")
        return {"type": kind, "params": params}

    effects = [entry(p) for p in board]
    return {"schema_version": FX_SCHEMA_VERSION, "name": name, "description": description, "effects": effects}


def _build_builtin(entry: Mapping) -> Any:
    import pedalboard

    kind = entry["type"]
    if kind == "Mix":
        return pedalboard.Mix([pedalboard.Chain([_build_builtin(e) for e in c]) for c in entry["chains"]])
    if kind == "Chain":
        return pedalboard.Chain([_build_builtin(e) for e in entry["effects"]])
    if kind == VST3:
        raise PresetError("VST3 plugins cannot sit inside Mix or Chain; put them at the top level of the chain")
    params = dict(entry.get("params", {}))
    cls = getattr(pedalboard, kind)
    if kind == "Convolution":
        plugin = cls(params.pop("impulse_response_filename"))
    else:
        plugin = cls()
    for k, v in params.items():
        spec = BUILTIN_EFFECTS[kind][k]
        if spec.kind == "enum":
            v = getattr(_enum_class(spec.enum), v)  # type: ignore[arg-type]
        setattr(plugin, k, v)
    return plugin


def build_board(spec: Any) -> Any:
    """A fresh :class:`pedalboard.Pedalboard` from a chain of built-in effects (see :func:`resolve_chain`)."""
    import pedalboard

    doc = resolve_chain(spec)
    return pedalboard.Pedalboard([_build_builtin(e) for e in doc["effects"]])


# ----------------------------------------------------------------------------------- VST3 hosting
class PluginCrashedError(PresetError):
    """A VST3 plugin's host process died or stopped answering; the chain cannot be used further."""


def _host_main(conn: Any, path: str, params: dict, state_b64: str | None) -> None:  # runs in the child
    import base64

    try:
        import pedalboard

        plugin = pedalboard.load_plugin(path)
        if state_b64:
            plugin.raw_state = base64.b64decode(state_b64)
        known = plugin.parameters
        for k, v in params.items():
            if k not in known:
                raise PresetError(f"{Path(path).name} has no parameter {k!r}; its parameters are "
                                  f"{', '.join(sorted(known))}")
            try:
                setattr(plugin, k, v)
            except (ValueError, TypeError) as exc:
                raise PresetError(f"{Path(path).name}.{k}: {exc}") from exc
        info = {"name": getattr(plugin, "name", Path(path).stem),
                "parameters": {k: {"value": getattr(plugin, k) if not callable(getattr(plugin, k)) else None,
                                   "range": list(getattr(p, "range", (None, None, None)))}
                               for k, p in known.items()}}
        conn.send(("ok", _jsonable(info)))
    except BaseException as exc:  # report everything: the parent turns it into a PresetError
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] == "close":
            return
        if msg[0] == "process":
            _, audio, sample_rate, reset = msg
            try:
                x = audio
                mono = x.shape[0] == 1
                try:
                    y = plugin.process(x, sample_rate, reset=reset)
                except Exception as exc:
                    if not (mono and "channel" in str(exc)):
                        raise
                    # stereo-only plugin (e.g. the X2 variants): feed both sides, fold back to mono
                    y = plugin.process(np.repeat(x, 2, axis=0), sample_rate, reset=reset).mean(axis=0, keepdims=True)
                conn.send(("ok", np.ascontiguousarray(y, dtype=np.float32)))
            except BaseException as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
        elif msg[0] == "state":
            import base64 as b64

            conn.send(("ok", b64.b64encode(plugin.raw_state).decode("ascii")))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, bool):
        return x
    for t in (int, float, str):  # plain types: pedalboard returns unpicklable subclasses
        if isinstance(x, t):
            return t(x)
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


class PluginHost:
    """A VST3 plugin loaded in a child process (``multiprocessing`` spawn).

    The plugin's parameters are set and checked in the child; :meth:`process` ships audio over a
    pipe. If the child dies or stops answering, :class:`PluginCrashedError` is raised and this
    process carries on.

    Raises:
        PresetError: the plugin cannot be loaded, or a parameter is unknown or out of range.
    """

    def __init__(self, path: str, params: Mapping[str, Any] | None = None, *, state_b64: str | None = None,
                 load_timeout_s: float = VST3_LOAD_TIMEOUT_S):
        self.path = str(path)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_host_main, args=(child, self.path, dict(params or {}), state_b64),
                                 name=f"idm-host-vst3-{Path(path).stem}", daemon=True)
        self._proc.start()
        child.close()
        status, payload = self._receive(load_timeout_s, "loading")
        if status != "ok":
            self.close()
            raise PresetError(f"VST3 plugin {self.path} failed to load: {payload}")
        self.info = payload

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _receive(self, timeout_s: float, doing: str) -> tuple[str, Any]:
        try:
            if not self._conn.poll(timeout_s):
                self._kill()
                raise PluginCrashedError(f"VST3 plugin {self.path} stopped answering while {doing} "
                                         f"(>{timeout_s:g} s); it was shut down")
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._kill()
            code = self._proc.exitcode
            raise PluginCrashedError(f"VST3 plugin {self.path} crashed while {doing} (exit code {code}); "
                                     "remove it from the chain or try another plugin") from exc

    def process(self, audio: np.ndarray, sample_rate: int, *, reset: bool = True,
                timeout_s: float = VST3_PROCESS_TIMEOUT_S) -> np.ndarray:
        """Run float32 ``(channels, frames)`` through the plugin; returns the same shape."""
        if not self._proc.is_alive():
            raise PluginCrashedError(f"VST3 plugin {self.path} is no longer running (exit code {self._proc.exitcode})")
        try:
            self._conn.send(("process", np.ascontiguousarray(audio, dtype=np.float32), float(sample_rate), reset))
        except (OSError, BrokenPipeError) as exc:
            self._kill()
            raise PluginCrashedError(f"VST3 plugin {self.path} crashed (pipe closed); remove it from the chain") from exc
        status, payload = self._receive(timeout_s, "processing")
        if status != "ok":
            raise PresetError(f"VST3 plugin {self.path} failed to process audio: {payload}")
        return payload

    def state_b64(self) -> str:
        """The plugin's full state (base64), for saving in a chain entry."""
        self._conn.send(("state",))
        status, payload = self._receive(10.0, "saving its state")
        if status != "ok":
            raise PresetError(f"VST3 plugin {self.path}: cannot read its state: {payload}")
        return payload

    def _kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(timeout=5)

    def close(self) -> None:
        """Stop the child process."""
        try:
            if self._proc.is_alive():
                self._conn.send(("close",))
                self._proc.join(timeout=5)
        except (OSError, BrokenPipeError):
            pass
        self._kill()
        self._conn.close()

    def __enter__(self) -> "PluginHost":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------------ effect chain
class EffectChain:
    """A ready-to-run chain: built-in effects in a fresh :class:`pedalboard.Pedalboard`, VST3s hosted.

    Build with :func:`load_effect_chain`. Each instance owns fresh plugin instances (plugins keep
    state, so never share one chain between two jobs running at once). Call :meth:`close` (or use
    ``with``) to stop VST3 host processes.
    """

    def __init__(self, doc: Mapping):
        import pedalboard

        self.doc = copy.deepcopy(dict(doc))
        self._stages: list[Any] = []
        run: list[Any] = []
        try:
            for e in self.doc["effects"]:
                if e["type"] == VST3:
                    if run:
                        self._stages.append(pedalboard.Pedalboard(run))
                        run = []
                    self._stages.append(PluginHost(e["path"], e.get("params", {}), state_b64=e.get("state_b64")))
                else:
                    run.append(_build_builtin(e))
            if run:
                self._stages.append(pedalboard.Pedalboard(run))
        except BaseException:
            self.close()
            raise

    @property
    def name(self) -> str | None:
        return self.doc.get("name")

    @property
    def empty(self) -> bool:
        return not self._stages

    @property
    def board(self) -> Any:
        """The :class:`pedalboard.Pedalboard` when the chain is built-in effects only, else ``None``."""
        import pedalboard

        if not self._stages:
            return pedalboard.Pedalboard([])
        if len(self._stages) == 1 and not isinstance(self._stages[0], PluginHost):
            return self._stages[0]
        return None

    def process(self, audio: np.ndarray, sample_rate: int, *, reset: bool = True) -> np.ndarray:
        """Run float32 ``(channels, frames)`` (or ``(frames,)``) through the chain; same shape out."""
        x = np.asarray(audio, dtype=np.float32)
        one_d = x.ndim == 1
        if one_d:
            x = x[None, :]
        for stage in self._stages:
            if isinstance(stage, PluginHost):
                x = stage.process(x, sample_rate, reset=reset)
            else:
                x = stage.process(x, float(sample_rate), reset=reset)
            x = np.asarray(x, dtype=np.float32)
        return x[0] if one_d else x

    def to_json(self) -> dict:
        """The chain document (VST3 entries with their current full state)."""
        doc = copy.deepcopy(self.doc)
        i = 0
        for e in doc["effects"]:
            if e["type"] == VST3:
                while not isinstance(self._stages[i], PluginHost):
                    i += 1
                e["state_b64"] = self._stages[i].state_b64()
                i += 1
        return doc

    def close(self) -> None:
        for s in self._stages:
            if isinstance(s, PluginHost):
                s.close()
        self._stages = []

    def __enter__(self) -> "EffectChain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def load_effect_chain(spec: Any, *, base_dir: Path | None = None) -> EffectChain:
    """Validate and build a chain: a preset name or path, a chain document, or a list of effects.

    Raises:
        PresetError: invalid chain (see :func:`resolve_chain`) or a VST3 plugin that fails to load.

    Example:
        >>> with load_effect_chain([{"type": "Gain", "params": {"gain_db": -6.0}}]) as chain:
        ...     out = chain.process(np.ones((1, 4), np.float32), 44100)
        >>> round(float(out[0, 0]), 3)
        0.501
    """
    return EffectChain(resolve_chain(spec, base_dir=base_dir))


def save_effect_chain(doc: Mapping, path: "str | os.PathLike", *, overwrite: bool = False) -> Path:
    """Validate a chain document and write it as an fx preset (atomic, never overwriting unless asked)."""
    import json

    from .fsutil import atomic_write_text

    clean = resolve_chain(dict(doc))
    try:
        return atomic_write_text(path, json.dumps(clean, indent=1) + "\n", overwrite=overwrite)
    except IdmError as exc:
        raise PresetError(str(exc)) from exc


__all__ = ["BUILTIN_EFFECTS", "EffectChain", "PluginHost", "PluginCrashedError", "build_board", "chain_to_json",
           "load_effect_chain", "resolve_chain", "save_effect_chain", "validate_effects"]
