"""OSC on the wire: building replies, parsing requests (our own strict parser, not python-osc's)
and checking request arguments."""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
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


# ------------------------------------------------------------------------------------------ parsing
#: Bundles nested deeper than this are refused (a bundle in a bundle is depth 2).
MAX_BUNDLE_DEPTH = 8
#: OSC messages one packet may carry (all bundles together); a packet with more is refused whole.
MAX_MESSAGES_PER_PACKET = 1024
#: Arrays (``[`` ... ``]`` in a type tag string) nested deeper than this are refused.
MAX_ARRAY_DEPTH = 8

_BUNDLE = b"#bundle\x00"


class WireError(ValueError):
    """A packet is not well-formed OSC (the message says where)."""


@dataclass(frozen=True)
class OscMessage:
    """One received OSC message: its address and its arguments (int, float, str, bytes, bool,
    None, lists for arrays)."""

    address: str
    params: tuple


def parse_packet(data: bytes, *, max_depth: int = MAX_BUNDLE_DEPTH,
                 max_messages: int = MAX_MESSAGES_PER_PACKET) -> list[OscMessage]:
    """Every message of one OSC packet (a message or a bundle), in order, or :class:`WireError`.

    The whole packet is checked before anything is returned, so a bad element anywhere refuses
    the packet; the work is linear in its length. Bundle elements need a positive size that is a
    multiple of 4 and fits in what is left of the enclosing bundle; bundles nest at most
    ``max_depth`` deep and carry at most ``max_messages`` messages in all.

    This replaces python-osc's parser for requests: python-osc 1.10 (``OscBundle._parse_contents``)
    adds each element's int32 size to its read position without checking it, so a size of -4
    re-reads the same size forever (one datagram hangs the server, logging "Could not identify
    content type" in a loop); other negative sizes walk backwards the same way.

    Raises:
        WireError: what is wrong and at which byte offset.
    """
    view = memoryview(bytes(data))
    out: list[OscMessage] = []
    if len(view) == 0:
        raise WireError("empty packet")
    _parse_element(view, 0, len(view), 1, max_depth, max_messages, out)
    return out


def _parse_element(view: memoryview, start: int, end: int, depth: int, max_depth: int, max_messages: int,
                   out: list[OscMessage]) -> None:
    if end - start >= 8 and view[start:start + 8] == _BUNDLE:
        if depth > max_depth:
            raise WireError(f"bundles nested more than {max_depth} deep (at byte {start})")
        pos = start + 16  # the prefix and the 8-byte time tag
        if pos > end:
            raise WireError(f"bundle at byte {start} is cut short inside its time tag")
        while pos < end:
            if end - pos < 4:
                raise WireError(f"bundle element size at byte {pos} is cut short")
            (size,) = struct.unpack_from(">i", view, pos)
            pos += 4
            if size <= 0 or size % 4:
                raise WireError(f"bundle element size {size} at byte {pos - 4} is invalid; sizes are positive "
                                "multiples of 4")
            if size > end - pos:
                raise WireError(f"bundle element size {size} at byte {pos - 4} overruns the bundle "
                                f"({end - pos} bytes left)")
            _parse_element(view, pos, pos + size, depth + 1, max_depth, max_messages, out)
            pos += size
        return
    if view[start:start + 1] != b"/":
        raise WireError(f"byte {start} starts neither a message (an address begins with '/') nor a bundle")
    if len(out) >= max_messages:
        raise WireError(f"more than {max_messages} messages in one packet")
    out.append(_parse_message(view, start, end))


def _string(view: memoryview, pos: int, end: int, what: str) -> tuple[str, int]:
    """An OSC string (NUL-terminated, padded to 4 bytes) at ``pos``; returns it and the next offset."""
    raw = view[pos:end].tobytes()
    nul = raw.find(b"\x00")
    if nul < 0:
        raise WireError(f"{what} at byte {pos} has no terminating NUL")
    nxt = pos + (nul // 4 + 1) * 4
    if nxt > end:
        raise WireError(f"{what} at byte {pos} is not padded to a multiple of 4 bytes")
    try:
        return raw[:nul].decode("utf-8"), nxt
    except UnicodeDecodeError as exc:
        raise WireError(f"{what} at byte {pos} is not UTF-8 ({exc.reason})") from None


def _need(pos: int, n: int, end: int, tag: str) -> None:
    if end - pos < n:
        raise WireError(f"argument '{tag}' at byte {pos} needs {n} bytes, {max(end - pos, 0)} left")


def _parse_message(view: memoryview, start: int, end: int) -> OscMessage:
    address, pos = _string(view, start, end, "address")
    if pos >= end:  # OSC 1.0 allows a message without a type tag string: no arguments
        return OscMessage(address, ())
    tags, pos = _string(view, pos, end, "type tag string")
    if not tags.startswith(","):
        raise WireError(f"type tag string {tags[:16]!r} does not start with ','")
    stack: list[list[Any]] = [[]]
    for tag in tags[1:]:
        args = stack[-1]
        if tag == "i":
            _need(pos, 4, end, tag)
            args.append(struct.unpack_from(">i", view, pos)[0])
            pos += 4
        elif tag == "f":
            _need(pos, 4, end, tag)
            args.append(struct.unpack_from(">f", view, pos)[0])
            pos += 4
        elif tag in "sS":
            value, pos = _string(view, pos, end, f"argument '{tag}'")
            args.append(value)
        elif tag == "b":
            _need(pos, 4, end, tag)
            (n,) = struct.unpack_from(">i", view, pos)
            if n < 0 or n > end - pos - 4:
                raise WireError(f"blob size {n} at byte {pos} is negative or overruns the message")
            pos += 4
            args.append(view[pos:pos + n].tobytes())
            pos += (n + 3) // 4 * 4
            if pos > end:
                raise WireError(f"blob at byte {pos - (n + 3) // 4 * 4} is not padded to a multiple of 4 bytes")
        elif tag in "hdt":
            _need(pos, 8, end, tag)
            args.append(struct.unpack_from({"h": ">q", "d": ">d", "t": ">Q"}[tag], view, pos)[0])
            pos += 8
        elif tag in "crm":
            _need(pos, 4, end, tag)
            raw = view[pos:pos + 4].tobytes()
            args.append(chr(raw[3]) if tag == "c" else struct.unpack(">I", raw)[0] if tag == "r" else tuple(raw))
            pos += 4
        elif tag in "TFNI":
            args.append({"T": True, "F": False, "N": None, "I": math.inf}[tag])
        elif tag == "[":
            if len(stack) > MAX_ARRAY_DEPTH:
                raise WireError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
            inner: list[Any] = []
            args.append(inner)
            stack.append(inner)
        elif tag == "]":
            if len(stack) == 1:
                raise WireError("type tag ']' closes no array")
            stack.pop()
        else:
            raise WireError(f"unknown type tag {tag!r} in {tags[:32]!r}")
    if len(stack) != 1:
        raise WireError("type tag '[' is never closed")
    if pos != end:
        raise WireError(f"{end - pos} bytes after the last argument of {address[:64]!r}")
    return OscMessage(address, tuple(stack[0]))


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
