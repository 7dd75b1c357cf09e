"""OSC on the wire: building replies and checking request arguments."""
from __future__ import annotations

from typing import Any

import numpy as np


def build_message(address: str, *args: Any) -> bytes:
    """One OSC message as bytes, with explicit types: int -> i, float -> f, str -> s, bytes -> b."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address=address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(int(a), "i")
        elif isinstance(a, (int, np.integer)):
            b.add_arg(int(max(-(2**31), min(2**31 - 1, int(a)))), "i")
        elif isinstance(a, (float, np.floating)):
            b.add_arg(float(a), "f")
        elif isinstance(a, str):
            b.add_arg(a, "s")
        elif isinstance(a, (bytes, bytearray)):
            b.add_arg(bytes(a), "b")
        else:
            raise TypeError(f"cannot send {type(a).__name__} over OSC")
    return b.build().dgram


class _ArgError(Exception):
    pass


def _args(msg, spec: str, usage: str) -> list[Any]:
    """Check ``msg``'s arguments against ``spec`` (i, f, s, b); extra trailing arguments are refused."""
    params = list(msg.params)
    if len(params) != len(spec):
        raise _ArgError(f"{msg.address} expects {usage} ({len(spec)} arguments), got {len(params)}")
    out = []
    for k, (p, t) in enumerate(zip(params, spec)):
        ok = (
            (t == "i" and isinstance(p, int) and not isinstance(p, bool))
            or (t == "f" and isinstance(p, (int, float)) and not isinstance(p, bool))
            or (t == "s" and isinstance(p, str))
            or (t == "b" and isinstance(p, (bytes, bytearray)))
        )
        if not ok:
            raise _ArgError(
                f"{msg.address} argument {k + 1} must be {_TYPE_NAMES[t]}, got {type(p).__name__}; usage: {usage}"
            )
        out.append(float(p) if t == "f" else p)
    return out


_TYPE_NAMES = {"i": "an int32 (i)", "f": "a float (f)", "s": "a string (s)", "b": "a blob (b)"}
