"""Shared pieces of the sub-command handlers: progress bars and JSON output."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ..progress import ProgressCallback


#: The help of ``--model`` and ``--device`` where they choose the model a command analyses with.
MODEL_HELP = "model name or weights path (default: %(default)s)"
DEVICE_HELP = "auto, cpu or cuda (default: %(default)s)"


def add_command(sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int], *,
                help: str, description: str | None = None) -> argparse.ArgumentParser:
    """Register the sub-command ``name`` (its line in its parent's ``--help`` and its own ``--help`` text)
    with ``run`` as the handler ``idm_host.cli`` calls; returns its parser for the options. ``sub`` is
    ``idm-host``'s sub-parsers or a command's own (``idm-host models list``)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=run)
    return parser


def add_model_flags(parser: Any, model_help: str = MODEL_HELP, device_help: str = DEVICE_HELP) -> None:
    """``--model`` (a name or weights path, default ``default``) and ``--device`` (default ``auto``), on a
    parser or an argument group."""
    parser.add_argument("--model", default="default", help=model_help)
    parser.add_argument("--device", default="auto", help=device_help)


def add_transcriber_flag(parser: Any) -> None:
    """``--transcriber auto|default|none``: where a command's hits come from (stored in a batch job's
    options only when not ``auto``, so earlier batches' records still match)."""
    parser.add_argument("--transcriber", choices=("auto", "default", "none"), default="auto",
                        help="hits from: auto (the shipped transcription network once it passes its ship gate, "
                             "until then the IDM head's hits at the network's velocities on the MIDI scale), default (the "
                             "shipped transcription network: its hits and velocities; MODEL_CARD.md), none (the IDM "
                             "head, its own velocities too) (default: %(default)s)")


def transcriber_options(args: argparse.Namespace) -> dict[str, str]:
    """The batch options ``--transcriber`` adds: none for ``auto``."""
    value = getattr(args, "transcriber", "auto")
    return {} if value == "auto" else {"transcriber": value}


def add_output_flags(parser: argparse.ArgumentParser, json_help: str = "print one JSON summary on stdout") -> None:
    """``--json`` (``json_help`` says what it prints) and ``--quiet``, which every command takes."""
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def add_audio_format_flags(parser: argparse.ArgumentParser) -> None:
    """``--format`` (wav or flac) and ``--bit-depth`` of the audio files a command writes."""
    parser.add_argument("--format", choices=("wav", "flac"), default="wav")
    parser.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=24, help="32 = float (WAV)")


@contextmanager
def progress_bar(args: argparse.Namespace, desc: str = "") -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr when stderr is a TTY and ``--quiet`` is not set; else ``None``."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="", bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}",
               file=sys.stderr, leave=False)

    def cb(fraction: float, message: str) -> None:
        bar.n = int(1000 * fraction)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    try:
        yield cb
    finally:
        bar.close()


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def print_summary(args: argparse.Namespace, summary: Any, line: str) -> None:
    """A command's outcome: ``summary`` as JSON on stdout with ``--json``, else ``line`` unless ``--quiet``."""
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(line)


def install_termination_handler() -> None:
    """Turn SIGTERM into :class:`~idm_host.errors.Terminated` (a KeyboardInterrupt) in the main
    thread, so a terminated run cleans up (temporary folders, locks) exactly as Ctrl-C does."""
    import signal
    import threading

    from ..errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        return

    def on_term(signum, frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, on_term)


def add_batch_flags(parser: argparse.ArgumentParser) -> None:
    """``--recursive``, ``--jobs``, ``--scheduler``, ``--resources`` and ``--json-lines``, which the
    commands that take folders share."""
    parser.add_argument("--recursive", "-r", action="store_true",
                        help="with a folder: take audio files in its subfolders too (outputs mirror them)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="worker processes, each loading the model once (default: %(default)s)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the files on a Dask cluster, e.g. tcp://scheduler.example:8786; inputs and "
                        "outputs must be on a folder every worker sees (docs/CLUSTER.md; needs the extra "
                        "idm-host[cluster])")
    parser.add_argument("--resources", metavar="NAME=N[,...]",
                        help="with --scheduler: what each file asks of a worker, e.g. GPU=1 (only workers started "
                        "with `dask worker --resources GPU=1` take files, one per GPU)")
    parser.add_argument("--json-lines", action="store_true",
                        help="print each file's status as one JSON line on stdout as it finishes, then the counts")


def make_batch_executor(args: argparse.Namespace, progress: Any = None) -> Any:
    """The executor the flags ask for: a Dask cluster (``--scheduler``), or ``--jobs N`` here."""
    from ..errors import IdmError

    if getattr(args, "resources", None) and not getattr(args, "scheduler", None):
        raise IdmError("--resources applies to a cluster; give --scheduler ADDRESS with it")
    if getattr(args, "scheduler", None):
        if args.jobs != 1:
            raise IdmError("--jobs N runs worker processes on this machine; with --scheduler the cluster's "
                           "workers run the files (start as many as you need)")
        from ..cluster import DaskExecutor, parse_resources, require_distributed

        require_distributed()
        return DaskExecutor(args.scheduler, resources=parse_resources(args.resources))
    from ..batch import make_executor

    return make_executor(args.jobs, progress)


def batch_postfix(done: int, failed: int, in_flight: int, elapsed_s: float) -> str:
    """The batch bar's counts: ``done 10, failed 1, in flight 2, 4.2 files/min``."""
    rate = (done + failed) / elapsed_s * 60 if elapsed_s > 0 else 0.0
    return f"done {done}, failed {failed}, in flight {in_flight}, {rate:.1f} files/min"


@contextmanager
def batch_progress(args: argparse.Namespace, total: int, executor: Any = None) -> Iterator[Any]:
    """A bar for a batch (stderr TTY only: files done, failed, in flight, throughput) and, with
    ``--json-lines``, each file's status as a JSON line on stdout; yields ``update(status)``.

    When an interrupt stops the batch inside it, the batch's outcome so far is printed as
    :func:`report_batch` would have at its end (:func:`report_interrupted`) before the interrupt
    goes on to the CLI's one line."""
    import time

    lines = getattr(args, "json_lines", False)
    show = not (getattr(args, "quiet", False) or not sys.stderr.isatty() or total < 2)
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False,
                   bar_format="{n_fmt}/{total_fmt} files |{bar}| {postfix} [{elapsed}<{remaining}]")
    t0 = time.monotonic()
    counts = {"done": 0, "failed": 0}

    def update(status: Any) -> None:
        if lines:
            sys.stdout.write(json.dumps(status.to_dict(), default=str) + "\n")
            sys.stdout.flush()
        if status.status in counts:
            counts[status.status] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(batch_postfix(counts["done"], counts["failed"], getattr(executor, "in_flight", 0),
                                              time.monotonic() - t0), refresh=True)

    try:
        yield update
    except KeyboardInterrupt as exc:
        if bar is not None:
            bar.close()
            bar = None
        report_interrupted(args, exc, total)
        raise
    finally:
        if bar is not None:
            bar.close()


def report_interrupted(args: argparse.Namespace, exc: BaseException, total: int) -> None:
    """After an interrupted batch: with ``--json-lines`` the counts line (its files' lines, the
    stopped ones too, were printed as they came), with ``--json`` the whole summary of a batch of
    more than one file; every file once, those not done as ``stopped``. Nothing otherwise (the
    CLI's one line says what is done)."""
    from ..batch import interrupted_result

    result = interrupted_result(exc)
    if result is None:
        return
    if getattr(args, "json_lines", False):
        counts = result.to_dict()
        counts.pop("files")
        print(json.dumps(counts, default=str), flush=True)
    elif getattr(args, "json", False) and total > 1:
        print_json(result.to_dict())
        sys.stdout.flush()


def report_batch(args: argparse.Namespace, result: Any, line: Any, *, single: bool) -> int:
    """Print a batch's outcome: one line per file (failures on stderr), a count line, or ``--json``.

    A single input file keeps the plain form: its error as the one ``idm-host: error:`` line, its
    summary as the JSON. Returns the exit status: 0 when nothing failed, else 1.
    """
    from ..errors import IdmError

    if single and result.files and result.files[0].status == "failed":
        raise IdmError(result.files[0].error)
    if getattr(args, "json_lines", False):
        counts = result.to_dict()
        counts.pop("files")
        print(json.dumps(counts, default=str))
    elif args.json:
        if single:
            f = result.files[0]
            print_json(dict(f.summary or {}, status=f.status))
        else:
            print_json(result.to_dict())
    for f in result.files:
        if f.status == "failed":
            print(f"idm-host: error: {f.error}", file=sys.stderr)
        elif not args.json and not args.quiet and not getattr(args, "json_lines", False):
            if f.status == "skipped":
                print(f"{f.input}: skipped (done in an earlier run; --overwrite redoes it)")
            else:
                print(line(f))
    if not single and not args.json and not args.quiet and not getattr(args, "json_lines", False):
        if result.count("skipped") and not result.count("done"):
            print(f"nothing new to do: {result.count('skipped')} files were done in an earlier run "
                  "(--overwrite redoes them)")
        print(f"{result.count('done')} done, {result.count('skipped')} skipped, {result.failed} failed"
              + (f" -> {result.out_dir}" if result.out_dir else ""))
    return 1 if result.failed else 0
