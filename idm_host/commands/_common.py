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
