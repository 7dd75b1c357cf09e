"""The batch runner's cluster executor: the work units of a batch on the workers of a Dask cluster.

``idm-host separate|transcribe ... --scheduler ADDRESS`` hands :func:`idm_host.batch.run_batch`
a :class:`DaskExecutor` instead of the local pool; everything a batch does (planning, the resume
rule, records, per-file status, the summary) stays in :mod:`idm_host.batch`, and each unit runs
in the same :class:`idm_host.batch.Worker` on whichever Dask worker takes it. Dask (PyPI
``distributed``) is the optional extra ``cluster``; without it ``--scheduler`` says how to
install it.

The model, by hash
    The client resolves ``--model`` to a weights file on its own machine and takes its sha256.
    A worker plugin (:class:`ModelPlugin`, one per batch, registered on every worker, including
    those that join later) carries that digest and the weights' bytes. On each worker it looks
    for weights with that digest among the worker's own models (the shipped default, its model
    cache); if none, it checks the shipped bytes against the digest and installs them in the
    worker's cache as ``cluster-<digest>.pt``. It never loads a path it was told. It then loads
    the model once and keeps it for every unit that worker runs. The one-shots a worker lacks
    for the model's kits are sent from the client's cache by their key (which hashes the
    synthesiser's weights), checked against their checksums, and cached on the worker.

The start check
    Before any unit is submitted: the scheduler answers within :data:`CONNECT_TIMEOUT_S`, a worker
    joins within :data:`JOIN_TIMEOUT_S`, some worker offers ``--resources``, every worker runs
    the client's idm-host version and shipped networks, loaded the model, can read the first
    input and can write the output folder (the paths must be on a folder every worker sees).
    Each failure is one line naming the worker.

Exactly once
    Workers write each unit's outputs into temporaries beside their targets, record the unit,
    then rename them into place (see :mod:`idm_host.batch`); the client records each unit's
    status as its result comes back. A worker that dies mid-unit (kill -9, out of memory) leaves
    its temporaries, which the next writer of that target removes; Dask's scheduler gives the
    unit to another worker, at most ``distributed.scheduler.allowed-failures`` times (3 unless
    the scheduler is configured otherwise), then the client reports it failed. A unit whose
    worker died after its renames is found done by the retry (its record, of this batch) and
    is not written again. At most as many units as the workers have threads are submitted at a
    time, so a lost worker holds only the units it was running.

Ctrl-C on the client
    Dask cannot stop a task that is running, so the batch's plugin carries a stop flag: the
    client sets it on every worker (``Client.run``), and each unit checks it at every progress
    step of its file (raising :class:`~idm_host.errors.Cancelled`, after which its writer removes
    its temporaries; the synthesis of a kit not yet cached reports after each of its blocks) and
    before it starts. The client waits up to :data:`STOP_WAIT_S` for the units in flight to answer
    (stopped, or done if they got past their last step), records those, cancels whatever is left
    and exits; units never submitted are simply not run (reported stopped, as are those that did
    not answer). A unit that was still busy stops at its next step; nothing half-written becomes
    visible either way.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import __version__
from .batch import STOPPED, BatchJob, Executor, FileStatus, Worker, WorkUnit, completed
from .errors import Cancelled, IdmError

try:  # the optional extra `cluster`
    from distributed import WorkerPlugin as _PluginBase
except ImportError:  # pragma: no cover - exercised by the message test with distributed hidden
    _PluginBase = object  # type: ignore[assignment,misc]

#: Seconds to wait for the scheduler to answer.
CONNECT_TIMEOUT_S = 3.0
#: Seconds to wait for a first worker to join a scheduler that has none.
JOIN_TIMEOUT_S = 30.0
#: Seconds the client waits, after Ctrl-C, for the units in flight to stop (see the module docstring).
STOP_WAIT_S = 5.0
INSTALL_HINT = "pip install 'idm-host[cluster]' (or: pip install distributed)"


def require_distributed() -> None:
    """Raise a clear error (with the install line) when Dask's ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise IdmError(f"--scheduler needs Dask's `distributed`, which is not installed; install it with: "
                       f"{INSTALL_HINT}") from None


def parse_resources(text: str | None) -> dict[str, float]:
    """``"GPU=1,MEM=2e9"`` -> ``{"GPU": 1.0, "MEM": 2e9}`` (what each file asks of a worker)."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = float("nan")
        if not sep or not name.strip() or not amount > 0:
            raise IdmError(f"--resources {text!r}: give NAME=AMOUNT pairs separated by commas, e.g. GPU=1")
        out[name.strip()] = amount
    return out


# ----------------------------------------------------------------------------- model by hash
def _shipped_digests() -> dict[str, str | None]:
    """sha256 of the networks this installation ships (the default model, the transcriber and its
    sidecar): the default model's outputs depend on all three."""
    from .audio import file_sha256
    from .models import DEFAULT_DIR

    out: dict[str, str | None] = {}
    for name in ("default.pt", "transcriber.pt", "transcriber.json"):
        p = DEFAULT_DIR / name
        out[name] = file_sha256(p) if p.is_file() else None
    return out


def find_model(digest: str) -> str | None:
    """The path of a weights file of this machine (shipped or installed) whose sha256 is ``digest``
    (checked on the file, not just read from its sidecar), or ``None``."""
    from .models import list_models, verify_sha256

    for info in list_models():
        if info.path is None or info.sha256 != digest:
            continue
        try:
            if verify_sha256(Path(info.path)) == digest:
                return str(info.path)
        except (IdmError, OSError):
            continue
    return None


def _default_model(digest: str) -> str:
    """``"default"`` when this machine's default model is the client's (by hash): the name matters,
    since the default model comes with the shipped transcription network."""
    from .models import model_path, verify_sha256

    try:
        mine = verify_sha256(model_path("default"))
    except (IdmError, OSError) as exc:
        raise IdmError(f"this worker has no usable default model ({exc})") from None
    if mine != digest:
        raise IdmError(f"this worker's default model (sha256 {mine[:12]}...) is not the client's "
                       f"({digest[:12]}...); install the same idm-host on the client and every worker")
    return "default"


def install_shipped(digest: str, data: bytes) -> str:
    """Check ``data`` against ``digest`` and install it into this machine's model cache (or a
    private temp folder when the cache cannot be written); returns the path."""
    import hashlib

    from .fsutil import atomic_write_bytes, atomic_write_text
    from .models import cache_dir

    if hashlib.sha256(data).hexdigest() != digest:
        raise IdmError(f"the weights sent by the client do not have sha256 {digest[:12]}...; not loaded")
    name = f"cluster-{digest[:16]}"
    errors = []
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"idm-host-cluster-{os.getuid()}"):
        path = folder / f"{name}.pt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data, overwrite=True)
            atomic_write_text(path.with_suffix(".json"), json.dumps(
                {"name": name, "sha256": digest, "description": "sent by an idm-host cluster client"}, indent=1),
                overwrite=True)
            return str(path)
        except (IdmError, OSError) as exc:
            errors.append(f"{folder}: {exc}")
    raise IdmError("cannot store the model sent by the client: " + "; ".join(errors))


class ModelPlugin(_PluginBase):
    """The model of one batch on each Dask worker: found or installed by hash, loaded once.

    Registered by :class:`DaskExecutor` under ``name``; Dask sets it up on every worker, those
    that join later included, and tears it down when the batch ends. The state after ``setup``
    (``model``, ``load_s``, ``error``) is the worker's own, and so is ``stopping``, set when the
    client was interrupted (:func:`_stop_batch`).
    """

    def __init__(self, job: BatchJob, digest: str, weights: bytes, name: str):
        self.job, self.digest, self.name = job, digest, name
        self._weights: bytes | None = weights
        self.worker: Worker | None = None
        self.model: str | None = None
        self.source = ""
        self.load_s: float | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_lock", None)
        d.pop("stopping", None)
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def setup(self, worker=None) -> None:
        self.get()

    def teardown(self, worker=None) -> None:
        self.worker = None

    def get(self) -> Worker | None:
        """This worker's :class:`~idm_host.batch.Worker` with the model loaded (``None`` with
        ``error`` set when it cannot be)."""
        with self._lock:
            if self.worker is None and self.error is None:
                t0 = time.monotonic()
                try:
                    self.model = _default_model(self.digest) if self.job.model == "default" else find_model(self.digest)
                    self.source = "found"
                    if self.model is None:
                        assert self._weights is not None
                        self.model, self.source = install_shipped(self.digest, self._weights), "sent"
                    w = Worker(self.job, model=self.model)
                    w.separator.model_name = _display_name(self.job.model)  # as the client's run names it
                    self.worker = w
                except IdmError as exc:
                    self.error = str(exc)
                except Exception as exc:  # noqa: BLE001 - reported by the start check and every unit
                    self.error = f"unexpected {type(exc).__name__}: {exc}"
                self._weights = None  # kept on the scheduler for workers that join later
                self.load_s = round(time.monotonic() - t0, 3)
            return self.worker


def _display_name(model: str) -> str:
    return model if not Path(model).suffix else Path(model).stem


# ----------------------------------------------------------------- functions run on workers
def _plugin(name: str, dask_worker=None) -> ModelPlugin:
    """The batch's plugin on this worker (``dask_worker``: as ``Client.run`` passes it; else the
    worker running the current task)."""
    if dask_worker is None:
        from distributed import get_worker

        dask_worker = get_worker()
    plugin = dask_worker.plugins.get(name)
    if plugin is None:
        raise IdmError("this worker has not set up the batch's model plugin")
    return plugin  # type: ignore[return-value]


def _run_unit(plugin_name: str, unit: WorkUnit) -> FileStatus:
    """One unit on a worker (the task Dask runs); it stops at its next progress step once the
    client was interrupted (``plugin.stopping``)."""
    plugin = _plugin(plugin_name)
    if plugin.stopping.is_set():
        return FileStatus(unit.input, unit.name, STOPPED, "not started: the batch was interrupted",
                          worker=os.getpid(), index=unit.index)
    worker = plugin.get()
    if worker is None:
        return FileStatus(unit.input, unit.name, "failed", f"{unit.input}: {plugin.error}", worker=os.getpid(),
                          index=unit.index)
    stopped = []

    def check(fraction: float, message: str) -> None:
        if plugin.stopping.is_set():
            stopped.append(message)
            raise Cancelled("the batch was interrupted")

    status = worker.run(unit, check)
    status.worker = os.getpid()
    if stopped and status.status == "failed":
        rec = completed(worker.job, unit, this_batch=True)  # stopped after its outputs were in place
        if rec is not None:
            status.status, status.error, status.summary = "done", None, rec.get("summary")
        else:
            status.status, status.error = STOPPED, f"stopped at {stopped[0]!r}: the batch was interrupted"
    return status


def _stop_batch(plugin_name: str, dask_worker=None) -> bool:
    """Set the batch's stop flag on this worker (run by the interrupted client); ``False`` if the
    worker does not have the batch's plugin."""
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    if plugin is None:
        return False
    plugin.stopping.set()
    return True


def _check_worker(plugin_name: str, first_input: str, out_dir: str | None, client_versions: dict,
                  dask_worker=None) -> dict:
    """The start check on one worker: versions, the model, reading the first input, writing the output folder."""
    from .fsutil import os_error_text

    host = socket.gethostname()
    mine = {"idm-host": __version__, **_shipped_digests()}
    for k, v in client_versions.items():
        if mine.get(k) != v:
            what = f"idm-host {mine['idm-host']}" if k == "idm-host" else f"a different shipped {k}"
            return {"error": f"has {what} (the client has idm-host {client_versions['idm-host']}); "
                             "install the same idm-host on the client and every worker", "host": host}
    plugin = _plugin(plugin_name, dask_worker)
    worker = plugin.get()
    if worker is None:
        return {"error": f"cannot load the model: {plugin.error}", "host": host}
    try:
        with open(first_input, "rb") as f:
            f.read(1)
    except OSError as exc:
        return {"error": f"cannot read {first_input} ({os_error_text(exc)}); inputs and outputs must be on a "
                         "folder every worker sees at the same path (docs/CLUSTER.md)", "host": host}
    if out_dir is not None:
        folder = Path(out_dir)
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=".idm-cluster-check-", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            return {"error": f"cannot write in {folder} ({os_error_text(exc)}); the output folder must be on a "
                             "folder every worker sees at the same path and may write (docs/CLUSTER.md)",
                    "host": host}
    return {"error": None, "host": host, "pid": os.getpid(), "load_s": plugin.load_s, "model": plugin.source,
            "missing_one_shots": _missing_one_shots(worker)}


def _missing_one_shots(worker: Worker) -> list[str]:
    from .kit_cache import kit_embeddings

    sep = worker.separator
    shape = (sep.config.n_classes, sep.config.one_shot_len)
    return [key for key in (sep._kit_key(sep.synth_embedding(e)) for e in kit_embeddings(sep.config.n_kits))
            if sep._store.load(key, shape) is None]


def _store_one_shots(plugin_name: str, entries: Mapping[str, bytes], dask_worker=None) -> int:
    """Cache one-shots sent by the client, each checked (key, shape, checksum) before it is kept."""
    from .fsutil import atomic_write_bytes
    from .kit_cache import SUFFIX, read_entry

    worker = _plugin(plugin_name, dask_worker).get()
    if worker is None:
        return 0
    sep = worker.separator
    shape = (sep.config.n_classes, sep.config.one_shot_len)
    kept = 0
    with tempfile.TemporaryDirectory(prefix="idm-one-shots-") as tmp:
        for key, data in entries.items():
            path = Path(tmp) / f"{key}{SUFFIX}"
            atomic_write_bytes(path, data, overwrite=True)
            shots = read_entry(path, key, shape)
            if shots is not None and sep._store.save(key, shots) is not None:
                kept += 1
    return kept


# ------------------------------------------------------------------------------- the executor
class DaskExecutor(Executor):
    """Units on the workers of the Dask cluster whose scheduler is at ``address`` (``--scheduler``).

    Args:
        resources: what each unit asks of a worker (``--resources GPU=1``); only workers started
            with those resources take units, each as many at a time as it has.
        on_event: called with ``("submit", unit)`` as units are handed to the cluster (the
            progress bar counts those in flight).

    After :meth:`run`, ``workers`` holds what the start check found on each worker (host, model
    found or sent, model-load seconds). After an interrupt, ``wound_down`` and ``still_running``
    say what became of the units in flight (see :class:`~idm_host.batch.Executor`).
    """

    def __init__(self, address: str, *, resources: Mapping[str, float] | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, join_timeout: float = JOIN_TIMEOUT_S,
                 on_event: Callable[[str, WorkUnit], None] | None = None):
        require_distributed()
        self.address = address
        self.resources = dict(resources or {})
        self.connect_timeout = connect_timeout
        self.join_timeout = join_timeout
        self.on_event = on_event
        self.in_flight = 0
        self.workers: dict[str, dict] = {}

    # -- connecting and checking
    def _connect(self):
        from distributed import Client

        try:
            return Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise IdmError(f"--scheduler {self.address}: no Dask scheduler answered within "
                           f"{self.connect_timeout:g} s ({exc}); start one with `dask scheduler` "
                           "or check the address and port") from None
        except (ValueError, TypeError) as exc:
            raise IdmError(f"--scheduler {self.address}: not a scheduler address ({exc}); "
                           "give e.g. tcp://HOST:8786") from None

    def _eligible(self, client) -> dict[str, float]:
        """The workers that may take units -> how many at a time."""
        info = client.scheduler_info(n_workers=-1).get("workers", {})
        out = {}
        for addr, w in info.items():
            if self.resources:
                have = w.get("resources") or {}
                if all(have.get(k, 0) >= v for k, v in self.resources.items()):
                    out[addr] = min(have[k] // v for k, v in self.resources.items())
            else:
                out[addr] = float(w.get("nthreads", 1))
        return out

    def _start(self, client, job: BatchJob, units: Sequence[WorkUnit]) -> str:
        from .kit_cache import SUFFIX, OneShotStore
        from .models import model_path, verify_sha256

        path = model_path(job.model)
        digest = verify_sha256(path)  # the file's own sha256, checked against its sidecar's
        try:
            client.wait_for_workers(1, timeout=self.join_timeout)
        except (TimeoutError, OSError):
            raise IdmError(f"--scheduler {self.address}: no worker joined within {self.join_timeout:g} s; "
                           "start workers with `dask worker " + self.address + "`") from None
        if not self._eligible(client):
            want = ",".join(f"{k}={v:g}" for k, v in self.resources.items())
            raise IdmError(f"--resources {want}: no worker of {self.address} offers it; start workers with "
                           f"`dask worker {self.address} --resources {want}`")
        name = f"idm-host-{job.kind}-{uuid.uuid4().hex[:12]}"
        client.register_plugin(ModelPlugin(job, digest, path.read_bytes(), name), name=name)
        versions = {"idm-host": __version__, **_shipped_digests()}
        checks = client.run(_check_worker, name, units[0].input, job.out_dir, versions, on_error="return")
        missing: dict[str, list[str]] = {}
        for addr, r in sorted(checks.items()):
            if isinstance(r, BaseException):
                raise IdmError(f"worker {addr}: the start check failed ({type(r).__name__}: {r})")
            if r["error"]:
                raise IdmError(f"worker {addr} on {r['host']}: {r['error']}")
            self.workers[addr] = {k: r[k] for k in ("host", "pid", "load_s", "model")}
            if r["missing_one_shots"]:
                missing[addr] = r["missing_one_shots"]
        store = OneShotStore()
        for addr, keys in missing.items():
            entries = {}
            for key in keys:
                for folder in store.folders():
                    p = folder / f"{key}{SUFFIX}"
                    if p.is_file():
                        entries[key] = p.read_bytes()
                        break
            if entries:
                client.run(_store_one_shots, name, entries, workers=[addr])
        return name

    # -- running
    def run(self, job: BatchJob, units: Sequence[WorkUnit]) -> Iterator[FileStatus]:
        from distributed import as_completed

        self.wound_down, self.still_running = [], 0
        if not units:
            return
        client = self._connect()
        plugin = None
        futures: dict[Any, WorkUnit] = {}
        try:
            plugin = self._start(client, job, units)
            queue = deque(units)
            done = as_completed(loop=client.loop)
            capacity, checked = 1, 0.0

            def submit() -> None:
                while queue and len(futures) < capacity:
                    u = queue.popleft()
                    fut = client.submit(_run_unit, plugin, u, key=f"{plugin}-{u.index}", pure=False,
                                        resources=self.resources or None)
                    futures[fut] = u
                    done.add(fut)
                    if self.on_event is not None:
                        self.on_event("submit", u)
                self.in_flight = len(futures)

            while queue or futures:
                if time.monotonic() - checked > 2.0:  # workers come and go
                    capacity = max(1, int(sum(self._eligible(client).values())))
                    checked = time.monotonic()
                submit()
                fut = next(done)
                u = futures.pop(fut)
                self.in_flight = len(futures)
                yield self._status(fut, u)
                fut.release()
        except BaseException:  # Ctrl-C or SIGTERM here, or run_batch closing us after one
            if futures and plugin is not None:
                self.wound_down = self._wind_down(client, plugin, futures)
            raise
        finally:
            if futures:
                client.cancel(list(futures))
            if plugin is not None:
                try:
                    client.unregister_worker_plugin(plugin)
                except Exception:  # noqa: BLE001 - the cluster may be gone; nothing of ours to undo
                    pass
            client.close()
            self.in_flight = 0

    def _wind_down(self, client, plugin: str, futures: dict) -> list[FileStatus]:
        """Stop the units in flight (the stop flag on every worker), wait up to :data:`STOP_WAIT_S`
        for them to answer and return their statuses; those that did not answer stay in ``futures``
        and are returned as stopped (still stopping on a worker: a re-run finds whether they got done)."""
        try:  # not waited for: a worker that does not answer must not hold the client's exit
            client.run(_stop_batch, plugin, on_error="ignore", wait=False)
        except Exception:  # noqa: BLE001 - the cluster may be going; what answers is reported below
            pass
        deadline = time.monotonic() + STOP_WAIT_S
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.05)
        out = []
        for fut, u in list(futures.items()):
            if fut.done():
                del futures[fut]
                out.append(self._status(fut, u))
            else:
                out.append(FileStatus(u.input, u.name, STOPPED, "still running on a worker when the client left: it "
                                      "stops at its next step, or finishes if past its last one (run the same command "
                                      "again to do it or find it done)", index=u.index))
        self.in_flight = self.still_running = len(futures)
        return out

    @staticmethod
    def _status(fut, u: WorkUnit) -> FileStatus:
        from distributed import KilledWorker

        if fut.status == "finished":
            return fut.result()
        try:
            exc = fut.exception()
        except BaseException as e:  # cancelled: the scheduler lost it
            exc = e
        if isinstance(exc, KilledWorker):
            return FileStatus(u.input, u.name, "failed", f"{u.input}: the workers that took it died while "
                              "processing it (as many times as the scheduler's allowed-failures); "
                              "check the workers' memory and logs", index=u.index)
        return FileStatus(u.input, u.name, "failed", f"{u.input}: {type(exc).__name__}: {exc}", index=u.index)


__all__ = ["CONNECT_TIMEOUT_S", "DaskExecutor", "ModelPlugin", "find_model", "parse_resources", "require_distributed"]
