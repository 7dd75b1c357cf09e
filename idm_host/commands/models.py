"""``idm-host models``: list, locate, import and download models."""
from __future__ import annotations

import argparse

from ._common import add_command, add_output_flags, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, locate, import or download models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = add_command(msub, "list", run_list, help="models this installation knows")
    add_output_flags(ls)
    path = add_command(msub, "path", run_path, help="print the weights file of a model")
    path.add_argument("name", nargs="?", default="default")
    imp = add_command(msub, "import", run_import, help="verify and install the official IDM checkpoint (.ckpt)")
    imp.add_argument("path", help="the downloaded idm-44-train-kits checkpoint")
    imp.add_argument("--name", default=None, help="install under this name (default: idm-44-train-kits)")
    add_output_flags(imp)
    pull = add_command(msub, "pull", run_pull, help="download the official checkpoint (needs a network)")
    pull.add_argument("name", nargs="?", default="idm-44-train-kits")
    add_output_flags(pull)


def _info_dict(info) -> dict:
    return {"name": info.name, "installed": info.installed, "path": str(info.path) if info.path else None,
            "sha256": info.sha256, "classes": list(info.classes), "description": info.description}


def run_list(args: argparse.Namespace) -> int:
    from ..models import cache_dir, list_models

    infos = list_models()
    if args.json:
        print_json({"cache_dir": str(cache_dir()), "models": [_info_dict(i) for i in infos]})
        return 0
    for i in infos:
        state = str(i.path) if i.installed else "not installed"
        print(f"{i.name:22s} {state}\n{'':22s} {i.description}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from ..models import model_path

    print(model_path(args.name))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..installs import import_official
    from ..models import OFFICIAL_NAME

    with progress_bar(args, "kit one-shots") as cb:
        info = import_official(args.path, name=args.name or OFFICIAL_NAME, progress=cb)
    if args.json:
        print_json(_info_dict(info))
    else:
        print(f"installed {info.name} -> {info.path}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from ..installs import pull_model

    with progress_bar(args, "download") as cb:
        info = pull_model(args.name, progress=cb)
    if args.json:
        print_json(_info_dict(info))
    else:
        print(f"installed {info.name} -> {info.path}")
    return 0
