"""``idm-host separate``: stems, residual, onsets, MIDI and kit for each input file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_output_flags, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "separate",
        help="separate drum mixes into one stem per class",
        description="Write one stem per drum class, a residual, onsets.json, transcription.mid and the "
        "extracted kit for each input, under OUT/<input name>/.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (WAV, FLAC, MP3, OGG, AIFF)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default="default", help="model name or weights path (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    p.add_argument("--onsets", metavar="FILE", help="use these hits exactly (onsets.json or a drum .mid)")
    p.add_argument("--drum-map", default="gm", help="drum map for --onsets MIDI and transcription.mid")
    p.add_argument("--classes", choices=("9", "5"), default="9", help="9 model classes or 5 groups KD/SD/HH/TT/CY")
    p.add_argument("--format", choices=("wav", "flac"), default="wav")
    p.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=24, help="32 = float (WAV)")
    p.add_argument("--masking", choices=("wiener", "none"), default="wiener",
                   help="wiener: masks on the real mix; none: the synthetic stems")
    p.add_argument("--alpha", type=float, default=1.0, help="Wiener mask exponent (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_output_flags(p)
    p.set_defaults(func=run)


def load_onsets(path: str, drum_map: str):
    """An onsets override from ``onsets.json`` or a drum MIDI file."""
    from ..errors import IdmError
    from ..types import Transcription

    p = Path(path)
    if not p.exists():
        raise IdmError(f"{p}: onsets file not found")
    if p.suffix.lower() in (".mid", ".midi", ".smf"):
        from ..midi import read_midi

        return read_midi(p, drum_map=drum_map)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise IdmError(f"{p}: cannot read onsets ({exc}); give onsets.json or a .mid file") from exc
    return Transcription.from_json(text)


def run(args: argparse.Namespace) -> int:
    from ..engine import Separator
    from ..errors import IdmError
    from ..export import write_separation

    for name in args.inputs:
        if not Path(name).is_file():
            raise IdmError(f"{name}: file not found; check the path")
    onsets = load_onsets(args.onsets, args.drum_map) if args.onsets else None
    if onsets is not None and len(args.inputs) > 1:
        raise IdmError("--onsets applies to one input; give a single IN with it")
    sep = Separator(args.model, args.device)
    summaries = []
    stems_seen: set[str] = set()
    for name in args.inputs:
        track = Path(name).stem
        if track in stems_seen:
            raise IdmError(f"{name}: two inputs are named {track!r}; their outputs would collide")
        stems_seen.add(track)
        with progress_bar(args, track) as cb:
            summary = write_separation(
                sep, name, Path(args.out) / track, transcription=onsets, merge=args.classes == "5",
                format=args.format, bit_depth=args.bit_depth, masking=args.masking, alpha=args.alpha,
                drum_map=args.drum_map, overwrite=args.overwrite, progress=cb,
            )
        summaries.append(summary)
        if not args.json and not args.quiet:
            hits = ", ".join(f"{c} {n}" for c, n in summary["hits"].items() if n)
            print(f"{name}: {summary['duration_s']:.1f} s -> {summary['out_dir']} ({hits or 'no hits'})")
    if args.json:
        print_json(summaries if len(summaries) > 1 else summaries[0])
    return 0
