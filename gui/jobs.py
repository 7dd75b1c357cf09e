"""Long ``idm_host`` calls on a worker thread, reported through Qt signals.

Example:
    >>> runner = JobRunner()                                     # doctest: +SKIP
    >>> runner.finished.connect(show_analysis)                   # doctest: +SKIP
    >>> runner.start(separator.analyze, "loop.wav", title="Analysing")  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from idm_host.errors import Cancelled, IdmError
from idm_host.progress import Throttle

log = logging.getLogger(__name__)

#: The fewest seconds between two ``progress`` signals (about 20 Hz).
PROGRESS_INTERVAL_S = 0.05


class _Worker(QThread):
    """Runs one call; the job runner owns it and reads its outcome when it ends."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, runner: "JobRunner"):
        super().__init__()
        self._fn, self._args, self._kwargs, self._runner = fn, args, kwargs, runner
        self.result: Any = None
        self.error: str | None = None
        self.cancelled = False

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            self.result = self._fn(*self._args, **self._kwargs)
        except Cancelled:
            self.cancelled = True
        except IdmError as exc:
            self.error = str(exc)
        except MemoryError:
            self.error = "ran out of memory; close other programs or try a shorter file"
        except Exception as exc:  # a bug, not bad input: keep the traceback in the log
            log.error("job failed:\n%s", traceback.format_exc())
            self.error = f"unexpected error: {type(exc).__name__}: {exc}"


class JobRunner(QObject):
    """Runs one long call at a time on a worker thread.

    The call gets a ``progress=`` keyword argument (an :data:`idm_host.progress.ProgressCallback`)
    unless ``with_progress=False``. Signals are delivered on the GUI thread:

    - ``started(str)``: the job's title;
    - ``progress(float, str)``: fraction 0..1 and stage, at most about 20 times a second;
    - ``finished(object)``: the call's return value;
    - ``failed(str)``: a message for the user (an :class:`~idm_host.errors.IdmError`'s text);
    - ``cancelled()``: the job stopped because :meth:`cancel` was called;
    - ``done()``: after any of the three outcomes.

    :meth:`cancel` makes the job's next progress call raise :class:`~idm_host.errors.Cancelled`.
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(float, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    done = pyqtSignal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._worker: _Worker | None = None
        self._cancel = threading.Event()
        self._throttle = Throttle(PROGRESS_INTERVAL_S)
        self.title = ""

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self, fn: Callable[..., Any], *args: Any, title: str = "Working",
              with_progress: bool = True, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs, progress=cb)`` on a worker thread.

        Raises:
            RuntimeError: a job is already running (the caller should disable its action).
        """
        if self._worker is not None:
            raise RuntimeError(f"a job is already running ({self.title}); wait or cancel it")
        self._cancel.clear()
        self._throttle.reset()
        self.title = title
        if with_progress:
            kwargs["progress"] = self._report
        worker = _Worker(fn, args, kwargs, self)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self.started.emit(title)
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop at its next progress report."""
        if self._worker is not None:
            self._cancel.set()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the worker thread ends (for shutdown); True if it ended."""
        worker = self._worker
        return True if worker is None else worker.wait(int(timeout_s * 1000))

    # -- worker thread
    def _report(self, fraction: float, message: str = "") -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")
        passed = self._throttle(fraction, message)
        if passed is not None:
            self.progress.emit(passed, str(message))  # queued: the runner lives on the GUI thread

    # -- GUI thread
    def _on_worker_finished(self) -> None:
        worker = self._worker
        self._worker = None
        if worker is None:
            return
        worker.wait()
        try:
            if worker.cancelled:
                self.cancelled.emit()
            elif worker.error is not None:
                self.failed.emit(worker.error)
            else:
                self.finished.emit(worker.result)
        finally:
            self.done.emit()
            worker.deleteLater()
