"""Training examples for the transcription network: kit x performance x recording -> features + targets.

One example: a random kit (a training kit, augmented with probability ``kit_aug_prob``, or a
procedural kit), a random performance (the groove generator, embellished with flams, rolls and
ghost notes, or a blast beat, or drums scattered at random so that no class is tied to a groove;
optionally with some drum groups silent, throughout or from a point on: :func:`mute_groups`),
played with velocity-layer jitter, recorded and mixed by :func:`~idm_host.train.recording.record`.
Targets at the transcriber's 100 frames/s: onsets ``[K, T]`` (1 at ``round(t * 100)``), velocity
and in-frame offset at those frames.

A stream is a pure function of its seed: every worker of a DataLoader draws its own seeded stream.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from ..classes import IDM_CLASSES, group_of
from ..transcriber.features import FRAME_RATE, n_frames
from .data import playable_hits, worker_rng
from .kits import PATTERN_NOTES, SampledKit
from .patterns import STYLES, Pattern, generate_groove
from .procedural import augment_kit, mix_kits, procedural_kit
from .recording import record

SR = MODEL_SAMPLE_RATE
PRE_ROLL_S = 2.0
#: With ``ExampleStream(ending_p=...)``, how long before the clip's end the performance stops (s).
ENDING_S = (0.3, 2.5)

_KICKS, _SNARES = (36, 35), (38, 40, 37)
_TOMS = (50, 48, 47, 45, 43, 41)
_HATS = (42, 42, 44, 46)
_CYMBALS = (49, 57, 55, 52, 51, 53, 59)


def embellish(p: Pattern, rng: np.random.Generator, *, flam_p: float = 0.04, roll_p: float = 0.3,
              ghost_p: float = 0.3) -> Pattern:
    """Flams (a soft grace note 15-40 ms before a snare or tom hit), a roll (a burst of fast strokes
    on the snare or a tom, rising or falling) and extra ghost snares."""
    hits = list(zip(p.times_s.tolist(), p.notes.tolist(), p.velocities.tolist()))
    extra: list[tuple[float, int, float]] = []
    for t, n, v in hits:
        if n in _SNARES + _TOMS and rng.random() < flam_p:
            extra.append((max(0.0, t - rng.uniform(0.015, 0.04)), n, v * rng.uniform(0.3, 0.6)))
    if rng.random() < roll_p and p.duration_s > 1.0:
        note = int(rng.choice(_SNARES[:1] + _TOMS))
        start = float(rng.uniform(0.0, p.duration_s - 0.5))
        rate = float(rng.uniform(8.0, 24.0))  # strokes per second
        count = int(rng.integers(4, 16))
        v0, v1 = rng.uniform(0.2, 1.0, size=2)
        for i in range(count):
            extra.append((start + i / rate, note, float(v0 + (v1 - v0) * i / max(count - 1, 1))))
    if rng.random() < ghost_p and p.tempo_bpm:
        step = 60.0 / p.tempo_bpm / 4
        for i in range(int(p.duration_s / step)):
            if rng.random() < 0.1:
                extra.append((i * step + rng.normal(0, 0.005), 38, float(rng.uniform(0.08, 0.3))))
    extra = [(t, n, v) for t, n, v in extra if 0.0 <= t < p.duration_s]
    return Pattern.from_hits(hits + extra, p.duration_s, tempo_bpm=p.tempo_bpm, style=p.style, source=p.source)


def blast_beat(rng: np.random.Generator, duration_s: float) -> Pattern:
    """Kick and snare alternating (or together) on fast 16ths, cymbal or hat on every stroke."""
    bpm = float(rng.uniform(160, 260))
    step = 60.0 / bpm / 4 * (2 if bpm > 220 else 1)
    together = rng.random() < 0.4
    keeper = int(rng.choice((42, 51, 49, 52)))
    hits = []
    for i in range(int(duration_s / step) + 1):
        t = i * step + rng.normal(0, 0.003)
        if t < 0:
            continue
        if together or i % 2 == 0:
            hits.append((t, 36, float(rng.uniform(0.7, 1.0))))
        if together or i % 2 == 1:
            hits.append((t, 38, float(rng.uniform(0.6, 1.0))))
        hits.append((t, keeper, float(rng.uniform(0.5, 0.9))))
    return Pattern.from_hits(hits, duration_s, tempo_bpm=bpm, style="blast", source="generator:blast")


def scatter(rng: np.random.Generator, duration_s: float) -> Pattern:
    """Drums at random times (no groove): each class at its own random rate, any velocity."""
    hits = []
    for notes, rate in ((_KICKS, 2.0), (_SNARES, 2.0), (_HATS, 3.0), (_TOMS, 2.0), (_CYMBALS, 1.0)):
        r = rng.uniform(0.0, rate)
        t = float(rng.exponential(1.0 / max(r, 1e-3)))
        while t < duration_s:
            hits.append((t, int(rng.choice(notes)), float(rng.uniform(0.1, 1.0))))
            t += max(0.03, float(rng.exponential(1.0 / max(r, 1e-3))))
    return Pattern.from_hits(hits, duration_s, style="scatter", source="generator:scatter")


def mute_groups(p: Pattern, rng: np.random.Generator, *, section_p: float = 0.5) -> Pattern:
    """``p`` with some of its drum groups (kick, snare, hats, toms, cymbals) silent: each group that
    plays is muted with probability 1/2, one group always plays on; with probability ``section_p``
    a muted group is silent only before or only after a random point (a part that enters or drops
    out). The hats alone counting in, a kick alone on the beat, a snare roll without its groove:
    a groove's other drums are not there to be inferred from it (the shipped network, trained on
    full grooves only, hears kicks and snares under a hi-hat played alone; MODEL_CARD.md, session 13)."""
    of = np.array([group_of(PATTERN_NOTES[int(n)]) if int(n) in PATTERN_NOTES else "" for n in p.notes])
    groups = sorted(set(of.tolist()) - {""})
    if len(groups) < 2:
        return p
    keep = groups[int(rng.integers(len(groups)))]
    muted = [g for g in groups if g != keep and rng.random() < 0.5]
    if not muted:
        return p
    silent = np.zeros(p.times_s.size, dtype=bool)
    for g in muted:
        span = of == g
        if rng.random() < section_p:
            cut = float(rng.uniform(0.0, p.duration_s))
            span &= (p.times_s < cut) if rng.random() < 0.5 else (p.times_s >= cut)
        silent |= span
    return Pattern(p.times_s[~silent], p.notes[~silent], p.velocities[~silent], p.duration_s,
                   tempo_bpm=p.tempo_bpm, style=p.style, source=p.source)


def performance(rng: np.random.Generator, duration_s: float, *, styles: Sequence[str] = STYLES) -> Pattern:
    """A random performance of ``duration_s`` (with :data:`PRE_ROLL_S` of lead-in before it)."""
    total = duration_s + PRE_ROLL_S
    u = rng.random()
    if u < 0.12:
        return scatter(rng, total)
    if u < 0.17:
        return blast_beat(rng, total)
    lead = float(rng.uniform(0.0, 4.0))
    style = styles[int(rng.integers(len(styles)))]
    g = generate_groove(rng, style=style, duration_s=total + lead).crop(lead, total)
    return embellish(g, rng)


@dataclass
class Example:
    """One training example: mono audio and the targets at the transcriber's frame rate."""

    audio: np.ndarray       # float32 (n,)
    onsets: np.ndarray      # float32 (K, T): 1 at an onset frame
    velocity: np.ndarray    # float32 (K, T): the hit's velocity at onset frames
    offset: np.ndarray      # float32 (K, T): t * FRAME_RATE - frame, in [-0.5, 0.5)
    hits: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def play(kit: SampledKit, pattern: Pattern, classes: Sequence[str], rng: np.random.Generator, *,
         start_s: float, duration_s: float, layer_jitter: float = 0.12
         ) -> tuple[np.ndarray, dict[str, list[tuple[float, float]]]]:
    """Dry stems ``[K, n]`` of the pattern on ``kit`` (one instrument per note), and the hits that
    start inside ``[start_s, start_s + duration_s)`` (times relative to ``start_s``).

    The velocity layer is chosen with the velocity jittered by +-``layer_jitter`` (a kit's layer
    boundaries are arbitrary), the sample scaled by the true velocity.
    """
    n = int(round(duration_s * SR))
    stems = np.zeros((len(classes), n), dtype=np.float32)
    hits: dict[str, list[tuple[float, float]]] = {c: [] for c in classes}
    start = int(round(start_s * SR))
    for t, ci, kit_note, vel in playable_hits(pattern, kit, classes, start_s + duration_s):
        inst = kit.instruments[kit_note][0]
        v = float(vel)
        lv = float(np.clip(v + rng.uniform(-layer_jitter, layer_jitter), 0.0, 1.0))
        x = inst.pick(lv, rng) * np.float32(v / max(lv, 1e-3))
        pos = int(round(t * SR)) - start
        a, b = max(pos, 0), min(pos + x.size, n)
        if b > a:
            stems[ci, a:b] += x[a - pos:b - pos]
        if t >= start_s:
            hits[classes[ci]].append((float(t - start_s), v))
    return stems, hits


def targets(hits: dict[str, list[tuple[float, float]]], classes: Sequence[str], n_samples: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onset, velocity and offset targets ``[K, T]`` from hits (the louder hit wins a shared frame)."""
    t_frames = n_frames(n_samples)
    on = np.zeros((len(classes), t_frames), dtype=np.float32)
    vel = np.zeros_like(on)
    off = np.zeros_like(on)
    for ci, c in enumerate(classes):
        for t, v in hits.get(c, ()):
            x = t * FRAME_RATE
            f = int(np.floor(x + 0.5))
            if 0 <= f < t_frames and v >= vel[ci, f]:
                on[ci, f] = 1.0
                vel[ci, f] = v
                off[ci, f] = x - f
    return on, vel, off


class ExampleStream:
    """Endless seeded examples (module docstring).

    Args:
        kits: the training kits.
        classes: the transcriber's classes.
        duration_s: example length (s).
        seed: base seed.
        procedural_p: probability that an example uses a procedural kit.
        kit_aug_prob: probability that a sampled kit is augmented (pitch, tilt, decay).
        record_strength: the recording augmentation's strength (0 = dry sum).
        procedural_reuse: examples drawn from one procedural kit before a new one is made.
        kit_weights: relative probabilities of the sampled kits (None: equal).
        mix_p: probability that a sampled-kit example takes each drum group from another random
            sampled kit (:func:`~idm_host.train.procedural.mix_kits`) before augmentation.
        ending_p: probability that the performance stops :data:`ENDING_S` before the clip's end,
            so the example ends in the kit's ringing tails and then silence, with no hits there
            (a song's or a loop's end; the crops of longer performances almost never end so).
        mute_p: probability that some of the performance's drum groups are silent (:func:`mute_groups`).
    """

    def __init__(self, kits: Sequence[SampledKit], *, classes: Sequence[str] = IDM_CLASSES, duration_s: float = 6.0,
                 seed: int = 0, procedural_p: float = 0.35, kit_aug_prob: float = 0.6, record_strength: float = 1.0,
                 procedural_reuse: int = 16, styles: Sequence[str] = STYLES,
                 kit_weights: Sequence[float] | None = None, mix_p: float = 0.0, ending_p: float = 0.0,
                 mute_p: float = 0.0):
        self.kits = list(kits)
        self.kit_p: np.ndarray | None = None
        if kit_weights is not None:
            w = np.asarray(kit_weights, dtype=np.float64)
            if w.shape != (len(self.kits),) or not np.all(w > 0):
                raise ValueError(f"kit_weights: {len(self.kits)} positive weights expected, got {list(kit_weights)}")
            self.kit_p = w / w.sum()
        self.classes = tuple(classes)
        self.duration_s = float(duration_s)
        self.seed = int(seed)
        self.procedural_p = procedural_p if self.kits else 1.0
        self.kit_aug_prob = kit_aug_prob
        self.record_strength = record_strength
        self.procedural_reuse = procedural_reuse
        self.styles = tuple(styles)
        self.mix_p = float(mix_p)
        self.ending_p = float(ending_p)
        self.mute_p = float(mute_p)
        self._proc: SampledKit | None = None
        self._proc_uses = 0

    def _kit(self, rng: np.random.Generator) -> tuple[SampledKit, dict[str, Any]]:
        if rng.random() < self.procedural_p:
            if self._proc is None or self._proc_uses >= self.procedural_reuse:
                self._proc = procedural_kit(int(rng.integers(2**31)))
                self._proc_uses = 0
            self._proc_uses += 1
            return self._proc.variant(rng), {"kit": self._proc.name}
        kit = self._pick(rng)
        if self.mix_p > 0 and len(self.kits) > 1 and rng.random() < self.mix_p:
            # one kit per drum group, each drawn with the kits' weights
            kit, _ = mix_kits([self._pick(rng) for _ in range(5)], rng)
        if rng.random() < self.kit_aug_prob:
            aug, changes = augment_kit(kit, rng)
            return aug, {"kit": kit.name, "kit_changes": changes}
        return kit.variant(rng), {"kit": kit.name}

    def _pick(self, rng: np.random.Generator) -> SampledKit:
        return self.kits[int(rng.integers(len(self.kits)) if self.kit_p is None
                             else rng.choice(len(self.kits), p=self.kit_p))]

    def example(self, rng: np.random.Generator) -> Example:
        kit, meta = self._kit(rng)
        pattern = performance(rng, self.duration_s, styles=self.styles)
        if self.ending_p > 0 and rng.random() < self.ending_p:  # no draw at 0: older streams stay as they were
            # the performance stops there (its times start at 0); what was played rings on
            pattern = pattern.crop(0.0, PRE_ROLL_S + self.duration_s - float(rng.uniform(*ENDING_S)))
            meta["ending"] = True
        if self.mute_p > 0 and rng.random() < self.mute_p:  # no draw at 0, as for ending_p
            pattern = mute_groups(pattern, rng)
            meta["muted"] = True
        stems, hits = play(kit, pattern, self.classes, rng, start_s=PRE_ROLL_S, duration_s=self.duration_s)
        mix, rec = record(stems, self.classes, rng, strength=self.record_strength)
        on, vel, off = targets(hits, self.classes, mix.size)
        meta.update(style=pattern.style, recording=rec)
        return Example(mix, on, vel, off, hits, meta)

    def __iter__(self) -> Iterator[Example]:
        rng = worker_rng(self.seed)
        while True:
            yield self.example(rng)


def class_rates(stream: ExampleStream, n: int, seed: int = 0) -> dict[str, Any]:
    """Hits per class and per minute over ``n`` examples of ``stream`` (the training stream's rates),
    and the share of examples in which each class sounds."""
    rng = np.random.default_rng(seed)
    counts: Counter[str] = Counter()
    present: Counter[str] = Counter()
    for _ in range(n):
        p = performance(rng, stream.duration_s, styles=stream.styles).crop(PRE_ROLL_S, stream.duration_s)
        seen = set()
        for note in p.notes:
            c = PATTERN_NOTES.get(int(note))
            if c is not None:
                counts[c] += 1
                seen.add(c)
        present.update(seen)
    minutes = n * stream.duration_s / 60.0
    return {c: {"hits": counts[c], "per_minute": round(counts[c] / minutes, 1),
                "clip_share": round(present[c] / n, 3)} for c in stream.classes}
