"""``idm-host render``: re-render a session (or a drum mix) with another kit and effect chains."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._common import (add_audio_format_flags, add_command, add_model_flags, add_output_flags, print_summary,
                      progress_bar)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "render", run,
        help="re-render a session or a drum mix with a kit and effects",
        description="Render per-class stems and a mix from a session (or from AUDIO, analysed first): "
        "optionally load a kit, put effect chains on classes and the master, write WAV/FLAC files.",
    )
    p.add_argument("input", metavar="SESSION|AUDIO", help="a .idmsession folder or an audio file")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder for <CLASS>.wav and mix.wav")
    p.add_argument("--kit", metavar="PRESET|DIR", help="kit preset name, kit .json, or a folder of samples (KD.wav, snare.wav ...)")
    p.add_argument("--fx", action="append", default=[], metavar="CLASS=PRESET",
                   help="effect chain for a class (preset name or .json path; 'none' removes it); repeatable")
    p.add_argument("--master", metavar="PRESET", help="effect chain on the mix")
    p.add_argument("--blend", choices=("sample", "replace", "layer"),
                   help="how kit samples combine with the separated stems (default: the session's)")
    add_audio_format_flags(p)
    p.add_argument("--channels", type=int, choices=(1, 2), help="1 = mono, 2 = stereo (default: from the source and pans)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="range start (s)")
    p.add_argument("--end", type=float, metavar="S", help="range end (s)")
    add_model_flags(p, "model for AUDIO input (default: %(default)s)", "device for AUDIO input (default: %(default)s)")
    p.add_argument("--save-session", metavar="X.idmsession", help="also save the edited session there")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_output_flags(p)


def _parse_fx(items: list[str], classes: tuple[str, ...]) -> list[tuple[str, str | None]]:
    from ..errors import IdmError

    out = []
    for item in items:
        cls, sep, preset = item.partition("=")
        if not sep or not cls or not preset:
            raise IdmError(f"--fx {item!r}: expected CLASS=PRESET, e.g. --fx KD=tight-kick")
        if cls not in classes:
            raise IdmError(f"--fx {item!r}: unknown class {cls!r}; use one of {', '.join(classes)}")
        out.append((cls, None if preset == "none" else preset))
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import IdmError
    from ..kit_presets import kit_command, load_kit
    from ..render import export_stems, render
    from ..session import SESSION_SUFFIX, Compound, Session, SetEffects, SetKitParams

    src = Path(args.input)
    t0 = time.perf_counter()
    # check everything cheap before the (slow) analysis
    kit = load_kit(args.kit) if args.kit else None
    if args.master:
        from ..fx import validate_effects

        validate_effects(args.master)
    with progress_bar(args, src.stem) as cb:
        if src.is_dir() or src.suffix == SESSION_SUFFIX:
            session = Session.load(src)
        elif src.is_file():
            from ..engine import Separator

            analysis = Separator(args.model, args.device).analyze(src, progress=cb)
            session = Session.from_analysis(analysis, source=src)
        else:
            raise IdmError(f"{src}: not found; give a .idmsession folder or an audio file")
        cmds = []
        if kit is not None:
            cmds.append(kit_command(session, kit))
        if args.blend:
            cmds += [SetKitParams(c, blend=args.blend) for c in session.classes]
        cmds += [SetEffects(c, preset) for c, preset in _parse_fx(args.fx, session.classes)]
        if args.master:
            cmds.append(SetEffects("master", args.master))
        if cmds:
            session.apply(Compound(cmds, "render settings"))
        result = render(session, start_s=args.start, end_s=args.end, channels=args.channels)
    files = export_stems(result, args.out, format=args.format, bit_depth=args.bit_depth, overwrite=args.overwrite)
    saved = session.save(args.save_session, overwrite=args.overwrite) if args.save_session else None
    summary = {
        "input": str(src), "out": str(Path(args.out)), "files": [str(f) for f in files],
        "kit": kit.name if kit else None, "fx": {c: session.mixer[c].effects for c in session.classes
                                                 if session.mixer[c].effects is not None},
        "master": session.mixer["master"].effects, "sample_rate": result.sample_rate,
        "channels": result.channels, "duration_s": result.n_frames / result.sample_rate,
        "peak": float(abs(result.mix).max()) if result.mix.size else 0.0,
        "session": str(saved) if saved else None, "seconds": round(time.perf_counter() - t0, 3),
    }
    print_summary(args, summary,
                  f"wrote {len(files)} files to {args.out} ({summary['duration_s']:.1f} s, peak {summary['peak']:.2f})")
    return 0
