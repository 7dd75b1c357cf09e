"""JobRunner: results, errors, throttled progress and cancel, on a real worker thread."""
from __future__ import annotations

import threading
import time

import pytest

from idm_host.errors import AudioError, Cancelled


@pytest.fixture
def runner(qtbot):
    from gui.jobs import JobRunner

    r = JobRunner()
    yield r
    r.cancel()
    r.wait(10)


def test_result_arrives_on_the_gui_thread(qtbot, runner):
    seen = {}

    def job(x, *, progress):
        seen["thread"] = threading.current_thread()
        progress(0.5, "half")
        return x * 2

    with qtbot.waitSignal(runner.finished, timeout=5000) as sig:
        runner.start(job, 21, title="double")
    assert sig.args == [42]
    assert seen["thread"] is not threading.main_thread()
    assert not runner.busy


def test_idm_error_becomes_failed_with_its_message(qtbot, runner):
    def job(*, progress):
        raise AudioError("loop.wav: file is empty (0 bytes); export the audio again")

    with qtbot.waitSignal(runner.failed, timeout=5000) as sig:
        runner.start(job)
    assert sig.args == ["loop.wav: file is empty (0 bytes); export the audio again"]


def test_a_bug_becomes_failed_without_crashing(qtbot, runner):
    def job(*, progress):
        return 1 / 0

    with qtbot.waitSignal(runner.failed, timeout=5000) as sig:
        runner.start(job)
    assert sig.args[0].startswith("unexpected error: ZeroDivisionError")


def test_progress_is_throttled_and_monotonic(qtbot, runner):
    values = []
    runner.progress.connect(lambda f, m: values.append(f))

    def job(*, progress):
        t_end = time.monotonic() + 0.5
        i = 0
        while time.monotonic() < t_end:
            progress(min(i / 200000, 0.99), "working")
            i += 1
        progress(1.0, "done")
        return i

    with qtbot.waitSignal(runner.finished, timeout=5000) as sig:
        runner.start(job)
    qtbot.wait(50)
    calls = sig.args[0]
    assert calls > 1000  # the job reported far more often than the GUI is told
    assert 3 <= len(values) <= 0.5 * 20 * 1.5 + 2  # about 20 Hz for 0.5 s, plus the final 1.0
    assert values == sorted(values) and values[-1] == 1.0


def test_cancel_raises_cancelled_inside_the_job(qtbot, runner):
    started = threading.Event()
    raised = {}

    def job(*, progress):
        started.set()
        try:
            for i in range(10_000):
                progress(i / 10_000, "step")
                time.sleep(0.001)
        except Cancelled:
            raised["yes"] = True
            raise
        return "finished anyway"

    finished = []
    runner.finished.connect(finished.append)
    with qtbot.waitSignal(runner.cancelled, timeout=10000):
        runner.start(job)
        assert started.wait(5)
        runner.cancel()
    assert raised == {"yes": True}
    assert finished == []
    assert not runner.busy


def test_one_job_at_a_time(qtbot, runner):
    gate = threading.Event()
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(lambda *, progress: gate.wait(5))
        with pytest.raises(RuntimeError, match="already running"):
            runner.start(lambda *, progress: None)
        gate.set()
