"""GUI test fixtures: a synthetic analysed loop built from real idm_host types, and a MainWindow."""
from __future__ import annotations

import numpy as np
import pytest

SR = 44100


def make_loop(duration_s: float = 4.0, bpm: float = 120.0, seed: int = 0):
    """A drum loop made from known one-shots at known times, as an :class:`idm_host.Analysis`.

    Kick on beats 1 and 3, snare on 2 and 4, closed hat on eighths; other classes empty. The stems are
    the one-shots placed at the hits, so the mixture is their sum (residual 0).
    """
    from idm_host.classes import IDM_CLASSES
    from idm_host.types import Analysis, Audio, Kit, Stems, Transcription

    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    n = int(duration_s * SR)
    t = np.arange(int(0.25 * SR)) / SR
    shots = {
        "KD": (np.sin(2 * np.pi * 55 * t * (1 + 2 * np.exp(-t * 30))) * np.exp(-t * 14)),
        "SD": (rng.standard_normal(t.size) * 0.6 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22),
        "HH_CHH": rng.standard_normal(t.size) * np.exp(-t * 70) * 0.4,
    }
    one_shots = np.zeros((len(IDM_CLASSES), t.size), dtype=np.float32)
    for i, c in enumerate(IDM_CLASSES):
        shot = shots.get(c, rng.standard_normal(t.size) * np.exp(-t * 40) * 0.2)
        one_shots[i] = shot.astype(np.float32)
    times = {
        "KD": [k * beat for k in range(0, int(duration_s / beat), 2)],
        "SD": [k * beat for k in range(1, int(duration_s / beat), 2)],
        "HH_CHH": [k * beat / 2 for k in range(int(duration_s / beat * 2))],
    }
    vel = {"KD": 0.9, "SD": 0.75, "HH_CHH": 0.5}
    hits = {c: [(tt, vel[c]) for tt in ts] for c, ts in times.items()}
    tr = Transcription.from_times(IDM_CLASSES, hits, duration_s)
    stems = np.zeros((len(IDM_CLASSES), 1, n), dtype=np.float32)
    for i, c in enumerate(IDM_CLASSES):
        for h in tr.hits[c]:
            s = int(round(h.time_s * SR))
            e = min(n, s + t.size)
            stems[i, 0, s:e] += h.velocity * one_shots[i, : e - s]
    mix = stems.sum(axis=0)
    audio = Audio(mix.astype(np.float32), SR)
    kit = Kit(IDM_CLASSES, one_shots, SR)
    st = Stems(IDM_CLASSES, stems, np.zeros_like(mix), SR)
    return Analysis(tr, kit, st, np.ones(len(IDM_CLASSES), dtype=np.float32),
                    np.zeros(4, dtype=np.float32), "synthetic", audio)


@pytest.fixture
def loop_analysis():
    return make_loop()


@pytest.fixture
def loop_wav(tmp_path):
    """The synthetic loop's mixture written as a real 24-bit WAV file."""
    from idm_host.audio import save_audio

    a = make_loop()
    return save_audio(tmp_path / "loop.wav", a.audio.samples, SR)


@pytest.fixture
def session_model(qtbot, loop_analysis):
    from gui.session_model import SessionModel
    from idm_host.session import Session

    model = SessionModel()
    model.set_session(Session.from_analysis(loop_analysis), loop_analysis.audio)
    yield model
    model.close()


@pytest.fixture
def grid(qtbot, session_model):
    """An onset grid (1000 x 420, shown) on ``session_model``, the whole loop in view."""
    from gui.views.onset_grid import OnsetGridView
    from gui.views.time_axis import TimeAxis

    axis = TimeAxis()
    g = OnsetGridView(session_model, axis)
    qtbot.addWidget(g)
    g.resize(1000, 420)
    g.show()
    qtbot.waitExposed(g)
    axis.set_duration(session_model.duration_s)
    return g
