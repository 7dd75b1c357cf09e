"""A structure-aware OSC fuzzer: well-formed messages and bundles, built by its own small encoder
(not the server's, not python-osc's), then broken where OSC parsers go wrong: bundle element sizes,
blob sizes, type tag strings, nesting depth, lengths and padding.

Every packet is built from a seeded ``random.Random``, so a failing packet can be rebuilt from its
seed and index. Used by ``tests/io/test_osc_fuzz.py`` (a fast subset) and ``bench/bench_bridge.py``
(100,000+ packets).
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

#: Addresses the server answers, and a few it does not.
ADDRESSES = ["/idm/ping", "/idm/open", "/idm/audio/begin", "/idm/audio/chunk", "/idm/audio/end",
             "/idm/cancel", "/idm/export/midi", "/idm/midi/notes", "/idm/render", "/idm/auth",
             "/idm/nope", "/x", "/idm/audio/begin/extra"]

BUNDLE = b"#bundle\x00"
SIZE_MUTATIONS = (-4, -8, -1, -2**31, 0, 1, 2, 3, 2**31 - 1, 2**20)


def ostr(text: bytes) -> bytes:
    """An OSC string: the bytes, a NUL, padding to a multiple of 4."""
    return text + b"\x00" * (4 - len(text) % 4)


def oblob(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data + b"\x00" * (-len(data) % 4)


@dataclass
class Built:
    """A packet and where its structural fields are, so a mutation can hit them exactly."""

    data: bytearray = field(default_factory=bytearray)
    #: Offsets of int32 size fields (bundle elements and blobs).
    sizes: list[int] = field(default_factory=list)
    #: ``(offset, length)`` of type tag strings (the bytes after the comma, before the NUL).
    tags: list[tuple[int, int]] = field(default_factory=list)
    #: Offsets where a message or bundle element starts.
    starts: list[int] = field(default_factory=list)


def _args(rng: random.Random, address: str) -> tuple[str, list[bytes]]:
    """Type tags and the encoded arguments for ``address``: often what the server expects, sometimes anything."""
    plausible = {
        "/idm/ping": "", "/idm/open": "is", "/idm/audio/begin": "iiii", "/idm/audio/chunk": "iib",
        "/idm/audio/end": "i", "/idm/cancel": "i", "/idm/export/midi": "issi", "/idm/midi/notes": "is",
        "/idm/render": "isss", "/idm/auth": "s",
    }
    if address in plausible and rng.random() < 0.6:
        tags = plausible[address]
    else:
        tags = "".join(rng.choice("ifsbhdTFNItcrm") for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.15:
            tags = tags[:1] + "[" + tags[1:] + "]"
    out = []
    for t in tags:
        if t == "i":
            out.append(struct.pack(">i", rng.choice([0, 1, 7, 44100, 2, rng.randint(-2**31, 2**31 - 1)])))
        elif t == "f":
            out.append(struct.pack(">f", rng.choice([0.0, 1.5, float("nan"), float("inf"), rng.uniform(-1e9, 1e9)])))
        elif t == "s":
            out.append(ostr(rng.choice([b"", b"gm", b"/no/such/file.wav", b"/etc/passwd", b"KD=tight-kick", b"/tmp",
                                        bytes(rng.randrange(1, 256) for _ in range(rng.randint(0, 40)))])))
        elif t == "b":
            out.append(oblob(rng.randbytes(rng.choice([0, 1, 4, 8, 64, 882 * 8]))))
        elif t in "hdt":
            out.append(rng.randbytes(8))
        elif t in "crm":
            out.append(rng.randbytes(4))
    return tags, out


def message(rng: random.Random, built: Built) -> None:
    address = rng.choice(ADDRESSES)
    tags, args = _args(rng, address)
    built.starts.append(len(built.data))
    built.data += ostr(address.encode())
    built.tags.append((len(built.data) + 1, len(tags)))
    built.data += ostr(b"," + tags.encode())
    for t, arg in zip((t for t in tags if t not in "TFNI[]"), args):
        if t == "b":
            built.sizes.append(len(built.data))
        built.data += arg


def bundle(rng: random.Random, built: Built, depth: int, max_depth: int) -> None:
    built.starts.append(len(built.data))
    built.data += BUNDLE + rng.randbytes(8)
    for _ in range(rng.randint(0, 4)):
        size_at = len(built.data)
        built.sizes.append(size_at)
        built.data += b"\x00\x00\x00\x00"
        if depth < max_depth and rng.random() < 0.3:
            bundle(rng, built, depth + 1, max_depth)
        else:
            message(rng, built)
        struct.pack_into(">i", built.data, size_at, len(built.data) - size_at - 4)


def valid(rng: random.Random) -> Built:
    """A well-formed packet: a message (60%) or a bundle up to 4 deep."""
    built = Built()
    if rng.random() < 0.6:
        message(rng, built)
    else:
        bundle(rng, built, 1, 4)
    return built


def nested(depth: int, inner: bytes) -> bytes:
    """``inner`` wrapped in ``depth`` bundles (sizes correct)."""
    data = inner
    for _ in range(depth):
        data = BUNDLE + b"\x00" * 8 + struct.pack(">i", len(data)) + data
    return data


def minus_four_bundle() -> bytes:
    """The packet of issue 11: a bundle whose first element size is -4 (python-osc loops forever)."""
    return BUNDLE + b"\x00\x00\x00\x00\x00\x00\x00\x01" + struct.pack(">i", -4)


def mutate(rng: random.Random, built: Built) -> bytes:
    """One structural mutation of ``built`` (or none, one time in ten)."""
    b = bytearray(built.data)
    kind = rng.randrange(10)
    if kind == 0 and built.sizes:  # a size field: negative, zero, unaligned, huge, off by a little
        at = rng.choice(built.sizes)
        (old,) = struct.unpack_from(">i", b, at)
        new = rng.choice(SIZE_MUTATIONS + (old + 1, old - 1, old + 4, old - 4, len(b)))
        struct.pack_into(">i", b, at, max(-2**31, min(2**31 - 1, new)))
    elif kind == 1 and built.tags:  # a type tag: replaced, dropped, inserted, brackets unbalanced
        at, n = rng.choice(built.tags)
        op = rng.randrange(4)
        tag = rng.choice(b"ifsbhdtcrmTFNI[]xyz?\x01")
        if op == 0 and n:
            b[at + rng.randrange(n)] = tag
        elif op == 1:
            b[at - 1] = rng.choice(b"x/ \x00")  # the comma itself
        elif op == 2:
            b[at:at] = bytes([tag]) * rng.randint(1, 3)
        else:
            b[at:at] = b"[" * rng.randint(1, 20)
    elif kind == 2:  # nesting: around the depth limit and far beyond it
        depth = rng.choice([7, 8, 9, 16, 100, 1000])
        return nested(depth, bytes(b))
    elif kind == 3:  # truncated anywhere
        return bytes(b[: rng.randrange(len(b) + 1)])
    elif kind == 4:  # junk or zeros appended (lengths no longer match)
        b += rng.choice([b"\x00" * rng.randint(1, 8), rng.randbytes(rng.randint(1, 64))])
    elif kind == 5:  # a string's terminating NUL and padding removed
        nul = b.find(b"\x00")
        if nul >= 0:
            end = nul
            while end < len(b) and b[end] == 0:
                end += 1
            b[nul:end] = rng.randbytes(end - nul)
    elif kind == 6:  # many messages in one bundle (past the per-packet cap)
        one = bytes(ostr(b"/idm/ping") + ostr(b","))
        n = rng.choice([3, 1025, 3000])
        return BUNDLE + b"\x00" * 8 + (struct.pack(">i", len(one)) + one) * n
    elif kind == 7 and built.starts:  # an element start turned into something else
        at = rng.choice(built.starts)
        b[at:at + 8] = rng.choice([b"#bundle\x00", b"#bundl\x00\x00", b"\x00" * 8, rng.randbytes(8)])
    elif kind == 8:  # a few random bytes changed
        for _ in range(rng.randint(1, 4)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
    # kind 9 (and the cases above that found nothing to hit): the valid packet as is
    return bytes(b)


def packets(n: int, seed: int, max_bytes: int = 65000) -> list[bytes]:
    """``n`` fuzzed packets from ``seed``: the -4 bundle first, then mutated well-formed ones."""
    rng = random.Random(seed)
    out = [minus_four_bundle()]
    while len(out) < n:
        p = mutate(rng, valid(rng))
        if 0 < len(p) <= max_bytes:
            out.append(p)
    return out
