"""``idm-host train``: train or fine-tune an IDM model on sampled kits (see docs/TRAINING.md)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from ._common import add_command, add_output_flags, print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "train", run,
        help="train or fine-tune a model on your kits",
        description="Train an IDM model from drum mixtures rendered on the fly from sampled kits and patterns "
        "(data config: docs/TRAINING.md). Writes checkpoint.pt, model.pt, last.pt, losses.jsonl, loss_curve.png "
        "and report.json to RUN_DIR.",
    )
    p.add_argument("--data", required=True, metavar="CONFIG.json", help="data config (kits, patterns, augmentation)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--init", metavar="MODEL", help="start from this model (name or weights path): fine-tuning")
    p.add_argument("--steps", type=int, default=1000, help="total optimiser steps of the run (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--batch-size", type=int, default=7, help="clips per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    p.add_argument("--validate-every", type=int, default=200, help="steps between validations and checkpoints")
    p.add_argument("--log-every", type=int, default=10, help="steps between loss-log lines")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (after a checkpoint) after this long")
    p.add_argument("--seed", type=int, default=None, help="override the data config's seed")
    p.add_argument("--model-config", metavar="JSON", default=None,
                   help='model hyper-parameter overrides for a fresh model, e.g. \'{"synth_channels": 16}\'')
    p.add_argument("--background", action="store_true",
                   help="detach and train in the background; output goes to RUN_DIR/train.log")
    p.add_argument("--freeze-synth", action="store_true",
                   help="with --init: train the encoder side against the init model's frozen drum machine "
                        "(much cheaper per step; keeps the init model's kits)")
    p.add_argument("--overwrite", action="store_true", help="start a new run in a RUN_DIR that holds one")
    add_output_flags(p, json_help="print the report as JSON on stdout")


def _background(args: argparse.Namespace) -> int:
    from ..errors import IdmError

    run_dir = Path(args.out)
    if (run_dir / "checkpoint.pt").exists() and not (args.resume or args.overwrite):
        raise IdmError(f"{run_dir}: already holds a training run; pass --resume to continue it or --overwrite to restart")
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a != "--background"]
    if "train" not in argv:  # called programmatically: rebuild from args
        raise IdmError("--background works from the idm-host command line only")
    log = open(run_dir / "train.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "idm_host", *argv], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=os.getcwd())
    (run_dir / "train.pid").write_text(str(proc.pid))
    msg = {"pid": proc.pid, "log": str(run_dir / "train.log"), "run_dir": str(run_dir)}
    if args.json:
        print_json(msg)
    else:
        print(f"training in the background (pid {proc.pid}); log: {run_dir / 'train.log'}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..errors import IdmError

    if args.background:
        return _background(args)
    overrides = None
    if args.model_config:
        try:
            overrides = json.loads(args.model_config)
        except json.JSONDecodeError as exc:
            raise IdmError(f"--model-config is not valid JSON ({exc}); e.g. '{{\"synth_channels\": 16}}'") from exc
        if not isinstance(overrides, dict):
            raise IdmError("--model-config must be a JSON object, e.g. '{\"synth_channels\": 16}'")
    from ..train.data import DataConfig
    from ..train.loop import TrainOptions, train

    data = DataConfig.load(args.data)
    options = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device,
                           log_every=args.log_every, validate_every=args.validate_every,
                           max_minutes=args.max_minutes, init=args.init, seed=args.seed, model_config=overrides,
                           freeze_synth=args.freeze_synth)
    with progress_bar(args, "training") as cb:
        report = train(data, args.out, options, resume=args.resume, overwrite=args.overwrite, progress=cb)
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"step {report['step']} ({report['stopped_because']}), {report['s_per_step']} s/step on "
              f"{report['device']}; recent training loss {report['train_loss_recent_mean']}; best validation "
              f"loss {report['best_val_loss']} at step {report['best_step']}; model: {Path(args.out) / 'model.pt'}")
    return 0
