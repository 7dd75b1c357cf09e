"""``idm-host gui [FILE]``: start the desktop editor (imports the GUI lazily)."""
from __future__ import annotations

import argparse

from ._common import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "gui", _run, help="open the desktop drum editor (idm-studio)",
                    description="Open the desktop drum editor, optionally with FILE.")
    p.add_argument("file", nargs="?", help="an audio file to analyse, or a .idmsession folder")
    p.add_argument("--model", default="default", help="model name or weights path")


def _run(args: argparse.Namespace) -> int:
    from ..errors import IdmError

    try:
        from gui.app import main
    except ImportError as exc:
        raise IdmError(
            f"the desktop app cannot start ({exc}); install it with: pip install 'idm-host[gui]'"
        ) from exc
    argv = ([args.file] if args.file else []) + ["--model", args.model]
    return main(argv)
