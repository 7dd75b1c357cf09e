"""``idm-host transcribe``: drum hits of an audio file as a MIDI file (and/or onsets JSON)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (add_batch_flags, add_command, add_model_flags, add_output_flags, add_transcriber_flag,
                      batch_progress, make_batch_executor, progress_bar, report_batch, transcriber_options)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "transcribe", run,
        help="write the drum hits of an audio file as MIDI",
        description="Transcribe a drum mix into hits per class and write them as a Standard MIDI File "
        "(channel 10, through a drum map) and/or onsets JSON. With folders or several inputs, give --out DIR: "
        "each input gets DIR/<name>.mid and DIR/<name>.onsets.json; a file that fails is reported and the "
        "others go on; a second run skips what is done.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio file (WAV, FLAC, MP3, OGG, AIFF), or folders of them")
    p.add_argument("--midi", metavar="OUT.mid", help="MIDI file to write (one input)")
    p.add_argument("--onsets-json", metavar="FILE", help="also write the hits as onsets JSON (one input)")
    p.add_argument("--out", "-o", metavar="DIR", help="output folder for folders or several inputs")
    p.add_argument("--drum-map", default="gm", metavar="NAME",
                   help="drum map name or .json path (default: %(default)s; see `idm-host midi maps`)")
    p.add_argument("--tempo", default="auto", metavar="BPM",
                   help="tempo written to the MIDI file: a BPM, or 'auto' to estimate it (default: auto)")
    p.add_argument("--ppq", type=int, default=480, help="ticks per quarter note (default: %(default)s)")
    p.add_argument("--layout", choices=("single", "per-class"), default="single",
                   help="one drum track, or one track per class")
    p.add_argument("--velocity-curve", default="linear", help="linear, soft, hard or an exponent")
    add_model_flags(p)
    add_transcriber_flag(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (and redo finished ones)")
    add_batch_flags(p)
    add_output_flags(p)


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchJob, collect_inputs, plan_units, run_batch
    from ..drum_maps import load_drum_map
    from ..errors import IdmError

    single = len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir()
    if single and not args.out:
        if not args.midi and not args.onsets_json:
            raise IdmError("nothing to write; give --midi OUT.mid and/or --onsets-json FILE")
        out = None
        targets = tuple(str(Path(p).absolute()) for p in (args.midi, args.onsets_json) if p)
    elif args.midi or args.onsets_json:
        raise IdmError("--midi and --onsets-json name the files of one input; with folders or several inputs "
                       "give --out DIR")
    elif not args.out:
        raise IdmError("nothing to write; give --out DIR for folders or several inputs "
                       "(--midi/--onsets-json name the files of one input)")
    else:
        out = Path(args.out).absolute()
    found, missing = collect_inputs(args.inputs, recursive=args.recursive, exclude=out)
    if len(args.inputs) == 1 and missing:
        raise IdmError(missing[0].error)
    if not found and not missing:
        raise IdmError(f"no audio files in {', '.join(args.inputs)}"
                       + ("" if args.recursive else "; pass --recursive to look in subfolders"))
    if out is None:
        for t in targets:
            if Path(t).exists() and not args.overwrite:
                raise IdmError(f"{t}: already exists; pass --overwrite or choose another name")
    load_drum_map(args.drum_map)  # fail on a bad map before the model runs
    if args.tempo != "auto":
        try:
            float(args.tempo)
        except ValueError:
            raise IdmError(f"--tempo {args.tempo!r} is not a number; give a BPM or 'auto'") from None
    options = {"drum_map": args.drum_map, "tempo": args.tempo, "ppq": args.ppq, "layout": args.layout,
               "velocity_curve": args.velocity_curve,
               "midi_out": bool(args.midi) if out is None else True,
               "onsets_out": bool(args.onsets_json) if out is None else True, **transcriber_options(args)}
    job = BatchJob("transcribe", args.model, args.device, options, out_dir=str(out) if out else None,
                   overwrite=args.overwrite)
    if out is None:
        units, clashes = plan_units(found, lambda name: targets)
    else:
        units, clashes = plan_units(found, lambda name: (str(out / f"{name}.mid"), str(out / f"{name}.onsets.json")))
    single = single and bool(found)
    executor = make_batch_executor(args, (lambda u: progress_bar(args, Path(u.input).stem)) if single else None)
    with batch_progress(args, len(units), executor) as tick:
        result = run_batch(job, units, executor, failed=missing + clashes, on_status=tick)

    def line(f) -> str:
        s = f.summary
        hits = ", ".join(f"{c} {n}" for c, n in s["hits"].items() if n) or "no hits"
        return f"{Path(f.input).name}: {hits}; {s['tempo_bpm']:.1f} BPM -> {', '.join(s['written'])}"

    return report_batch(args, result, line, single=single)
