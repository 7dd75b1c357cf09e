"""Waveform envelopes for drawing: no Qt here, so the session model can build them without
importing a view."""
from __future__ import annotations

import numpy as np

BASE_BLOCK = 64
LEVEL_FACTOR = 4


class Peaks:
    """Min/max envelopes of a mono signal at several resolutions, for drawing any zoom quickly.

    Level ``k`` holds the min and max of blocks of ``BASE_BLOCK * LEVEL_FACTOR**k`` samples.
    """

    def __init__(self, samples: np.ndarray, sample_rate: int):
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.sample_rate = int(sample_rate)
        self.n_frames = len(x)
        self.levels: list[tuple[int, np.ndarray, np.ndarray]] = []
        block = BASE_BLOCK
        n = len(x) // block * block
        if n == 0:
            x = np.pad(x, (0, block - len(x)))
            n = block
        tail = x[n:]
        mins = x[:n].reshape(-1, block).min(axis=1)
        maxs = x[:n].reshape(-1, block).max(axis=1)
        if len(tail):
            mins = np.append(mins, tail.min())
            maxs = np.append(maxs, tail.max())
        self.levels.append((block, mins, maxs))
        while len(mins) > 256:
            m = len(mins) // LEVEL_FACTOR * LEVEL_FACTOR
            nm = mins[:m].reshape(-1, LEVEL_FACTOR).min(axis=1)
            nx = maxs[:m].reshape(-1, LEVEL_FACTOR).max(axis=1)
            if m < len(mins):
                nm = np.append(nm, mins[m:].min())
                nx = np.append(nx, maxs[m:].max())
            mins, maxs = nm, nx
            block *= LEVEL_FACTOR
            self.levels.append((block, mins, maxs))
        self.peak = float(max(np.abs(self.levels[-1][1]).max(), np.abs(self.levels[-1][2]).max(), 1e-9))

    def columns(self, start_s: float, px_per_s: float, width_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pixel (x, min, max) for ``width_px`` pixels from ``start_s`` at ``px_per_s``."""
        samples_per_px = self.sample_rate / px_per_s
        block, mins, maxs = self.levels[0]
        for b, mn, mx in self.levels:
            if b <= samples_per_px:
                block, mins, maxs = b, mn, mx
        # pixel edges in block units
        edges = (start_s + np.arange(width_px + 1) / px_per_s) * self.sample_rate / block
        edges = np.floor(edges).astype(np.int64)
        valid = (edges[:-1] < len(mins)) & (edges[1:] > 0)
        lo = np.clip(edges[:-1], 0, len(mins) - 1)
        hi = np.clip(np.maximum(edges[1:], lo + 1), 1, len(mins))
        xs = np.nonzero(valid)[0]
        if len(xs) == 0:
            return xs, np.empty(0), np.empty(0)
        lo, hi = lo[valid], hi[valid]
        # reduce mins[lo:hi] per column: interleave the bounds and keep every other result
        idx = np.empty(2 * len(lo), dtype=np.int64)
        idx[0::2], idx[1::2] = lo, hi
        cmin = np.minimum.reduceat(np.append(mins, 0.0), idx)[0::2]
        cmax = np.maximum.reduceat(np.append(maxs, 0.0), idx)[0::2]
        return xs, cmin, cmax
