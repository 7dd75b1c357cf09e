"""``idm-host``: the command-line front end.

Sub-commands live in :mod:`idm_host.commands`, one module each, discovered at start-up; each module
defines ``register(subparsers)`` and sets ``func`` on its parser. Handlers parse, call the public API
and print; they hold no logic. torch is imported lazily inside handlers so ``--help`` stays fast.

Exit codes: 0 ok; 1 input error (one stderr line ``idm-host: error: ...``; for a batch, any file
failed); 2 usage error; 130 interrupted (SIGINT); 143 terminated (SIGTERM). Both signals clean up
(temporary folders, locks) before exit.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import threading
from typing import Sequence

from . import __version__
from .errors import Cancelled, IdmError, Terminated


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idm-host",
        description="Drum transcription, separation and re-rendering with the Inverse Drum Machine.",
    )
    parser.add_argument("--version", action="version", version=f"idm-host {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status. SIGINT or SIGTERM while the sub-commands load or
    run gives one line and the exit status 130 or 143, never a traceback."""
    import signal

    from .commands._common import install_termination_handler

    previous = signal.getsignal(signal.SIGTERM)
    install_termination_handler()  # SIGTERM cleans up as Ctrl-C does
    try:
        return _main(argv)
    except Terminated as exc:
        print("idm-host: terminated" + _notes(exc), file=sys.stderr)
        return 143
    except KeyboardInterrupt as exc:
        print("idm-host: interrupted" + _notes(exc), file=sys.stderr)
        return 130
    finally:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _notes(exc: BaseException) -> str:
    """``": " + what the interrupted run added`` (a batch: how many files are done, how to resume), or ``""``."""
    notes = getattr(exc, "__notes__", None)
    return ": " + "; ".join(map(str, notes)) if notes else ""


def quiet_exit() -> None:
    """For the program's last moments (``python -m idm_host``): nothing is left to clean up, so a
    late SIGINT is ignored and a late SIGTERM ends the process at once, with no traceback from
    the interpreter's shutdown."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `idm-host ... --json | head`
        sys.stderr.close()
        return 0
    except Cancelled:
        print("idm-host: cancelled", file=sys.stderr)
        return 130
    except IdmError as exc:
        if args.debug:
            raise
        print(f"idm-host: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, RecursionError) as exc:  # last resort: a file system fault no handler named
        if args.debug:
            raise
        from .fsutil import os_error_text

        if isinstance(exc, RecursionError):
            print("idm-host: error: an input is nested too deeply", file=sys.stderr)
        else:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"idm-host: error: {where}{os_error_text(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
