"""Rebuild the files the checkout ships (the library itself never writes into the source tree).

Usage:
    python tools/make_assets.py kits [--out FOLDER] [--overwrite]   # presets/kits/ (idm_host.kitgen)
    python tools/make_assets.py example [--out FILE]                # examples/drum-loop.flac (idm_host.demo)
    python tools/make_assets.py one-shots [--model NAME]            # idm_host/models/one-shots/ (kit_cache)

``one-shots`` (re)writes the shipped default model's one-shots and removes the entries of kits the
model no longer snaps to.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_kits(args: argparse.Namespace) -> None:
    from idm_host.kitgen import KITS, write_kit

    for name in KITS:
        print(write_kit(name, args.out, overwrite=args.overwrite))


def make_example(args: argparse.Namespace) -> None:
    from idm_host.demo import make_example_loop

    print(make_example_loop(args.out))


def ship_one_shots(args: argparse.Namespace) -> None:
    from idm_host.engine import Separator
    from idm_host.kit_cache import SHIPPED_DIR, SUFFIX, precompute

    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    keep = {p.name for p in precompute(Separator(args.model, device="cpu"), folder=SHIPPED_DIR)}
    for old in SHIPPED_DIR.glob(f"*{SUFFIX}"):
        if old.name not in keep:
            old.unlink()
    print(f"{len(keep)} kits in {SHIPPED_DIR}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    kits = sub.add_parser("kits", help="the synthesised kits")
    kits.add_argument("--out", default=str(REPO / "presets" / "kits"))
    kits.add_argument("--overwrite", action="store_true")
    kits.set_defaults(run=make_kits)
    example = sub.add_parser("example", help="the bundled example loop")
    example.add_argument("--out", default=str(REPO / "examples" / "drum-loop.flac"))
    example.set_defaults(run=make_example)
    shots = sub.add_parser("one-shots", help="the default model's shipped one-shots")
    shots.add_argument("--model", default="default")
    shots.set_defaults(run=ship_one_shots)
    args = ap.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
