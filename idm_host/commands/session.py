"""``idm-host session new|info``: make a session from audio, or describe one."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_command, add_model_flags, add_output_flags, print_json, print_summary, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("session", help="create or inspect .idmsession folders",
                       description="Create an editable session from a drum mix, or describe one.")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION")
    new = add_command(ss, "new", run_new, help="analyse AUDIO into a new session",
                      description="Analyse AUDIO with the model and save the hits, kit and stems as a session.")
    new.add_argument("audio", metavar="AUDIO", help="drum mix (WAV, FLAC, MP3, OGG, AIFF)")
    new.add_argument("--out", "-o", required=True, metavar="X.idmsession", help="session folder to create")
    add_model_flags(new)
    new.add_argument("--no-stems", action="store_true", help="do not keep the separated stems (smaller session)")
    new.add_argument("--overwrite", action="store_true", help="replace an existing session folder")
    add_output_flags(new)
    info = add_command(ss, "info", run_info, help="describe a session", description="Print a session's contents.")
    info.add_argument("session", metavar="X.idmsession")
    add_output_flags(info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_new(args: argparse.Namespace) -> int:
    from ..errors import IdmError
    from ..session import Session

    if not Path(args.audio).is_file():
        raise IdmError(f"{args.audio}: file not found; check the path")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise IdmError(f"{out}: already exists; choose another name or pass --overwrite")
    from ..engine import Separator

    with progress_bar(args, Path(args.audio).stem) as cb:
        analysis = Separator(args.model, args.device).analyze(args.audio, progress=cb)
    session = Session.from_analysis(analysis, source=args.audio, keep_stems=not args.no_stems)
    path = session.save(out, overwrite=args.overwrite)
    info = session.info()
    print_summary(args, info, f"{path}: {info['n_hits']} hits, {session.tempo.bpm:g} BPM, {info['duration_s']:.1f} s")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..session import Session

    session = Session.load(args.session)
    info = session.info()
    if args.json:
        print_json(info)
        return 0
    print(f"{info['path']}")
    print(f"  source: {info['source']['path']} ({info['duration_s']:.2f} s)")
    if info["source_problem"]:
        print(f"  warning: {info['source_problem']}")
    print(f"  model: {info['model']}  tempo: {session.tempo.bpm:g} BPM, downbeat {session.tempo.downbeat_s:.3f} s")
    for c, d in info["classes"].items():
        kit = d["sample"] or d["kit"]
        eff = d["effects"] if isinstance(d["effects"], str) or d["effects"] is None else "inline chain"
        print(f"  {c:8s} {d['hits']:5d} hits  kit: {kit}  blend: {d['blend']}  fx: {eff or '-'}")
    return 0
