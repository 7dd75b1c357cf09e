"""The OSC bridge's job queue: one worker runs analyses and renders in order."""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import Cancelled, IdmError, OscError
from ..types import Analysis, Audio, Kit, Transcription
from .core import ServerCore
from .state import OscClient, _Job, _Result
from .transport import _UdpReply

log = logging.getLogger("idm_host.osc")


#: After a job whose audio is at least this big (bytes), freed heap is returned to the system.
RELEASE_AFTER_BYTES = 16 * 1024 * 1024


def _job_bytes(job: _Job) -> int:
    """About how much memory ``job``'s audio took (its samples, or its file's size)."""
    if isinstance(job.source, Audio):
        return int(job.source.samples.nbytes)
    try:
        return Path(job.source).stat().st_size * 4  # decoded float32 is several times the file
    except OSError:
        return 0


def _release_memory() -> None:
    """Return freed heap to the operating system (glibc keeps it in its arenas otherwise, so a long
    file's memory would look held after its job); a no-op elsewhere."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class JobQueue(ServerCore):
    """The job side of :class:`~idm_host.osc.OscServer` (a mixin: state lives on the server)."""

    # -------------------------------------------------------------------------------- jobs
    def _submit(self, job: _Job, announce_id: int | None = None) -> None:
        job.reply_id = job.id if announce_id is None else announce_id
        job.owner = job.owner or self._owner(job.reply)
        with self._lock:
            if job.id in self._jobs:
                raise OscError(f"id {job.reply_id}: a job with this id is already running; pick a new id")
            self._jobs[job.id] = job
            if self._queue.full():
                self._jobs.pop(job.id, None)
                raise OscError(f"id {job.reply_id}: the server is busy ({self._queue.maxsize} jobs queued); "
                               "try again when one is done")
            job.client = self._client(job.reply)
            if job.client is not None:
                job.client.jobs.append(job.reply_id)
                job.client.active[job.id] = job.reply_id
            # announced before the worker can see the job, so "queued" is always the first progress
            self._send(job.reply, "/idm/progress", job.reply_id, 0.0, "queued")
            self._queue.put_nowait(job)  # only this method puts jobs, under the lock: never full here

    def _worker(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                break
            outcome: Any = None
            try:
                outcome = (job.action or self._run)(job)
                with self._lock:
                    self.stats["jobs_done"] += 1
            except Cancelled as exc:
                outcome = exc
                self._error(job.reply, job.reply_id, "cancelled")
                with self._lock:
                    self.stats["jobs_failed"] += 1
            except Exception as exc:
                if not isinstance(exc, IdmError):
                    log.exception("analysis %d failed", job.id)
                    wrapped = OscError(f"analysis failed: {type(exc).__name__}: {exc}")
                    wrapped.__cause__ = exc
                    outcome = wrapped
                else:
                    outcome = exc
                self._error(job.reply, job.reply_id, f"{'render' if job.action else 'analysis'} failed: {exc}")
                with self._lock:
                    self.stats["jobs_failed"] += 1
            finally:
                with self._lock:
                    self._jobs.pop(job.id, None)
                    if job.client is not None:
                        job.client.active.pop(job.id, None)
            if job.action is None:
                self._publish(job, outcome)
            # drop this job's audio and analysis now rather than when the next job arrives (the
            # loop's variables would hold them until then), and after a big one hand the freed heap
            # back to the system
            big = _job_bytes(job) >= RELEASE_AFTER_BYTES
            del job, outcome
            if big:
                _release_memory()

    def _publish(self, job: _Job, outcome: "Analysis | IdmError") -> None:
        """Tell the result listeners how analysis ``job`` ended (on the worker thread)."""
        with self._lock:
            listeners = list(self._result_listeners)
            client = (job.client.snapshot() if job.client is not None
                      else OscClient(("?", 0), "?", time.time(), time.time()))
        for cb in listeners:
            try:
                cb(job.reply_id, outcome, client)
            except Exception:  # a listener's bug must not stop the server
                log.exception("OSC result listener %r failed for job %d", cb, job.id)

    def _get_separator(self):
        if self._separator is None:
            spec = self._separator_spec
            if spec is None or isinstance(spec, (str, os.PathLike)):
                from ..engine import Separator

                self._separator = Separator(spec if spec is not None else "default")
            elif hasattr(spec, "prepare") or hasattr(spec, "analyze"):
                self._separator = spec
            elif callable(spec):
                self._separator = spec()
            else:
                raise OscError(f"cannot use {type(spec).__name__} as a separator")
        return self._separator

    def _progress_fn(self, job: _Job) -> Callable[[float, str], None]:
        state: dict[str, Any] = {"t": 0.0, "stage": None}

        def progress(fraction: float, stage: str) -> None:
            if job.cancel.is_set() or self._stopping.is_set():
                raise Cancelled(f"analysis {job.id} cancelled")
            now = time.monotonic()
            if stage != state["stage"] or now - state["t"] >= 0.05 or fraction >= 1.0:
                state["t"], state["stage"] = now, stage
                self._send(job.reply, "/idm/progress", job.reply_id, float(min(max(fraction, 0.0), 1.0)), stage or "")

        return progress

    def _run(self, job: _Job) -> Analysis:
        from ..audio import load_audio
        from ..progress import Stage

        progress = self._progress_fn(job)
        stage = Stage(progress)
        t0 = time.perf_counter()
        analysis: Analysis | None = None
        if self._analyze_fn is not None:
            audio = job.source if isinstance(job.source, Audio) else load_audio(job.source, sample_rate=None)
            analysis = self._analyze_fn(audio, stage.sub(0.0, 0.8))
            tr, kit = analysis.transcription, analysis.kit
            gains, model, audio = analysis.track_gains, analysis.model, analysis.audio
            job.engine_s = time.perf_counter() - t0
            self._send_hits(job, tr)
            blocks: Iterable = [(0, analysis.stems.audio, analysis.stems.residual)]
            classes, rate, channels = analysis.stems.classes, analysis.stems.sample_rate, analysis.stems.residual.shape[0]
            blocks_progress = stage.sub(0.8, 0.95)
        else:
            sep = self._get_separator()
            progress(0.0, "loading audio")
            t0 = time.perf_counter()  # the model may just have loaded: not part of this job's engine time
            if hasattr(sep, "prepare"):
                audio = sep.load(job.source)
                audio, enc, tr, kit = sep.prepare(audio, progress=stage.sub(0.0, 0.4))
                gains, model = enc.track_gains, getattr(sep, "model_name", "")
                # the stems go to disk block by block, never all in memory: the result has none
                analysis = Analysis(tr, kit, None, gains, getattr(enc, "kit_embedding", None), model,  # type: ignore[arg-type]
                                    audio)
                job.engine_s = time.perf_counter() - t0
                self._send_hits(job, tr)
                blocks_progress = stage.sub(0.4, 0.95)
                mode = sep.masking_for(job.masking, user_hits=False) if hasattr(sep, "masking_for") else job.masking
                plan = sep.fit_adaptive(audio, tr, kit) if mode == "adaptive" else None
                blocks = sep.iter_blocks(audio, tr, kit, masking=mode, plan=plan, progress=blocks_progress)
                if plan is not None:  # kit/ gets the one-shots that sound like the record
                    kit = sep.adapted_kit(plan, tr, kit)
                    analysis = replace(analysis, kit=kit)
                classes, rate, channels = tuple(sep.classes), sep.sample_rate, audio.channels
            else:
                analysis = sep.analyze(job.source, masking=job.masking, progress=stage.sub(0.0, 0.8))
                tr, kit = analysis.transcription, analysis.kit
                gains, model, audio = analysis.track_gains, analysis.model, analysis.audio
                job.engine_s = time.perf_counter() - t0
                self._send_hits(job, tr)
                blocks = [(0, analysis.stems.audio, analysis.stems.residual)]
                classes, rate, channels = analysis.stems.classes, analysis.stems.sample_rate, analysis.stems.residual.shape[0]
                blocks_progress = stage.sub(0.8, 0.95)
        job_dir = self._write_outputs(job, tr, kit, blocks if self.write_stems else None, classes, rate,
                                      channels, blocks_progress)
        with self._lock:
            source = job.source if isinstance(job.source, Path) else None
            self._results[job.id] = _Result(tr, kit, job_dir, job.engine_s, gains, model,
                                            (source, audio.sample_rate, audio.channels, audio.n_frames),
                                            owner=job.owner, timeline=job.timeline)
            while len(self._results) > self._keep_results:
                self._results.popitem(last=False)
        if self.write_stems:
            self._send(job.reply, "/idm/stems", job.id, str(job_dir))
        self._send(job.reply, "/idm/midi", job.id, str(job_dir / "transcription.mid"))
        stage(1.0, "done")
        self._send(job.reply, "/idm/done", job.id)
        return replace(analysis, extra={**analysis.extra, "out_dir": job_dir})

    def _send_hits(self, job: _Job, tr: Transcription) -> None:
        hits = sorted((h.time_s, c, h.velocity) for c in tr.classes for h in tr.hits[c])
        for k, (t, c, v) in enumerate(hits):
            self._send(job.reply, "/idm/hit", job.id, c, float(t), float(v))
            if isinstance(job.reply, _UdpReply) and k % 64 == 63:
                time.sleep(0.0005)  # pace bursts so a client's receive buffer keeps up
        if job.timeline is not None and isinstance(job.source, Audio):  # a plug-in's stream: frame-exact hits
            self._send_frame_hits(job.reply, job.id, tr, job.source.sample_rate, job.timeline)
            self._keep_take_audio(job.id, job.source)  # for /idm/edit (idm-studio)

    def _write_outputs(self, job: _Job, tr: Transcription, kit: Kit | None, blocks, classes, rate: int,
                       channels: int, progress) -> Path:
        """Write stems (streamed), residual, onsets.json, transcription.mid and kit/ into a new folder."""
        import json

        from pedalboard.io import AudioFile

        from ..audio import save_audio
        from ..fsutil import atomic_write_text, make_temp_dir
        from ..midi import write_midi

        self.out_dir.mkdir(parents=True, exist_ok=True)
        final = self.out_dir / job.name
        k = 2
        while final.exists():
            final = self.out_dir / f"{job.name}-{k}"
            k += 1
        work = make_temp_dir(final)  # .NAME.idm-PID-xxx.partial beside it, with a plain mkdir's permissions
        with self._lock:
            self._partials.add(work)
        try:
            if blocks is not None:
                writers = [AudioFile(str(work / f"{c}.wav"), "w", float(rate), channels, bit_depth=24)
                           for c in list(classes) + ["residual"]]
                try:
                    for _start, stems, residual in blocks:
                        if job.cancel.is_set() or self._stopping.is_set():
                            raise Cancelled(f"analysis {job.id} cancelled")
                        for w, block in zip(writers, list(stems) + [residual]):
                            w.write(np.ascontiguousarray(block, dtype=np.float32))
                finally:
                    for w in writers:
                        w.close()
            atomic_write_text(work / "onsets.json", json.dumps(tr.to_dict(), indent=1))
            write_midi(tr, work / "transcription.mid", drum_map=self.drum_map)
            if kit is not None:
                for c, shot in zip(kit.classes, kit.one_shots):
                    save_audio(work / "kit" / f"{c}.wav", shot, kit.sample_rate, bit_depth=24)
            if self._stopping.is_set():
                raise Cancelled(f"analysis {job.id} cancelled: the server is stopping")
            os.replace(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            with self._lock:
                self._partials.discard(work)
        return final

