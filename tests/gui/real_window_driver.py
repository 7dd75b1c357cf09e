"""idm-studio's own ``main()`` on the real (xcb) platform, with a line protocol on stdin/stdout so
that tests/gui/test_gui_real_window.py can ask the window what it shows while xdotool drives it.

Run as ``python real_window_driver.py FILE``. Each stdin line is a JSON command; each reply is one
stdout line starting with ``@@`` followed by JSON. The app's logging and Qt's warnings go to stderr.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from PyQt6.QtCore import QSocketNotifier, QTimer
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QApplication, QDockWidget, QToolTip

from gui import app as studio
from gui.document import ExportOptions
from gui.keys import shortcut_clashes


def window():
    from gui.main_window import MainWindow

    for w in QApplication.topLevelWidgets():
        if isinstance(w, MainWindow):
            return w
    return None


def reply(obj) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


def rect(r) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


def state(w) -> dict:
    m = w.model
    docks = {d.objectName(): d.isVisible() for d in w.findChildren(QDockWidget)}
    return {
        "opened": m.has_session, "busy": w.runner.busy, "error": w.last_error,
        "n_hits": m.n_hits(), "counts": {c: len(m.hits(c)) for c in m.classes},
        "undo": m.undo_action.text(), "redo": m.redo_action.text(),
        "frame": rect(w.frameGeometry()), "avail": rect(w.screen().availableGeometry()),
        "screen": rect(w.screen().geometry()), "docks": docks,
        "clashes": shortcut_clashes(w.findChildren(QAction)),
        "status": w.statusBar().last_message, "selected": w.grid.selected_count(),
        "duration": m.duration_s, "win_id": int(w.winId()),
        "tooltip": QToolTip.text() if QToolTip.isVisible() else "",
        "modal": type(QApplication.activeModalWidget()).__name__ if QApplication.activeModalWidget() else None,
    }


def handle(cmd: dict) -> None:
    w = window()
    op = cmd.get("op")
    if w is None:
        reply({"error": "no window yet"})
    elif op == "state":
        reply(state(w))
    elif op == "point":  # global coordinates of an empty spot in a lane, at a time
        p = w.grid.empty_point(cmd["cls"], float(cmd["time"]))
        p.setY(p.y() + 3)
        g = w.grid.mapToGlobal(p.toPoint())
        reply({"x": g.x(), "y": g.y()})
    elif op == "hit_point":  # global coordinates of a hit's bar: {cls, index} -> x, y and its time
        lane = w.model.hits(cmd["cls"])
        t, v = float(lane.times[int(cmd["index"])]), float(lane.velocities[int(cmd["index"])])
        g = w.grid.mapToGlobal(w.grid.point_of(cmd["cls"], t, v).toPoint())
        reply({"x": g.x(), "y": g.y(), "time": t})
    elif op == "midi_button":  # global centre of the "⇲ MIDI" drag button
        b = w.transport.midi_drag
        g = b.mapToGlobal(b.rect().center())
        reply({"x": g.x(), "y": g.y()})
    elif op == "show_docks":
        for d in w.findChildren(QDockWidget):
            d.show()
        QTimer.singleShot(500, lambda: reply(state(w)))
    elif op == "select_last":  # select and copy the last n hits, put the edit cursor near the end
        n = int(cmd["n"])
        hits = sorted((t, int(i)) for c in w.model.classes for t, i in zip(w.model.hits(c).times.tolist(),
                                                                            w.model.hits(c).ids.tolist()))
        last = hits[-n:]
        w.grid.set_selection([i for _, i in last])
        copied = w.grid.copy_selected()
        w.grid.set_cursor(w.model.duration_s - float(cmd.get("room_s", 0.5)))
        w.grid.setFocus()
        reply({"copied": copied, "span_s": last[-1][0] - last[0][0]})
    elif op == "select_class":  # select one lane's hits (for a screenshot with the fields filled in)
        w.grid.set_selection(w.model.hits(cmd["cls"]).ids.tolist())
        reply({"selected": w.grid.selected_count()})
    elif op == "focus_grid":
        w.grid.clear_selection()
        w.grid.setFocus()
        reply({"ok": True})
    elif op == "export_midi":
        opts = ExportOptions(folder=Path(cmd["folder"]), name="loop", stems=False, midi=True)
        w.runner.done.connect(lambda: reply({"error": w.last_error}))
        w.export(opts)
    elif op == "quit":
        w.confirm_close = False
        w.close()
        QApplication.instance().quit()
        reply({"ok": True})
    else:
        reply({"error": f"unknown op {op!r}"})


def main() -> int:
    app = studio.create_application(sys.argv[:1])
    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read, app)

    def on_stdin() -> None:
        line = sys.stdin.readline()
        if not line:
            notifier.setEnabled(False)
            QApplication.instance().quit()
            return
        if line.strip():
            handle(json.loads(line))

    notifier.activated.connect(on_stdin)
    return studio.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
