"""idm-studio's entry point: the QApplication, the dark theme and an exception dialog.

Run ``idm-studio [FILE]``, ``idm-host gui [FILE]`` or ``python -m gui [FILE]``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from types import TracebackType
from typing import Sequence

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from idm_host import __version__
from idm_host.errors import IdmError

from .theme import apply_dark_theme

log = logging.getLogger(__name__)


def show_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Log an uncaught exception and show it in a dialog instead of killing the app.

    An :class:`~idm_host.errors.IdmError` is bad input: the dialog shows its message only. Anything
    else is a bug: the dialog adds the traceback under "Show Details".
    """
    if issubclass(exc_type, KeyboardInterrupt):
        QApplication.quit()
        return
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("uncaught exception:\n%s", text)
    if QApplication.instance() is None:
        sys.__excepthook__(exc_type, exc, tb)
        return
    box = QMessageBox(QApplication.activeWindow())
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("idm-studio")
    if isinstance(exc, IdmError):
        box.setText(str(exc))
    else:
        box.setText(f"Something went wrong inside idm-studio: {type(exc).__name__}: {exc}")
        box.setInformativeText("Your session is unchanged. Please report this with the details below.")
        box.setDetailedText(text)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    """The running QApplication (created if needed) with name, theme and exception hook set."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("idm-studio")
    app.setOrganizationName("idm-host")
    app.setApplicationVersion(__version__)
    apply_dark_theme(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """Start idm-studio; open ``FILE`` (audio or ``.idmsession``) if given. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="idm-studio", description="The idm-host drum editor.")
    parser.add_argument("file", nargs="?", help="an audio file to analyse, or a .idmsession folder")
    parser.add_argument("--model", default="default", help="model name or weights path (default: default)")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the window once FILE is open, then exit (1 if opening failed)")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_application()
    sys.excepthook = show_exception
    from .main_window import MainWindow

    window = MainWindow(model=args.model)
    window.show()
    if args.screenshot:
        _exit_with_screenshot(app, window, args.screenshot, wait_for_job=bool(args.file))
    if args.file:
        window.open_path(args.file)
    return int(app.exec())


def _exit_with_screenshot(app: QApplication, window, path: str, *, wait_for_job: bool) -> None:
    """Save ``window.grab()`` to ``path`` when the opening job ends (or at once), then quit."""

    def shoot() -> None:
        window.grab().save(path)
        code = 1 if window.last_error else 0
        window.confirm_close = False
        window.close()
        app.exit(code)

    if wait_for_job:
        window.runner.done.connect(lambda: QTimer.singleShot(100, shoot))
    else:
        QTimer.singleShot(200, shoot)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
