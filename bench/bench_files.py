"""Files and sessions: kills survived by `separate` and by session saves, files lost, and what the truncation check costs.

Issue 11: SIGTERM, SIGINT and kill -9 at seeded random moments of `idm-host separate` (start-up,
model, separation, writing) and of a session save that runs in a loop. After every kill the
previous outputs and session must be whole (loadable, every file complete), nothing outside the
target folder may change, SIGTERM/SIGINT must leave no temporary behind, and the next run must
remove what kill -9 left. The figures count kills, and every file lost or damaged (the target is 0).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SEED = 20261202
SAVE_KILLS = 60
SEPARATE_KILLS = 18


def _default_signals() -> None:
    """In the child: SIGINT as an interactive shell gives it (a background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob(".*")
            if p.name != ".idm-batch" and ".idm-batch" not in p.parts]


SAVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {unit!r})
    import numpy as np
    from idm_host.session import Session, SetTempo, ReplaceSample
    from sessionkit import make_analysis
    s = Session.load(sys.argv[1])
    print("ready", flush=True)
    n = 0
    while True:
        n = n % 100 + 1
        s.apply(SetTempo(bpm=60.0 + n))
        s.apply(ReplaceSample("SD", samples=np.full(1000 + n, n / 1000.0, np.float32), sample_rate=s.sample_rate))
        s.save(sys.argv[1])
""")


def bench_saves(tmp: Path) -> list[dict]:
    sys.path.insert(0, str(REPO / "tests" / "unit"))
    from sessionkit import make_analysis

    from idm_host.session import Session

    work = tmp / "saves"
    work.mkdir()
    (work / "neighbour.txt").write_text("untouched")
    path = Session.from_analysis(make_analysis(duration_s=8.0, channels=2)).save(work / "song")
    script = tmp / "saver.py"
    script.write_text(SAVER.format(unit=str(REPO / "tests" / "unit")))
    rng = random.Random(SEED)
    kills = unloadable = inconsistent = outside = leftovers_after_next = stopped = 0
    sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    t0 = time.perf_counter()
    for i in range(SAVE_KILLS):
        p = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                             preexec_fn=_default_signals)
        p.stdout.readline()
        time.sleep(rng.uniform(0.05, 1.5))
        p.send_signal(sigs[i % 3])
        p.wait()
        stopped += p.returncode != 0
        p.stdout.close()
        kills += 1
        try:
            s = Session.load(path)
            n = int(round(s.tempo.bpm)) - 60
            sd = s.kit["SD"].one_shot
            if s.kit["SD"].origin == "file" and not (sd.size == 1000 + n and float(sd[0]) == float(sd[-1])):
                inconsistent += 1
        except Exception:
            unloadable += 1
        if (work / "neighbour.txt").read_text() != "untouched":
            outside += 1
        s = Session.load(path)
        s.save(path)  # the next save cleans up
        leftovers_after_next += len(_hidden(work))
    secs = time.perf_counter() - t0
    return [
        {"name": "session save: kills (SIGKILL, SIGTERM, SIGINT in turn)", "value": kills, "unit": "kills",
         "note": f"seeded random moments 0.05-1.5 s into a save loop; {stopped} ended the saver; {secs:.0f} s"},
        {"name": "session save: sessions unloadable or mixed after a kill", "value": unloadable + inconsistent,
         "unit": "sessions", "target": "0", "ok": unloadable + inconsistent == 0},
        {"name": "session save: files outside the session changed", "value": outside, "unit": "files",
         "target": "0", "ok": outside == 0},
        {"name": "session save: leftovers after the next save", "value": leftovers_after_next, "unit": "files",
         "target": "0", "ok": leftovers_after_next == 0},
    ]


def bench_separate(tmp: Path) -> list[dict]:
    from idm_host.audio import load_audio
    from idm_host.demo import make_example_loop

    work = tmp / "sep"
    work.mkdir()
    clip = tmp / "clip.wav"
    make_example_loop(clip, duration_s=10.0)
    (work / "neighbour.txt").write_text("untouched")
    out = work / "out"
    cmd = [sys.executable, "-m", "idm_host", "separate", str(clip), "--out", str(out), "--overwrite", "-q"]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if ok.returncode != 0:
        return [{"name": "separate kills", "value": "skipped", "unit": "", "note": ok.stderr.strip()[-200:]}]
    rng = random.Random(SEED + 1)
    sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
    kills = lost = outside = left_after_clean_exit = left_after_next = tracebacks = mid_run = 0
    t0 = time.perf_counter()
    for i in range(SEPARATE_KILLS):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
                             preexec_fn=_default_signals)
        time.sleep(rng.uniform(0.3, 8.0))
        sig = sigs[i % 3]
        p.send_signal(sig)
        _, err = p.communicate()
        kills += 1
        mid_run += p.returncode != 0  # 130, 143 or -9: the signal stopped a run (0: it had finished)
        tracebacks += "Traceback" in err
        if sig != signal.SIGKILL:
            left_after_clean_exit += len(_hidden(work))
        track = out / clip.stem
        for name in ("KD.wav", "SD.wav", "residual.wav", "onsets.json", "transcription.mid", "kit/KD.wav"):
            try:
                if name.endswith(".wav"):
                    load_audio(track / name, sample_rate=None)
                elif not (track / name).stat().st_size:
                    lost += 1
            except Exception:
                lost += 1
        if (work / "neighbour.txt").read_text() != "untouched":
            outside += 1
        if sig == signal.SIGKILL:
            nxt = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            left_after_next += len(_hidden(work)) + (nxt.returncode != 0)
    secs = time.perf_counter() - t0
    return [
        {"name": "separate: kills (SIGTERM, SIGINT, SIGKILL in turn)", "value": kills, "unit": "kills",
         "note": f"10 s clip, seeded random moments 0.3-8 s after start; {mid_run} stopped a run mid-way, "
                 f"the others came after it finished; {secs:.0f} s"},
        {"name": "separate: previous outputs lost or damaged", "value": lost, "unit": "files", "target": "0",
         "ok": lost == 0},
        {"name": "separate: files outside the output folder changed", "value": outside, "unit": "files",
         "target": "0", "ok": outside == 0},
        {"name": "separate: temporaries left after SIGTERM/SIGINT", "value": left_after_clean_exit, "unit": "files",
         "target": "0", "ok": left_after_clean_exit == 0},
        {"name": "separate: leftovers after the run that follows a kill -9", "value": left_after_next,
         "unit": "files", "target": "0", "ok": left_after_next == 0},
        {"name": "separate: tracebacks printed", "value": tracebacks, "unit": "", "target": "0",
         "ok": tracebacks == 0},
    ]


def bench_check(tmp: Path) -> list[dict]:
    import numpy as np
    from pedalboard.io import AudioFile

    from idm_host.audio import check_complete

    rows = []
    x = (0.3 * np.random.default_rng(0).standard_normal((2, 44100 * 180))).astype(np.float32)
    for fmt in ("wav", "flac", "mp3", "ogg"):
        p = tmp / f"three-minutes.{fmt}"
        with AudioFile(str(p), "w", 44100, 2) as f:
            f.write(x)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            check_complete(p)
            times.append(time.perf_counter() - t)
        rows.append({"name": f"truncation check, 3-min stereo {fmt.upper()}", "value": round(min(times) * 1000, 2),
                     "unit": "ms", "note": f"{p.stat().st_size / 1e6:.1f} MB; best of 3"})
    return rows


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        return bench_saves(tmp) + bench_separate(tmp) + bench_check(tmp)


if __name__ == "__main__":
    for r in run():
        print(r)
