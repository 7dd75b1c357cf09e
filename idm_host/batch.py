"""Batches: one runner for ``separate`` and ``transcribe`` over files and folders, whatever runs the work.

``idm-host separate`` and ``idm-host transcribe`` hand every run to :func:`run_batch`, a single
file as a batch of one, so there is one code path for what a batch does; only the
:class:`Executor` that carries out the work units differs:

* :class:`InProcessExecutor` runs them one after another in this process (``--jobs 1``);
* :class:`LocalPoolExecutor` runs them in N worker processes on this machine (``--jobs N``);
* :class:`idm_host.cluster.DaskExecutor` runs them on the workers of a Dask cluster
  (``--scheduler ADDRESS``).

Each worker process builds one :class:`Worker`, which loads the model once and then processes
any number of units.

The work unit (:class:`WorkUnit`)
    One input file and the outputs it makes, as absolute paths: the track folder for
    ``separate`` (``OUT/<name>/``), the MIDI and/or onsets file for ``transcribe``. ``name`` is the
    input's path relative to the folder it was found in, without its suffix (``live/take2`` for
    ``IN/live/take2.flac`` with ``--recursive``); a file given directly is named by its stem. Units
    are plain data (picklable) so they can travel to any worker. Everything about a unit is
    written by the worker that runs it, in this order: its outputs, complete, in temporaries beside
    their targets (a temporary folder for ``separate``); then its record, listing each output's
    size and modification time as they are in the temporaries; then the renames into place. The
    renames are the commit: a worker that dies before them leaves a record whose outputs are not
    there (not done; the temporaries are removed by the next writer), one that dies after them
    leaves a unit that is done.

The status record (:class:`FileStatus`)
    ``input``, ``name``, ``status`` (``"done"``, ``"skipped"``, ``"failed"``, or ``"stopped"``
    after an interrupt), ``error`` (one line, for failed and stopped), ``seconds``, ``worker``
    (process id) and ``summary`` (the command's own per-file summary: outputs, hit counts,
    duration). A batch's ``--json`` summary is ``{"kind", "out_dir", "done", "skipped", "failed",
    "stopped", "files": [FileStatus...]}``. :data:`STOPPED` is every unit an interrupt kept from
    finishing: stopped mid-way, never started, or still stopping on a cluster worker when the
    client left (its error says which); none of them is done, and a re-run does them.

The resume rule
    With an output folder, each unit that completes leaves ``OUT/.idm-batch/<name>.json``: the
    job's fingerprint (the command, the model and every option that changes the outputs), the
    input's size and modification time, each output's size and modification time, and the id of
    the batch that made it. A unit is done, and skipped by the next run, when its record exists,
    the fingerprint matches, the input's size and time are unchanged, and every output it lists is
    there at its recorded size and time (records written before clusters list sizes only).
    ``--overwrite`` redoes everything, except a unit done earlier in the same batch (a retry after
    its worker died once its outputs were in place). A unit that is not done is run; if outputs it
    would write exist without a record that says they are done (a file nobody recorded, or
    another job's), the unit fails with "already exists" instead of replacing them, unless
    ``--overwrite`` or the unit's own record of this job lists them as they are (outputs of an
    attempt that died between its renames).
    The same records are written and read whatever the executor, so a batch begun with
    ``--jobs`` resumes on a cluster and the other way round.

Interrupts (Ctrl-C, SIGTERM) stop the batch: the executor stops its workers (see each one), and
:func:`run_batch` reports every unit that is not done as stopped, then re-raises the interrupt
with a note for the CLI's one line, e.g. ``7 of 12 files done; run the same command again to
resume (it skips the done files)`` (the records make that true), and with the batch's result so
far (:func:`interrupted_result`: every unit once, for ``--json``).

Failures never stop a batch: a unit that raises is reported failed and the others go on. While a
batch writes an output folder it holds that folder's lock (:class:`~idm_host.fsutil.FolderLock`):
a second run into the same folder fails at once. A worker process that dies (killed, out of
memory) fails the units it held after one retry in a fresh process (on a Dask cluster the
scheduler retries them on other workers, as many times as its ``allowed-failures`` says).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import json
import logging
import multiprocessing as mp
import os
import signal
import stat
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .audio import AUDIO_SUFFIXES  # the files a folder contributes to a batch (case-insensitive)
from .errors import IdmError, Terminated
from .fsutil import (FolderLock, atomic_write_text, fsync_dir, make_dirs, make_temp_dir, os_error_text, remove_empty,
                     remove_leftovers, remove_path, sweep_folder)

log = logging.getLogger(__name__)

#: Folder (inside the output folder) that holds the per-unit records.
RECORD_DIR = ".idm-batch"
RECORD_FORMAT = "idm-host-batch-1"
#: Times a unit is tried again after its worker process died.
WORKER_RETRIES = 1
#: The status of a unit an interrupt kept from finishing (stopped mid-way, or never started).
STOPPED = "stopped"


# ------------------------------------------------------------------------------------ the data
@dataclass(frozen=True)
class BatchJob:
    """What every unit of a batch does.

    Attributes:
        kind: ``"separate"`` or ``"transcribe"``.
        model, device: as :class:`~idm_host.engine.Separator` takes them.
        options: JSON-able settings that change the outputs (format, classes, drum map, ``transcriber``:
            ``default`` or ``none``, absent for ``auto``, ...).
        out_dir: the output folder (records, lock), or ``None`` (single-file transcribe).
        overwrite: replace existing outputs and redo units that are done.
        batch_id: set by :func:`run_batch` for each run (not part of the fingerprint).
    """

    kind: str
    model: str
    device: str
    options: Mapping[str, Any]
    out_dir: str | None = None
    overwrite: bool = False
    batch_id: str = ""

    def fingerprint(self) -> str:
        """The job's options and what else decides its outputs (:func:`outputs_identity`): a resumed
        batch redoes the files of an older idm-host, other shipped weights or calibration, or a
        changed model file."""
        text = json.dumps({"kind": self.kind, "model": self.model, "options": dict(self.options),
                           "engine": outputs_identity(self.model)}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def outputs_identity(model: str) -> str:
    """This idm-host's version and the contents of the shipped models' sidecars (weights' sha256s,
    thresholds, level maps, ship gate: what ``auto`` does) and, where ``model`` names a file, of
    that file: by content, so the same files on another machine or checkout keep their records."""
    from . import __version__
    from .models import DEFAULT_DIR

    files = (DEFAULT_DIR / "default.json", DEFAULT_DIR / "transcriber.json", Path(model))
    return _identity(__version__, tuple(_stamp(f) for f in files))


def _stamp(path: Path) -> tuple[str, int, int]:
    """``(path, size, mtime_ns)`` of a regular file (sizes -1 for anything else): the cache key of
    :func:`_identity`, so a file is read again only after it changes."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return (str(path), -1, -1)
    return (str(path), st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else (str(path), -1, -1)


@functools.lru_cache(maxsize=16)
def _identity(version: str, stamps: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256(version.encode())
    for path, size, _ in stamps:
        try:
            h.update(hashlib.sha256(Path(path).read_bytes()).digest() if size >= 0 else b"-")
        except OSError:
            h.update(b"-")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class WorkUnit:
    """One input file and the absolute paths of what it writes (see the module docstring)."""

    index: int
    input: str
    name: str
    outputs: tuple[str, ...]


@dataclass
class FileStatus:
    """What became of one unit (see the module docstring)."""

    input: str
    name: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    worker: int | None = None
    summary: dict | None = None
    index: int = field(default=-1, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("index")
        return d


@dataclass
class BatchResult:
    kind: str
    out_dir: str | None
    files: list[FileStatus]

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "out_dir": self.out_dir, "done": self.count("done"),
                "skipped": self.count("skipped"), "failed": self.failed, "stopped": self.count(STOPPED),
                "files": [f.to_dict() for f in self.files]}


# ---------------------------------------------------------------------------------- planning
def collect_inputs(paths: Sequence[str], *, recursive: bool = False,
                   exclude: Path | None = None) -> tuple[list[tuple[Path, str]], list[FileStatus]]:
    """The audio files named by ``paths`` (files, or folders of audio files) as ``(path, name)``.

    Folders contribute their audio files (:data:`AUDIO_SUFFIXES`; hidden files and folders, and
    ``exclude``, skipped), sorted by name, descending into subfolders with ``recursive`` (links to
    folders are not followed). A path that does not exist is returned as a failed status.
    """
    found: list[tuple[Path, str]] = []
    missing: list[FileStatus] = []
    ex = exclude.resolve() if exclude is not None else None
    for arg in paths:
        p = Path(arg)
        if p.is_file():
            found.append((p.absolute(), p.stem))
        elif p.is_dir():
            files = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and (ex is None or (Path(root) / d).resolve() != ex)) if recursive else []
                files += [Path(root) / n for n in names
                          if not n.startswith(".") and Path(n).suffix.lower() in AUDIO_SUFFIXES]
            for f in sorted(files):
                found.append((f.absolute(), f.relative_to(p).with_suffix("").as_posix()))
        else:
            missing.append(FileStatus(str(p), p.stem, "failed", f"{p}: file not found; check the path"))
    return found, missing


def plan_units(found: Iterable[tuple[Path, str]], outputs_for: Callable[[str], tuple[str, ...]]
               ) -> tuple[list[WorkUnit], list[FileStatus]]:
    """Work units for the inputs; an input whose outputs another input already claims fails."""
    units: list[WorkUnit] = []
    failed: list[FileStatus] = []
    claimed: dict[str, str] = {}
    for path, name in found:
        outs = outputs_for(name)
        clash = next((claimed[o] for o in outs if o in claimed), None)
        if clash is not None:
            failed.append(FileStatus(str(path), name, "failed",
                                     f"{path}: its outputs would collide with those of {clash}; "
                                     "rename one of them or run them into different folders"))
            continue
        for o in outs:
            claimed[o] = str(path)
        units.append(WorkUnit(len(units), str(path), name, outs))
    return units, failed


# ----------------------------------------------------------------------------------- records
def record_path(out_dir: str | os.PathLike, name: str) -> Path:
    return Path(out_dir) / RECORD_DIR / f"{name}.json"


def _stat(path: str | os.PathLike) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def write_record(job: BatchJob, unit: WorkUnit, summary: dict | None, outputs: Mapping[str, list[int]]) -> None:
    """Record ``unit`` as done, with each output's final path -> ``[size, mtime_ns]`` (measured on the
    finished temporaries, just before they are renamed into place)."""
    if job.out_dir is None:
        return
    st = os.stat(unit.input)
    rec = {"format": RECORD_FORMAT, "job": job.fingerprint(), "batch": job.batch_id, "input": unit.input,
           "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns, "outputs": dict(outputs), "summary": summary,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(record_path(job.out_dir, unit.name), json.dumps(rec, indent=1, default=str), overwrite=True,
                      clean=False)  # the records folder is swept once per batch (run_batch)


def _own_record(job: BatchJob, unit: WorkUnit) -> dict | None:
    """``unit``'s record if it is of this job and this input (as the input is now), else ``None``."""
    if job.out_dir is None:
        return None
    try:
        rec = json.loads(record_path(job.out_dir, unit.name).read_text(encoding="utf-8"))
        st = os.stat(unit.input)
        if (not isinstance(rec, dict) or rec.get("format") != RECORD_FORMAT or rec.get("job") != job.fingerprint()
                or rec.get("input_size") != st.st_size or rec.get("input_mtime_ns") != st.st_mtime_ns
                or not isinstance(rec.get("outputs"), dict)):
            return None
        return rec
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        return None


def _matches(path: str, want: Any) -> bool:
    """An output is as recorded: ``[size, mtime_ns]``, or a bare size (older records)."""
    try:
        have = _stat(path)
    except (OSError, TypeError, ValueError):
        return False
    if isinstance(want, list):
        return have == want
    return have[0] == want


def own_outputs(job: BatchJob, unit: WorkUnit) -> set[str]:
    """The outputs that ``unit``'s own record of this job lists exactly as they are now: written by an
    earlier attempt at this very unit, so a new attempt may replace them."""
    rec = _own_record(job, unit)
    if rec is None:
        return set()
    return {p for p, want in rec["outputs"].items() if _matches(p, want)}


def completed(job: BatchJob, unit: WorkUnit, *, this_batch: bool = False) -> dict | None:
    """The record of ``unit`` if the resume rule says it is done, else ``None``.

    Args:
        this_batch: only a unit done by this very batch (``job.batch_id``) counts, ``--overwrite``
            or not: a retry uses it to find that a worker that died had finished the unit.
    """
    if job.out_dir is None or (job.overwrite and not this_batch):
        return None
    rec = _own_record(job, unit)
    if rec is None or (this_batch and (not job.batch_id or rec.get("batch") != job.batch_id)):
        return None
    outputs = rec["outputs"]
    if not outputs or not all(_matches(p, want) for p, want in outputs.items()):
        return None
    return rec


# ------------------------------------------------------------------------------------ workers
class Worker:
    """Runs units of one job; loads the model on first use and keeps it (one per worker process)."""

    def __init__(self, job: BatchJob, model: str | None = None):
        """``model``: the weights to load instead of ``job.model`` (a cluster worker's own copy of
        the same weights, found by their sha256); ``job.model`` still names them in records."""
        self.job = job
        self.model = job.model if model is None else model
        self._separator = None

    @property
    def separator(self):
        if self._separator is None:
            from .engine import Separator

            # --transcriber auto|default|none, as Separator (models.transcriber_path) reads them
            self._separator = Separator(self.model, self.job.device,
                                        transcriber=str(self.job.options.get("transcriber", "auto")))
        return self._separator

    def commit(self, unit: WorkUnit, summary: dict, outputs: Mapping[str, list[int]]) -> None:
        """Record ``unit`` (its outputs finished in temporaries, about to be renamed into place)."""
        write_record(self.job, unit, summary, outputs)

    def run(self, unit: WorkUnit, progress=None) -> FileStatus:
        """Process one unit; every error becomes a failed status (interrupts propagate)."""
        t0 = time.monotonic()
        status = FileStatus(unit.input, unit.name, "failed", worker=os.getpid(), index=unit.index)
        try:
            rec = completed(self.job, unit, this_batch=True)
            if rec is not None:  # its worker died after committing it: done, and never written twice
                status.summary, status.status = rec.get("summary"), "done"
                return status
            status.summary = _RUNNERS[self.job.kind](self, unit, progress)
            status.status = "done"
        except IdmError as exc:
            status.error = str(exc)
        except OSError as exc:
            status.error = f"{exc.filename or unit.input}: {os_error_text(exc)}"
        except RecursionError:
            status.error = f"{unit.input}: an input is nested too deeply"
        except Exception as exc:  # a bug must not stop the batch; --debug shows it
            log.debug("unit %s failed", unit.input, exc_info=True)
            status.error = f"{unit.input}: unexpected {type(exc).__name__}: {exc}"
        status.seconds = round(time.monotonic() - t0, 3)
        return status


def _run_separate(worker: Worker, unit: WorkUnit, progress) -> dict:
    from .export import write_separation
    from .types import Transcription

    o = worker.job.options
    onsets = Transcription.from_dict(o["onsets"]) if o.get("onsets") else None
    return write_separation(
        worker.separator, unit.input, unit.outputs[0], transcription=onsets, merge=o.get("classes") == "5",
        format=o.get("format", "wav"), bit_depth=int(o.get("bit_depth", 24)), masking=o.get("masking", "auto"),
        alpha=None if o.get("alpha") is None else float(o["alpha"]), drum_map=o.get("drum_map", "gm"), overwrite=worker.job.overwrite,
        progress=progress, on_ready=lambda summary, outputs: worker.commit(unit, summary, outputs))


def _run_transcribe(worker: Worker, unit: WorkUnit, progress) -> dict:
    from .drum_maps import load_drum_map
    from .midi import write_midi

    o = worker.job.options
    midi, onsets = o.get("midi_out", True), o.get("onsets_out", True)
    paths = list(unit.outputs)
    midi_path = paths.pop(0) if midi else None
    onsets_path = paths.pop(0) if onsets else None
    targets = [p for p in (midi_path, onsets_path) if p]
    ours = own_outputs(worker.job, unit)  # left by an attempt at this unit that died between its renames
    for p in targets:
        if (Path(p).exists() or Path(p).is_symlink()) and not worker.job.overwrite and p not in ours:
            raise IdmError(f"{p}: already exists; pass --overwrite or choose another name")
    drum_map = load_drum_map(o.get("drum_map", "gm"))
    tr = worker.separator.transcribe(unit.input, progress=progress)
    tempo = o.get("tempo", "auto")
    song = None  # the estimated tempo and downbeat, as every MIDI writer uses them (tempo.song_tempo)
    if tempo == "auto":
        from .tempo import song_tempo

        song = song_tempo(tr)
        bpm = song.bpm
    else:
        bpm = float(tempo)
    curve = o.get("velocity_curve", "linear")
    try:
        curve = float(curve)
    except ValueError:
        pass
    summary = {"input": unit.input, "written": targets, "drum_map": drum_map.name, "tempo_bpm": round(bpm, 3),
               "hits": {c: len(h) for c, h in tr.hits.items()}, "duration_s": tr.duration_s}
    # Each output is written whole into a temporary folder beside its target (under the target's
    # lock, leftovers of dead writers removed), the unit recorded, then each renamed into place.
    with contextlib.ExitStack() as stack:
        work = {}
        for p in targets:
            target = Path(p)
            created = make_dirs(target.parent)
            stack.callback(remove_empty, created)  # folders left empty when the unit fails
            stack.enter_context(FolderLock(target))
            remove_leftovers(target, locked=True)
            folder = make_temp_dir(target)
            stack.callback(remove_path, folder)
            work[p] = folder / target.name
        if midi_path:
            write_midi(tr, work[midi_path], drum_map=drum_map, tempo=song, tempo_bpm=None if song else bpm,
                       ppq=int(o.get("ppq", 480)), layout=o.get("layout", "single"), velocity_curve=curve)
        if onsets_path:
            atomic_write_text(work[onsets_path], tr.to_json())
        worker.commit(unit, summary, {p: _stat(w) for p, w in work.items()})
        for p, w in work.items():
            os.replace(w, p)
        for folder in {Path(p).parent for p in targets}:
            fsync_dir(folder)
    return summary


_RUNNERS: dict[str, Callable[[Worker, WorkUnit, Any], dict]] = {"separate": _run_separate,
                                                                 "transcribe": _run_transcribe}


# ---------------------------------------------------------------------------------- executors
class Executor:
    """Carries out work units. :meth:`run` yields one :class:`FileStatus` per unit, in any order,
    as units finish; it never raises for a unit's failure (interrupts do propagate).
    ``in_flight`` is how many units it has handed to workers and not yet reported.

    When an interrupt stops :meth:`run` (raised in it, or its generator closed after one), an
    executor whose units run elsewhere puts in ``wound_down`` the statuses of its units in flight
    (done, failed or stopped as they ended while it stopped them, :data:`STOPPED` for those that had
    not answered when it gave up waiting), and in ``still_running`` how many had not answered.
    """

    in_flight = 0
    wound_down: Sequence[FileStatus] = ()
    still_running = 0

    def run(self, job: BatchJob, units: Sequence[WorkUnit]) -> Iterator[FileStatus]:
        raise NotImplementedError


class InProcessExecutor(Executor):
    """Units one after another in this process (``--jobs 1``); ``progress(unit)`` may give each a
    progress callback."""

    def __init__(self, progress: Callable[[WorkUnit], Any] | None = None):
        self.progress = progress

    def run(self, job: BatchJob, units: Sequence[WorkUnit]) -> Iterator[FileStatus]:
        worker = Worker(job)
        for u in units:
            self.in_flight = 1
            if self.progress is None:
                status = worker.run(u)
            else:
                with self.progress(u) as cb:
                    status = worker.run(u, cb)
            self.in_flight = 0
            yield status


_POOL_WORKER: Worker | None = None
_IN_UNIT = False  # a unit is being written: SIGTERM must unwind through its clean-up
_TERMINATING = False  # that unwinding has begun


def _pool_init(job: BatchJob, threads: int) -> None:
    """Runs once in each worker process: signals, threads, and the model, loaded once."""
    global _POOL_WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us with SIGTERM

    def on_term(signum, frame):
        global _TERMINATING
        if not _IN_UNIT:
            os._exit(128 + signal.SIGTERM)  # starting up or idle: nothing of ours to clean up
        if _TERMINATING:  # the pool terminates every worker again when the first one exits: a second
            return        # Terminated would cut short the clean-up the first one began (temporaries left)
        _TERMINATING = True
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, on_term)
    import torch

    torch.set_num_threads(max(1, threads))
    _POOL_WORKER = Worker(job)
    try:
        _POOL_WORKER.separator  # noqa: B018 - load the model now, once
    except IdmError:
        pass  # every unit will report it


def _pool_run(unit: WorkUnit) -> FileStatus:
    global _IN_UNIT
    assert _POOL_WORKER is not None
    try:  # Terminated is raised only while _IN_UNIT, so always inside this try, even from the finally
        try:
            _IN_UNIT = True
            return _POOL_WORKER.run(unit)
        finally:
            _IN_UNIT = False
    except Terminated:  # clean-up ran on the way out (finally blocks); do not take another unit
        os._exit(128 + signal.SIGTERM)


class LocalPoolExecutor(Executor):
    """Units in ``jobs`` worker processes on this machine (``--jobs N``), each loading the model once.

    Workers are started with ``spawn`` (no inherited locks or threads) and get ``cpu_count // jobs``
    torch threads each. At most ``jobs`` units are in flight, so a worker that dies costs only those:
    they are retried once in a fresh pool, then reported failed.
    """

    def __init__(self, jobs: int):
        if jobs < 1:
            raise IdmError(f"--jobs {jobs}: give 1 or more")
        self.jobs = jobs

    def run(self, job: BatchJob, units: Sequence[WorkUnit]) -> Iterator[FileStatus]:
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        queue = deque(units)
        tries: dict[int, int] = {}
        ctx = mp.get_context("spawn")
        while queue:
            pool = cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_pool_init, initargs=(job, threads))
            inflight: dict[cf.Future, WorkUnit] = {}
            broken = False
            try:
                while queue or inflight:
                    while queue and len(inflight) < self.jobs and not broken:
                        u = queue.popleft()
                        try:
                            inflight[pool.submit(_pool_run, u)] = u
                        except cf.process.BrokenProcessPool:
                            queue.appendleft(u)
                            broken = True
                    if not inflight:
                        break
                    self.in_flight = len(inflight)
                    done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        u = inflight.pop(fut)
                        self.in_flight = len(inflight)
                        try:
                            yield fut.result()
                        except cf.process.BrokenProcessPool:
                            broken = True
                            tries[u.index] = tries.get(u.index, 0) + 1
                            if tries[u.index] > WORKER_RETRIES:
                                yield FileStatus(u.input, u.name, "failed", f"{u.input}: the worker process died "
                                                 f"while processing it ({tries[u.index]} times)", index=u.index)
                            else:
                                queue.appendleft(u)
                        except BaseException as exc:
                            # an interrupt, or close() while suspended at the yield: stop, never yield again
                            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                                raise
                            yield FileStatus(u.input, u.name, "failed", f"{u.input}: {exc}", index=u.index)
                    if broken and not inflight:
                        break
            except BaseException:
                _stop_pool(pool)
                raise
            pool.shutdown(wait=True, cancel_futures=True)


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """SIGTERM every worker (each cleans up what it was writing) and wait for them."""
    procs = list(getattr(pool, "_processes", {}).values())  # concurrent.futures keeps no public list
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=30)
    pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------- runner
def run_batch(job: BatchJob, units: Sequence[WorkUnit], executor: Executor, *,
              failed: Sequence[FileStatus] = (), on_status: Callable[[FileStatus], None] | None = None) -> BatchResult:
    """Run ``units`` with ``executor``, skipping those the resume rule says are done.

    Args:
        failed: statuses already decided when planning (missing inputs, colliding names).
        on_status: called with each status as it is known (done, skipped or failed).

    Returns:
        every unit's status, in input order.

    Raises:
        BusyError: another run holds the output folder's lock.
    """
    results: list[FileStatus] = []
    job = replace(job, batch_id=uuid.uuid4().hex)

    def report(s: FileStatus) -> None:
        results.append(s)
        if on_status is not None:
            on_status(s)

    lock, created = None, []
    if job.out_dir is not None:
        out = Path(job.out_dir)
        if out.is_symlink() and not out.is_dir():
            raise IdmError(f"{out}: is a broken link; choose another --out")
        if out.exists() and not out.is_dir():
            raise IdmError(f"{out}: is a file, not a folder; choose another --out")
        created = make_dirs(out.parent)
        try:
            lock = FolderLock(out).acquire()
        except BaseException:
            remove_empty(created)
            raise
    try:
        for s in failed:
            report(s)
        _sweep_outputs(job)
        todo = []
        for u in units:
            rec = completed(job, u)
            if rec is not None:
                report(FileStatus(u.input, u.name, "skipped", "done in an earlier run", summary=rec.get("summary"),
                                  index=u.index))
            else:
                todo.append(u)
        if todo:
            runs = executor.run(job, todo)
            close = getattr(runs, "close", lambda: None)  # a generator: closing it stops its workers
            try:
                for s in runs:
                    report(s)
            except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (Terminated)
                close()  # an interrupt between two units: the executor stops its workers now
                if not executor.still_running:
                    # A stop that lands between creating a lock or temporary and guarding it (in a
                    # worker or here) leaves it behind: the writers are gone now, so sweep.
                    _sweep_outputs(job)
                for s in executor.wound_down:
                    report(s)
                seen = {s.input for s in results}
                for u in todo:
                    if u.input in seen:
                        continue
                    rec = completed(job, u, this_batch=True)  # done, but interrupted before its status came back
                    if rec is not None:
                        report(FileStatus(u.input, u.name, "done", summary=rec.get("summary"), index=u.index))
                    else:  # stopped where it ran (in this process, a --jobs worker), or never started
                        report(FileStatus(u.input, u.name, STOPPED, "the batch was interrupted before it finished "
                                          "(run the same command again to do it)", index=u.index))
                total = len(units) + len(failed)
                if job.out_dir is not None and total > 1:
                    # PEP 678's notes, set directly (no add_note on Python 3.10); the CLI prints them
                    exc.__notes__ = [*getattr(exc, "__notes__", ()),  # type: ignore[attr-defined]
                                     _interrupted_note(results, total, executor.still_running)]
                exc.batch_result = _sorted_result(job, units, results)  # type: ignore[attr-defined]
                raise
            finally:
                close()
            _sweep_outputs(job)  # what workers that died left
    finally:
        if lock is not None:
            lock.release()
        remove_empty(created)
    return _sorted_result(job, units, results)


def _sweep_outputs(job: BatchJob) -> None:
    """Remove the temporaries and stale locks that writers who are gone left in the output folder
    and its records (:func:`~idm_host.fsutil.sweep_folder`: targets someone holds are skipped)."""
    if job.out_dir is not None and Path(job.out_dir).is_dir():
        sweep_folder(Path(job.out_dir))
        sweep_folder(Path(job.out_dir) / RECORD_DIR)


def _sorted_result(job: BatchJob, units: Sequence[WorkUnit], results: list[FileStatus]) -> BatchResult:
    order = {u.input: u.index for u in units}
    return BatchResult(job.kind, job.out_dir, sorted(results, key=lambda s: order.get(s.input, -1)))


def interrupted_result(exc: BaseException) -> BatchResult | None:
    """The result so far of the batch ``exc`` (an interrupt) stopped: every unit once, those it kept
    from finishing as :data:`STOPPED`; ``None`` if ``exc`` did not come out of :func:`run_batch`."""
    result = getattr(exc, "batch_result", None)
    return result if isinstance(result, BatchResult) else None


def _interrupted_note(results: Sequence[FileStatus], total: int, still_running: int) -> str:
    """What the CLI says after an interrupted batch: ``7 of 12 files done, 1 failed; run the same ...``."""
    done = sum(1 for s in results if s.status in ("done", "skipped"))
    failed = sum(1 for s in results if s.status == "failed")
    text = f"{done} of {total} files done" + (f", {failed} failed" if failed else "")
    text += "; run the same command again to resume (it skips the done files)"
    if still_running:
        text += ("; 1 file in progress on the workers stops at its next step" if still_running == 1 else
                 f"; {still_running} files in progress on the workers stop at their next step")
        text += ", leaving nothing partial"
    return text


def make_executor(jobs: int, progress: Callable[[WorkUnit], Any] | None = None) -> Executor:
    """``--jobs N`` -> the executor: in-process for 1, a local process pool for more."""
    return InProcessExecutor(progress) if jobs == 1 else LocalPoolExecutor(jobs)


__all__ = ["AUDIO_SUFFIXES", "STOPPED", "BatchJob", "BatchResult", "Executor", "FileStatus", "InProcessExecutor",
           "LocalPoolExecutor", "WorkUnit", "Worker", "collect_inputs", "completed", "interrupted_result",
           "make_executor", "plan_units", "run_batch"]
