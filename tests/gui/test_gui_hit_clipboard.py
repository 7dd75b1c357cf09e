"""Copied hits without Qt: the clipboard JSON round trip and where a paste puts them."""
from __future__ import annotations

import json

from gui.hit_clipboard import clip_of, decode_clip, encode_clip, place_clip


def test_clip_round_trips_as_offsets_from_the_first_hit():
    clip = clip_of([("SD", 1.5, 0.5), ("KD", 1.25, 1.0), ("HH_CHH", 2.0, 0.25)])
    assert clip == [("SD", 0.25, 0.5), ("KD", 0.0, 1.0), ("HH_CHH", 0.75, 0.25)]
    text = encode_clip(clip)
    assert json.loads(text)["schema_version"] == 1
    assert decode_clip(text.encode()) == clip


def test_unreadable_clipboard_data_is_none():
    for bad in (b"not json", b"{}", b'{"hits": [{"class": "KD"}]}', b'{"hits": 3}'):
        assert decode_clip(bad) is None
    assert decode_clip(b'{"hits": []}') == []


def test_paste_places_clamps_and_counts_what_does_not_fit():
    clip = [("KD", 0.0, 1.5), ("SD", 0.5, -0.1), ("COWBELL", 0.1, 1.0), ("KD", 3.0, 0.5)]
    add, late, foreign = place_clip(clip, 1.0, ("KD", "SD"), duration_s=2.0)
    assert add == {"KD": [(1.0, 1.0)], "SD": [(1.5, 0.0)]}
    assert (late, foreign) == (1, 1)
