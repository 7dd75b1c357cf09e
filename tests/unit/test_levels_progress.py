"""The one dB helper and the one progress throttle, against their definitions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from idm_host.levels import db_to_gain, gain_to_db
from idm_host.progress import Throttle


@pytest.mark.parametrize("db", [-60.0, -6.0, 0.0, 3.5, 24.0])
def test_db_to_gain_is_amplitude_decibels(db):
    g = db_to_gain(db)
    assert isinstance(g, float)
    assert g == 10.0 ** (db / 20.0)  # the expression every caller wrote inline before
    assert gain_to_db(g) == pytest.approx(db, abs=1e-12)


def test_db_to_gain_arrays_and_silence():
    db = np.array([-20.0, 0.0, 20.0], dtype=np.float32)
    np.testing.assert_allclose(db_to_gain(db), [0.1, 1.0, 10.0], rtol=1e-12)
    assert db_to_gain(db).dtype == np.float64
    assert gain_to_db(0.0) == -math.inf
    assert gain_to_db(0.0, floor_db=-120.0) == -120.0
    assert gain_to_db(1e-9, floor_db=-120.0) == -120.0


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_throttle_interval_final_and_monotonic():
    clock = Clock()
    th = Throttle(0.05, clock=clock)
    assert th(0.1, "a") == 0.1          # the first report always passes
    clock.t += 0.01
    assert th(0.2, "a") is None          # too soon
    assert th(0.3, "b") is None          # a new stage does not count unless asked
    assert th(1.0, "a") == 1.0           # the final one always passes
    clock.t += 0.06
    assert th(0.5, "a") == 1.0           # never backwards
    th.reset()
    assert th(-0.5, "a") == 0.0          # clamped, and a reset forgets the last fraction


def test_throttle_new_stage_and_not_monotonic():
    clock = Clock()
    th = Throttle(0.05, monotonic=False, on_new_stage=True, clock=clock)
    assert th(0.5, "encode") == 0.5
    assert th(0.6, "encode") is None
    assert th(0.2, "mask") == 0.2        # a new stage passes, and may go back
    clock.t += 0.05
    assert th(2.0, "mask") == 1.0
