"""GUI: onset-grid redraw and edit latency (10-minute session, 5,000 hits, offscreen Qt)

Measures the real :class:`gui.views.onset_grid.OnsetGridView` on a real
:class:`idm_host.session.Session`: painting the whole widget into an image (zoomed out, where all
5,000 hits are in view, and at a typical 10 s zoom), a synchronous widget repaint, and the time from
an edit intent (add a hit, move 50 selected hits, a mouse click that adds a hit) to the repainted
grid. Medians of repeated runs; the QT platform is forced to ``offscreen``.
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

DURATION_S = 600.0
N_HITS = 5000
SR = 44100
WIDTH, HEIGHT = 1600, 600
REDRAW_TARGET_MS = 16.0
EDIT_TARGET_MS = 33.0


def _session():
    from idm_host.classes import IDM_CLASSES
    from idm_host.session import Session
    from idm_host.types import Analysis, Audio, Kit, Stems, Transcription

    rng = np.random.default_rng(0)
    weights = np.array([1, 2, 8, 2, 6, 5, 1, 1, 1], dtype=float)
    cls = rng.choice(len(IDM_CLASSES), size=N_HITS, p=weights / weights.sum())
    times = np.sort(rng.uniform(0.0, DURATION_S - 0.01, size=N_HITS))
    vels = rng.uniform(0.2, 1.0, size=N_HITS)
    hits = {c: [(float(t), float(v)) for t, v, k in zip(times, vels, cls) if k == i] for i, c in enumerate(IDM_CLASSES)}
    tr = Transcription.from_times(IDM_CLASSES, hits, DURATION_S)
    n = int(DURATION_S * SR)
    audio = Audio(np.broadcast_to(np.zeros(1, np.float32), (1, n)), SR)  # a view: no 100 MB buffer
    kit = Kit(IDM_CLASSES, (rng.standard_normal((len(IDM_CLASSES), 2048)) * 0.1).astype(np.float32), SR)
    stems = Stems(IDM_CLASSES, np.zeros((len(IDM_CLASSES), 1, 1), np.float32), np.zeros((1, 1), np.float32), SR)
    analysis = Analysis(tr, kit, stems, np.ones(len(IDM_CLASSES), np.float32), np.zeros(4, np.float32), "bench", audio)
    return Session.from_analysis(analysis, keep_stems=False)


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm caches
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def run() -> list[dict]:
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui.session_model import SessionModel
    from gui.views.onset_grid import OnsetGridView
    from gui.views.time_axis import TimeAxis

    session = _session()
    model = SessionModel()
    model.set_session(session)
    axis = TimeAxis()
    grid = OnsetGridView(model, axis)
    grid.resize(WIDTH, HEIGHT)
    grid.show()
    app.processEvents()
    axis.set_duration(DURATION_S)
    img = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32_Premultiplied)

    def paint_image() -> None:
        p = QPainter(img)
        grid.paint(p)
        p.end()

    rows = []
    axis.fit()
    full = _median_ms(paint_image, 40)
    rows.append(dict(name="grid redraw, whole 10 min in view (5,000 hits)", value=full, unit="ms",
                     target=f"<= {REDRAW_TARGET_MS:g} ms", ok=full <= REDRAW_TARGET_MS,
                     note=f"{WIDTH}x{HEIGHT} px, QPainter into a QImage"))
    grid.select_all()
    sel = _median_ms(paint_image, 40)
    rows.append(dict(name="grid redraw, whole view, all 5,000 hits selected", value=sel, unit="ms",
                     target=f"<= {REDRAW_TARGET_MS:g} ms", ok=sel <= REDRAW_TARGET_MS,
                     note="selected hits drawn in a light fill"))
    grid.clear_selection()
    axis.set_view(300.0, 10.0)
    zoomed = _median_ms(paint_image, 40)
    rows.append(dict(name="grid redraw, 10 s in view", value=zoomed, unit="ms",
                     target=f"<= {REDRAW_TARGET_MS:g} ms", ok=zoomed <= REDRAW_TARGET_MS, note="typical editing zoom"))
    axis.fit()
    widget = _median_ms(grid.repaint, 40)
    rows.append(dict(name="widget repaint (paintEvent), whole view", value=widget, unit="ms",
                     target=f"<= {REDRAW_TARGET_MS:g} ms", ok=widget <= REDRAW_TARGET_MS,
                     note="synchronous QWidget.repaint() on the offscreen backing store"))

    axis.set_view(300.0, 10.0)
    t_add = []
    for k in range(30):
        t0 = time.perf_counter()
        ids = model.add_hits({"SD": [(300.5 + k * 0.2, 0.8)]})
        grid.repaint()
        t_add.append((time.perf_counter() - t0) * 1000)
        assert ids
    add = statistics.median(t_add)
    rows.append(dict(name="add a hit -> session updated and grid repainted", value=add, unit="ms",
                     target=f"<= {EDIT_TARGET_MS:g} ms", ok=add <= EDIT_TARGET_MS, note="intent, undo step, signal, repaint"))

    hh = model.hits("HH_CHH")
    lo, hi = np.searchsorted(hh.times, [300.0, 310.0])
    ids = hh.ids[lo:hi][:50].tolist()
    grid.set_selection(ids)
    t_move = []
    for k in range(30):
        t0 = time.perf_counter()
        model.move_hits(ids, 0.01 if k % 2 == 0 else -0.01)
        grid.repaint()
        t_move.append((time.perf_counter() - t0) * 1000)
    move = statistics.median(t_move)
    rows.append(dict(name=f"move {len(ids)} selected hits -> repainted", value=move, unit="ms",
                     target=f"<= {EDIT_TARGET_MS:g} ms", ok=move <= EDIT_TARGET_MS, note=""))

    grid.clear_selection()
    n_before = len(model.session.hits["TT_HMT"])
    t_click = []
    for k in range(20):
        x = int(round(grid.x_of(301.0 + k * 0.4 + 0.05)))
        y = int(grid.empty_point("TT_HMT", 301.0).y())
        t0 = time.perf_counter()
        QTest.mouseClick(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x, y))
        grid.repaint()
        t_click.append((time.perf_counter() - t0) * 1000)
    click = statistics.median(t_click)
    rows.append(dict(name="mouse click adds a hit -> repainted", value=click, unit="ms",
                     target=f"<= {EDIT_TARGET_MS:g} ms", ok=click <= EDIT_TARGET_MS,
                     note=f"{len(model.session.hits['TT_HMT']) - n_before} hits added by real mouse events"))
    grid.close()
    model.close()
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run():
        print(f"{r['name']}: {r['value']:.2f} {r['unit']} (target {r['target']}, ok={r['ok']})")
