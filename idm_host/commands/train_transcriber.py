"""``idm-host train-transcriber``: train the transcription network on sampled and procedural kits."""
from __future__ import annotations

import argparse
import logging
from typing import Any

from ._common import add_command, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "train-transcriber", run,
        help="train the drum transcription network",
        description="Train the transcription network (docs/TRAINING.md) on examples rendered on the fly from the "
        "data config's kits, procedural kits and recording augmentation; validates on the config's "
        "validation_kits. Writes checkpoint.pt, best.pt (+ best.json: thresholds, velocity calibration, "
        "validation figures), best-report.json and log.jsonl to RUN_DIR.",
    )
    p.add_argument("--data", required=True, metavar="CONFIG.json", help="data config (kits, validation_kits)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--steps", type=int, default=100000, help="optimiser steps of this session (default: %(default)s)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop after this long (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=12, help="examples per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: %(default)s)")
    p.add_argument("--validate-every", type=int, default=300, help="steps between validations")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the trainer (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="start a new run in a RUN_DIR that holds one")
    p.add_argument("--init", metavar="WEIGHTS.pt", default=None,
                   help="start a new run from these transcriber weights (a best.pt or a shipped model); "
                        "the optimiser starts afresh")
    p.add_argument("--no-balance", action="store_true",
                   help="plain onset BCE, without the rare classes' positive weights")
    p.add_argument("--conv", metavar="C1,C2,...", default=None,
                   help="channels of each convolution block of a new network (default 16,32; each block pools "
                        "frequency by 3)")
    p.add_argument("--proj", type=int, default=None, help="projection width of a new network (default 128)")
    p.add_argument("--hidden", type=int, default=None, help="GRU units per direction of a new network (default 96)")
    p.add_argument("--mix-kits", type=float, default=0.0, metavar="P",
                   help="probability that a sampled-kit example takes each drum group (kick, snare, hats, toms, "
                        "cymbals) from another random training kit (default: %(default)s)")
    p.add_argument("--procedural", type=float, default=0.35, metavar="P",
                   help="probability that an example uses a procedural kit from the parametric drum "
                        "synthesiser instead of a training kit (default: %(default)s)")
    p.add_argument("--ending", type=float, default=0.0, metavar="P",
                   help="probability that an example's performance stops 0.3-2.5 s before its end, so it ends in "
                        "ringing tails and silence (default: %(default)s)")
    p.add_argument("--mute", type=float, default=0.0, metavar="P",
                   help="probability that some of an example's drum groups are silent, throughout or from a point "
                        "on: a hi-hat alone, a kick alone, a part that enters (default: %(default)s)")
    p.add_argument("--window", type=float, default=None, metavar="S",
                   help="inference window (s) validation runs the network in; kept in best.pt's calibration "
                        "(default: idm_host.transcriber.WINDOW_S)")
    p.add_argument("--context", type=float, default=None, metavar="S",
                   help="context (s) on either side of each validation window (default: CONTEXT_S)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the data stream and batch draws (default: the data config's); a run started "
                        "from another's weights with a new seed sees other examples than that run began with")
    p.add_argument("--tiling-loop", metavar="AUDIO", default=None,
                   help="each validation also tiles this loop 20 times; a candidate whose repeats get other hits "
                        "than the loop alone is never kept as best.pt (the check a shipped network must pass; "
                        "tools/ship_transcriber.py uses examples/drum-loop.flac)")
    p.add_argument("--json", action="store_true", help="print the best report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import IdmError
    from ..train.data import DataConfig
    from ..train.transcriber_loop import TrainSettings, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    network = _network_sizes(args)
    for flag, value in (("--mix-kits", args.mix_kits), ("--procedural", args.procedural), ("--ending", args.ending),
                        ("--mute", args.mute)):
        if not 0.0 <= value <= 1.0:
            raise IdmError(f"{flag} {value}: a probability between 0 and 1")
    from ..transcriber import Calibration

    Calibration().with_window(args.window, args.context)  # the sidecar's checks, before any work
    cfg = DataConfig.load(args.data)
    if not cfg.validation_kits:
        raise IdmError(f"{args.data}: no validation_kits; the transcriber is selected on kits it never trains on")
    train_kits = [k.load() for k in cfg.kits]
    val_kits = [k.load() for k in cfg.validation_kits]
    settings = TrainSettings(out=args.out, steps=args.steps, max_minutes=args.max_minutes, batch=args.batch_size,
                             lr=args.lr, validate_every=args.validate_every, threads=args.threads,
                             seed=cfg.seed if args.seed is None else args.seed,
                             balance_classes=not args.no_balance, network=network,
                             window_s=args.window, context_s=args.context, tiling_loop=args.tiling_loop)
    prov = {"data_config": str(args.data), "train_kits": list(cfg.kit_names), "kit_weights": cfg.kit_weights,
            "validation_kits": [k.label for k in cfg.validation_kits], "mix_kits": args.mix_kits,
            "procedural": args.procedural, "ending": args.ending, "mute": args.mute,
            "tiling_loop": args.tiling_loop}
    stream_kwargs: dict[str, Any] = {"mix_p": args.mix_kits, "procedural_p": args.procedural, "ending_p": args.ending,
                                     "mute_p": args.mute}
    if cfg.kit_weights:
        stream_kwargs["kit_weights"] = cfg.kit_weights
    report = train(settings, train_kits, val_kits, resume=args.resume, classes=cfg.classes, provenance=prov,
                   overwrite=args.overwrite, init=args.init,
                   stream_kwargs=stream_kwargs)
    if args.json:
        print_json(report)
    return 0


def _network_sizes(args: argparse.Namespace) -> dict[str, Any]:
    """The sizes a new network is built with, from --conv/--proj/--hidden (empty: the defaults)."""
    from ..errors import IdmError

    network: dict[str, Any] = {}
    if args.conv is not None:
        try:
            network["conv"] = tuple(int(c) for c in args.conv.split(","))
        except ValueError:
            raise IdmError(f"--conv {args.conv!r}: expected channel counts separated by commas, like 16,32") from None
        if not network["conv"] or min(network["conv"]) < 1:
            raise IdmError(f"--conv {args.conv!r}: every block needs at least one channel")
    for key in ("proj", "hidden"):
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                raise IdmError(f"--{key} {value}: must be at least 1")
            network[key] = value
    if network and args.resume:
        raise IdmError("--resume continues the network in the checkpoint; --conv/--proj/--hidden apply to a new run")
    return network
