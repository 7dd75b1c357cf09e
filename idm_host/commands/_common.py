"""Shared pieces of the sub-command handlers: progress bars and JSON output."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from ..progress import ProgressCallback


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--quiet``, which every command takes."""
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


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
    """``--recursive`` and ``--jobs``, which the commands that take folders share."""
    parser.add_argument("--recursive", "-r", action="store_true",
                        help="with a folder: take audio files in its subfolders too (outputs mirror them)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="worker processes, each loading the model once (default: %(default)s)")


@contextmanager
def batch_progress(args: argparse.Namespace, total: int) -> Iterator[Any]:
    """A files-done bar for a batch (stderr TTY only); yields ``update(status)`` or a no-op."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty() or total < 2:
        yield lambda status: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)
    try:
        yield lambda status: (bar.update(1), bar.set_postfix_str(status.name, refresh=True))
    finally:
        bar.close()


def report_batch(args: argparse.Namespace, result: Any, line: Any, *, single: bool) -> int:
    """Print a batch's outcome: one line per file (failures on stderr), a count line, or ``--json``.

    A single input file keeps the plain form: its error as the one ``idm-host: error:`` line, its
    summary as the JSON. Returns the exit status: 0 when nothing failed, else 1.
    """
    from ..errors import IdmError

    if single and result.files and result.files[0].status == "failed":
        raise IdmError(result.files[0].error)
    if args.json:
        if single:
            f = result.files[0]
            print_json(dict(f.summary or {}, status=f.status))
        else:
            print_json(result.to_dict())
    for f in result.files:
        if f.status == "failed":
            print(f"idm-host: error: {f.error}", file=sys.stderr)
        elif not args.json and not args.quiet:
            if f.status == "skipped":
                print(f"{f.input}: skipped (done in an earlier run; --overwrite redoes it)")
            else:
                print(line(f))
    if not single and not args.json and not args.quiet:
        print(f"{result.count('done')} done, {result.count('skipped')} skipped, {result.failed} failed"
              + (f" -> {result.out_dir}" if result.out_dir else ""))
    return 1 if result.failed else 0
