"""``idm-host transcribe``: drum hits of an audio file as a MIDI file (and/or onsets JSON)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_output_flags, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="write the drum hits of an audio file as MIDI",
        description="Transcribe a drum mix into hits per class and write them as a Standard MIDI File "
        "(channel 10, through a drum map) and/or onsets JSON.",
    )
    p.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, MP3, OGG, AIFF)")
    p.add_argument("--midi", metavar="OUT.mid", help="MIDI file to write")
    p.add_argument("--onsets-json", metavar="FILE", help="also write the hits as onsets JSON")
    p.add_argument("--drum-map", default="gm", metavar="NAME",
                   help="drum map name or .json path (default: %(default)s; see `idm-host midi maps`)")
    p.add_argument("--tempo", default="auto", metavar="BPM",
                   help="tempo written to the MIDI file: a BPM, or 'auto' to estimate it (default: auto)")
    p.add_argument("--ppq", type=int, default=480, help="ticks per quarter note (default: %(default)s)")
    p.add_argument("--layout", choices=("single", "per-class"), default="single",
                   help="one drum track, or one track per class")
    p.add_argument("--velocity-curve", default="linear", help="linear, soft, hard or an exponent")
    p.add_argument("--model", default="default", help="model name or weights path (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_output_flags(p)
    p.set_defaults(func=run)


def _curve(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def run(args: argparse.Namespace) -> int:
    from ..errors import IdmError
    from ..fsutil import atomic_write_text
    from ..midi import write_midi
    from ..drum_maps import load_drum_map

    if not args.midi and not args.onsets_json:
        raise IdmError("nothing to write; give --midi OUT.mid and/or --onsets-json FILE")
    src = Path(args.input)
    if not src.is_file():
        raise IdmError(f"{src}: file not found; check the path")
    outputs = [Path(p) for p in (args.midi, args.onsets_json) if p]
    for out in outputs:
        if out.exists() and not args.overwrite:
            raise IdmError(f"{out}: already exists; pass --overwrite or choose another name")
    drum_map = load_drum_map(args.drum_map)  # fail on a bad map before the model runs
    if args.tempo != "auto":
        try:
            bpm = float(args.tempo)
        except ValueError:
            raise IdmError(f"--tempo {args.tempo!r} is not a number; give a BPM or 'auto'") from None
    from ..engine import Separator

    sep = Separator(args.model, args.device)
    with progress_bar(args, src.stem) as cb:
        tr = sep.transcribe(src, progress=cb)
    if args.tempo == "auto":
        from ..tempo import estimate_tempo

        bpm = estimate_tempo(tr.hits, duration_s=tr.duration_s).bpm
    written = []
    if args.midi:
        written.append(str(write_midi(tr, args.midi, drum_map=drum_map, tempo_bpm=bpm, ppq=args.ppq,
                                      layout=args.layout, velocity_curve=_curve(args.velocity_curve),
                                      overwrite=args.overwrite)))
    if args.onsets_json:
        written.append(str(atomic_write_text(args.onsets_json, tr.to_json(), overwrite=args.overwrite)))
    summary = {"input": str(src), "written": written, "drum_map": drum_map.name, "tempo_bpm": round(bpm, 3),
               "hits": {c: len(h) for c, h in tr.hits.items()}, "duration_s": tr.duration_s}
    if args.json:
        print_json(summary)
    elif not args.quiet:
        hits = ", ".join(f"{c} {n}" for c, n in summary["hits"].items() if n) or "no hits"
        print(f"{src.name}: {hits}; {bpm:.1f} BPM -> {', '.join(written)}")
    return 0
