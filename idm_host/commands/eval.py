"""``idm-host eval``: score a model on a dataset folder, or render such a dataset from kits and patterns."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_command, add_model_flags, print_json, print_summary, progress_bar
from .separate import MASKING_CHOICES


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "eval", run,
        help="score a model on a dataset (SDR, SI-SDR, onset F), or render a dataset",
        description="idm-host eval DATASET [--model M] [--json [OUT]]: per-class and per-group SDR (1 s windows, "
        "median), SI-SDR and onset precision/recall/F at 50 ms, as a table on stdout.  "
        "idm-host eval render --kit KIT [--kit KIT ...] [--patterns MIDI ...] --out DATASET: render a dataset "
        "(mixture, per-class stems, onsets.json per clip) from your kits and patterns.",
    )
    p.add_argument("dataset", metavar="DATASET|render", help="a dataset folder, or 'render' to make one")
    g = p.add_argument_group("evaluating")
    add_model_flags(g)
    g.add_argument("--masking", choices=MASKING_CHOICES, default="wiener",
                   help="the engine's masking mode (see idm-host separate --help; default: %(default)s, "
                   "as the figures in MODEL_CARD.md)")
    g.add_argument("--onsets", choices=("model", "true"), default="model",
                   help="separate with the model's hits, or with each clip's true hits (measures the "
                   "separation alone; default: %(default)s)")
    g.add_argument("--predictor", choices=("model", "oracle", "silence"), default="model",
                   help="oracle (the references) and silence are sanity checks that need no model")
    g.add_argument("--transcriber", default="auto",
                   help="hits from: auto (the shipped transcription network with the default model), none "
                        "(the IDM head), default, or a weights path (default: %(default)s)")
    g.add_argument("--compare", action="store_true",
                   help="side by side in one run: the model, the official weights (when installed), the true hits "
                        "and ADTOF (when ../shared/peers and its Python are there); exits 1 if the model falls "
                        "below the official weights on any class")
    g.add_argument("--json", nargs="?", const="-", metavar="OUT",
                   help="write the results as JSON to OUT (or stdout when OUT is omitted)")
    r = p.add_argument_group("rendering (idm-host eval render ...)")
    r.add_argument("--kit", action="append", default=[], metavar="KIT",
                   help="Hydrogen drumkit folder, .sf2, .sfz or one-shot folder (repeatable)")
    r.add_argument("--preset", default=None, help="SF2 drum preset (program number or name; 'all' for every one)")
    r.add_argument("--patterns", nargs="*", default=[], metavar="MIDI",
                   help="drum MIDI files or folders; without them the groove generator is used")
    r.add_argument("--generator-weight", type=float, default=None,
                   help="share of clips from the groove generator when MIDI is given (default 0.0)")
    r.add_argument("--out", metavar="DATASET", help="dataset folder to create")
    r.add_argument("--clips", type=int, default=20, help="number of clips (default: %(default)s)")
    r.add_argument("--duration", type=float, default=6.0, help="clip length in s (default: %(default)s)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--augment", action="store_true", help="apply the training augmentation (room, compression, gain)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _render(args: argparse.Namespace) -> int:
    from ..errors import IdmError
    from ..train.data import Augment, render_dataset
    from ..train.kits import list_sf2_presets, load_kit
    from ..train.patterns import PatternSource

    if not args.kit or not args.out:
        raise IdmError("eval render needs at least one --kit and --out DATASET")
    kits = []
    for path in args.kit:
        if args.preset == "all" and Path(path).suffix.lower() == ".sf2":
            kits.extend(load_kit(path, preset=p.program) for p in list_sf2_presets(path))
        else:
            preset = args.preset if Path(path).suffix.lower() == ".sf2" else None
            kits.append(load_kit(path, preset=preset))
    weight = args.generator_weight if args.generator_weight is not None else 0.0
    patterns = PatternSource(args.patterns, generator_weight=weight)
    with progress_bar(args, "rendering") as cb:
        out = render_dataset(args.out, kits, patterns, n_clips=args.clips, duration_s=args.duration, seed=args.seed,
                             augment=Augment() if args.augment else Augment.none(), overwrite=args.overwrite,
                             progress=cb)
    summary = {"dataset": str(out), "clips": args.clips, "kits": [k.name for k in kits],
               "patterns": [str(f) for f in patterns.files] or ["generator"]}
    print_summary(args, summary, f"wrote {args.clips} clips from {len(kits)} kit(s) to {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..errors import IdmError

    if args.dataset == "render":
        return _render(args)
    from ..train.evaluate import (dataset_clips, evaluate, format_table, model_predictor, oracle_predictor,
                                  silence_predictor, write_results)

    dataset_clips(args.dataset)  # a missing or empty dataset fails before any model is loaded

    if args.json and args.json != "-" and Path(args.json).exists() and not args.overwrite:
        raise IdmError(f"{args.json}: already exists; choose another name or pass --overwrite")
    if args.compare:
        return _compare(args)
    if args.predictor == "oracle":
        predictor, system = oracle_predictor, "oracle"
    elif args.predictor == "silence":
        predictor, system = silence_predictor, "silence"
    else:
        from ..engine import Separator

        sep = Separator(args.model, args.device, transcriber=_transcriber_arg(args.transcriber))
        predictor = model_predictor(sep, masking=args.masking, true_hits=args.onsets == "true")
        system = f"{sep.model_name} ({args.masking}, {args.onsets} hits)"
    with progress_bar(args, "evaluating") as cb:
        results = evaluate(args.dataset, predictor, system=system, progress=cb)
    if args.json == "-":
        print_json(results)
        return 0
    if args.json:
        write_results(args.json, results, overwrite=args.overwrite)
    print(format_table(results))
    return 0


def _transcriber_arg(value: str) -> str | None:
    return None if value == "none" else value


def _compare(args: argparse.Namespace) -> int:
    import sys

    from ..engine import Separator
    from ..errors import IdmError
    from ..models import OFFICIAL_NAME
    from ..train.compare import compare, require_no_regression, table

    systems = {args.model: Separator(args.model, args.device, transcriber=_transcriber_arg(args.transcriber))}
    try:
        systems["official"] = Separator(OFFICIAL_NAME, args.device, transcriber=None)
    except IdmError as exc:
        print(f"warning: official weights not compared ({exc})", file=sys.stderr)
    results = compare({Path(args.dataset).name: args.dataset}, systems, stems_separator=systems[args.model])
    if "peer_error" in results:
        print(f"warning: ADTOF not compared ({results.pop('peer_error')})", file=sys.stderr)
    if args.json == "-":
        print_json(results)
    else:
        if args.json:
            from ..fsutil import atomic_write_text
            import json

            atomic_write_text(args.json, json.dumps(results, indent=1) + "\n", overwrite=args.overwrite)
        print(table(results, ["KD", "SD", "HH", "TT", "CY"]))
    if "official" in systems:
        require_no_regression(results, args.model, "official")
    return 0
