"""The editor's grid in pixels and labels, on the project's one tempo model (pure numpy, no Qt).

Every piece of arithmetic (grid steps, snapping, quantising, bar lines for any beats-per-bar, the
bar/beat readout) is :mod:`idm_host.tempo`'s; this module only turns pixels into seconds and keeps
the division labels the editor offers.
"""
from __future__ import annotations

import numpy as np

from idm_host.tempo import Tempo, bar_beat, grid_step_s, quantize, snap, steps_per_beat
from idm_host.tempo import grid_lines as _grid_lines

#: Grid divisions the editor offers: label -> steps per beat (a beat is a quarter note).
DIVISIONS: dict[str, int] = {label: steps_per_beat(label) for label in ("1/4", "1/8", "1/8T", "1/16", "1/16T", "1/32")}
DEFAULT_DIVISION = "1/16"

__all__ = ["DIVISIONS", "DEFAULT_DIVISION", "Tempo", "bar_beat", "grid_lines", "quantize", "snap", "step_s"]


def step_s(tempo: Tempo, division: str) -> float:
    """Seconds per grid step of a division label (``"1/16"``)."""
    return grid_step_s(tempo, division)


def grid_lines(start_s: float, end_s: float, tempo: Tempo, division: str, min_px: float,
               px_per_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid line times in ``[start_s, end_s]`` and their rank (2 = bar, 1 = beat, 0 = grid step),
    thinned where lines would be closer than ``min_px`` pixels (:func:`idm_host.tempo.grid_lines`)."""
    return _grid_lines(start_s, end_s, tempo, division, min_step_s=min_px / max(px_per_s, 1e-9))
