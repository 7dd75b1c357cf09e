"""Decibels: the one place that turns dB into linear gain and back (amplitude dB, 20 log10).

Example:
    >>> db_to_gain(0.0), round(db_to_gain(-6.0), 4), gain_to_db(1.0)
    (1.0, 0.5012, 0.0)
"""
from __future__ import annotations

import math
from typing import overload

import numpy as np

__all__ = ["db_to_gain", "gain_to_db"]


@overload
def db_to_gain(db: float) -> float: ...
@overload
def db_to_gain(db: np.ndarray) -> np.ndarray: ...
def db_to_gain(db):
    """``10 ** (db / 20)``: a float for a number, a float64 array for an array."""
    if isinstance(db, np.ndarray):
        return 10.0 ** (db.astype(np.float64) / 20.0)
    return 10.0 ** (float(db) / 20.0)


def gain_to_db(gain: float, floor_db: float = -math.inf) -> float:
    """``20 log10(gain)``, never below ``floor_db`` (``-inf`` for silence unless a floor is given)."""
    g = float(gain)
    return max(20.0 * math.log10(g), floor_db) if g > 0.0 else floor_db
