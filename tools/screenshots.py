"""Take the README's screenshots of idm-studio with a real analysed drum loop (offscreen ``grab()``).

Usage:
    python tools/screenshots.py [AUDIO] [--model NAME] [--out docs]

AUDIO defaults to ``../shared/reference/demo-mix.wav`` (``$IDM_HOST_REFERENCE``). When the model is not
installed and the reference folder holds the official checkpoint, it is imported into a temporary
model cache first. Window settings go to a temporary folder, so the user's are untouched.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def reference_dir() -> Path:
    env = os.environ.get("IDM_HOST_REFERENCE")
    return Path(env) if env else REPO.parent / "shared" / "reference"


def ensure_model(name: str) -> str:
    from idm_host.errors import ModelError
    from idm_host.installs import import_official
    from idm_host.models import OFFICIAL_NAME, model_path

    try:
        model_path(name)
        return name
    except ModelError:
        ckpt = reference_dir() / "idm-44-train-kits.ckpt"
        if not ckpt.exists():
            raise
        cache = Path(tempfile.mkdtemp(prefix="idm-shots-models-"))
        os.environ["IDM_HOST_MODELS"] = str(cache)
        import_official(ckpt)
        return OFFICIAL_NAME


def wait_for(app, predicate, timeout_s: float = 300.0) -> None:
    import time

    t_end = time.monotonic() + timeout_s
    while not predicate():
        app.processEvents()
        if time.monotonic() > t_end:
            raise TimeoutError("the window did not finish in time")
        time.sleep(0.01)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audio", nargs="?", default=str(reference_dir() / "demo-mix.wav"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", default=str(REPO / "docs"))
    args = ap.parse_args(argv)
    os.environ["IDM_HOST_CONFIG"] = tempfile.mkdtemp(prefix="idm-shots-config-")
    model = ensure_model(args.model)

    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest

    from gui.app import create_application
    from gui.main_window import MainWindow

    app = create_application()
    w = MainWindow(model=model, use_audio_device=False)
    w.confirm_close = False
    w.show()
    app.processEvents()  # the window first fits itself to the (offscreen) screen; then the shots' size
    w.resize(1440, 900)
    w.open_path(args.audio)
    wait_for(app, lambda: not w.runner.busy and w.model.has_session)
    if w.last_error:
        raise SystemExit(f"analysis failed: {w.last_error}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = w.grid

    # 1: the whole loop, a few snare hits selected by a rubber band, the edit cursor on bar 2
    lane = g.lane_rect(g.classes.index("SD"))
    a = QPoint(int(g.x_of(w.model.duration_s * 0.25)), int(lane.top() + 3))
    b = QPoint(int(g.x_of(w.model.duration_s * 0.5)), int(lane.bottom() - 3))
    QTest.mousePress(g, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(g, (a + b) / 2)
    QTest.mouseMove(g, b)
    QTest.mouseRelease(g, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    bpm, downbeat = w.model.tempo
    g.set_cursor(downbeat + 4 * 60.0 / bpm)
    w.kit_dock.raise_()
    app.processEvents()
    w.grab().save(str(out / "screenshot-editor.png"))

    # 2: zoomed to two bars, the mixer in front, the playhead mid-way
    g.clear_selection()
    w.axis.set_view(max(downbeat, 0.0), 8 * 60.0 / bpm)
    g.set_playhead(downbeat + 3 * 60.0 / bpm)
    w.waveform.set_playhead(g.playhead_s)
    m = w.model  # a few mixer settings, through the same intents the strips send
    m.set_effects("KD", "tight-kick")
    m.set_effects("SD", "fat-snare")
    m.set_effects("master", "master-glue")
    m.set_mixer("SD", gain_db=-3.5)
    m.set_mixer("HH_CHH", pan=-0.3, gain_db=-6.0)
    m.set_mixer("CY_RD", pan=0.4)
    w.mixer_dock.raise_()
    app.processEvents()
    w.grab().save(str(out / "screenshot-mixer.png"))
    w.close()
    print("\n".join(str(p) for p in sorted(out.glob("screenshot-*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
