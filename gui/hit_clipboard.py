"""Copied hits, without Qt: the clipboard's JSON (``{"schema_version": 1, "hits": [{"class",
"offset_s", "velocity"}]}``, offsets from the first copied hit) and where a paste puts them."""
from __future__ import annotations

import json
from typing import Iterable, Sequence

#: The clipboard format of copied hits (the same JSON also goes out as plain text).
CLIP_MIME = "application/x-idm-hits+json"

Clip = list[tuple[str, float, float]]  # (class, offset from the first hit in s, velocity)


def clip_of(items: Iterable[tuple[str, float, float]]) -> Clip:
    """``(class, time_s, velocity)`` hits as offsets from the earliest one."""
    items = list(items)
    t0 = min((t for _, t, _ in items), default=0.0)
    return [(c, t - t0, v) for c, t, v in items]


def encode_clip(clip: Clip) -> str:
    return json.dumps({"schema_version": 1, "hits": [
        {"class": c, "offset_s": round(o, 6), "velocity": round(v, 6)} for c, o, v in clip]})


def decode_clip(data: bytes) -> Clip | None:
    """The hits of clipboard data, or None when it is not a readable clip."""
    try:
        raw = json.loads(data.decode())
        return [(str(h["class"]), float(h["offset_s"]), float(h["velocity"])) for h in raw["hits"]]
    except (ValueError, KeyError, TypeError):
        return None


def place_clip(clip: Clip, at_s: float, classes: Sequence[str], duration_s: float
               ) -> tuple[dict[str, list[tuple[float, float]]], int, int]:
    """``(hits to add per class, how many fall outside the file, how many are of absent classes)``
    for pasting ``clip`` with its first hit at ``at_s``; velocities are clamped to 0..1."""
    add: dict[str, list[tuple[float, float]]] = {}
    late = foreign = 0
    for symbol, offset, velocity in clip:
        t = at_s + offset
        if symbol not in classes:
            foreign += 1
        elif not 0.0 <= t <= duration_s:
            late += 1
        else:
            add.setdefault(symbol, []).append((t, min(max(velocity, 0.0), 1.0)))
    return add, late, foreign
