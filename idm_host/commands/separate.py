"""``idm-host separate``: stems, residual, onsets, MIDI and kit for each input file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (add_audio_format_flags, add_batch_flags, add_command, add_model_flags, add_output_flags,
                      add_transcriber_flag, batch_progress, make_batch_executor, progress_bar, report_batch,
                      transcriber_options)

#: Latest hit time an onsets file may hold (s): 24 hours, longer than any audio idm-host reads.
MAX_ONSET_S = 86400.0
#: The engine's masking modes (``idm_host.masking.MODES``, kept here so that --help needs no torch).
MASKING_CHOICES = ("auto", "wiener", "power", "adaptive", "none")
MASKING_HELP = ("auto (default): adaptive for --onsets, power otherwise; wiener: magnitude-ratio masks of the "
                "synthetic stems; power: power-ratio masks; adaptive: templates fitted to the mix (the kit/ "
                "one-shots then sound like the record, kit/synthetic/ keeps the model's); none: the synthetic stems")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "separate", run,
        help="separate drum mixes into one stem per class",
        description="Write one stem per drum class, a residual, onsets.json, transcription.mid and the "
        "extracted kit for each input, under OUT/<input name>/. A folder stands for the audio files in it "
        "(OUT mirrors its subfolders with --recursive); a file that fails is reported and the others go on; "
        "a second run skips what is done (see docs/RELIABILITY.md).",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (WAV, FLAC, MP3, OGG, AIFF) or folders of them")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    add_model_flags(p)
    add_transcriber_flag(p)
    p.add_argument("--onsets", metavar="FILE", help="use these hits exactly (onsets.json or a drum .mid)")
    p.add_argument("--drum-map", default="gm", help="drum map for --onsets MIDI and transcription.mid")
    p.add_argument("--classes", choices=("9", "5"), default="9", help="9 model classes or 5 groups KD/SD/HH/TT/CY")
    add_audio_format_flags(p)
    p.add_argument("--masking", choices=MASKING_CHOICES, default="auto",
                   help=MASKING_HELP)
    p.add_argument("--alpha", type=float, default=None,
                   help="mask exponent (default: the mode's: 1 for wiener, 2 for power and adaptive)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (and redo finished files)")
    add_batch_flags(p)
    add_output_flags(p)


def load_onsets(path: str, drum_map: str):
    """An onsets override from ``onsets.json`` or a drum MIDI file."""
    import math

    from ..errors import IdmError
    from ..types import Transcription

    p = Path(path)
    if not p.is_file():
        raise IdmError(f"{p}: onsets file not found")
    if p.suffix.lower() in (".mid", ".midi", ".smf"):
        from ..midi import read_midi

        return read_midi(p, drum_map=drum_map)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise IdmError(f"{p}: cannot read onsets ({exc}); give onsets.json or a .mid file") from exc
    try:
        tr = Transcription.from_json(text)
    except IdmError as exc:
        raise IdmError(f"{p}: {exc}") from exc
    except Exception as exc:  # e.g. {"KD": [[0.5]]}: a list where a time belongs
        kind = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise IdmError(f"{p}: onsets data is malformed ({kind}); expected {{class: [time_s, ...]}}") from exc
    for c, hits in tr.hits.items():
        for h in hits:
            if not math.isfinite(h.time_s) or h.time_s > MAX_ONSET_S:
                raise IdmError(f"{p}: hit time {h.time_s!r} s for {c} is beyond any audio "
                               f"(the limit is {MAX_ONSET_S:g} s)")
    return tr


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchJob, collect_inputs, plan_units, run_batch
    from ..errors import IdmError

    out = Path(args.out).absolute()
    found, missing = collect_inputs(args.inputs, recursive=args.recursive, exclude=out)
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    if len(args.inputs) == 1 and missing:
        raise IdmError(missing[0].error)
    if not found and not missing:
        raise IdmError(f"no audio files in {', '.join(args.inputs)}"
                       + ("" if args.recursive else "; pass --recursive to look in subfolders"))
    onsets = load_onsets(args.onsets, args.drum_map) if args.onsets else None
    if onsets is not None and (not single or missing):
        raise IdmError("--onsets applies to one input; give a single IN file with it")
    options = {"classes": args.classes, "format": args.format, "bit_depth": args.bit_depth, "masking": args.masking,
               "alpha": args.alpha, "drum_map": args.drum_map, "onsets": onsets.to_dict() if onsets else None,
               **transcriber_options(args)}
    job = BatchJob("separate", args.model, args.device, options, out_dir=str(out), overwrite=args.overwrite)
    units, clashes = plan_units(found, lambda name: (str(out / name),))
    executor = make_batch_executor(args, (lambda u: progress_bar(args, Path(u.input).stem)) if single else None)
    with batch_progress(args, len(units), executor) as tick:
        result = run_batch(job, units, executor, failed=missing + clashes, on_status=tick)

    def line(f) -> str:
        s = f.summary
        hits = ", ".join(f"{c} {n}" for c, n in s["hits"].items() if n)
        return f"{f.input}: {s['duration_s']:.1f} s -> {s['out_dir']} ({hits or 'no hits'})"

    return report_batch(args, result, line, single=single)
