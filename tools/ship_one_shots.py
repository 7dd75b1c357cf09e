"""(Re)write the shipped default model's one-shots into the checkout's ``idm_host/models/one-shots/``
(see :mod:`idm_host.kit_cache`); entries of kits the model no longer snaps to are removed.

Usage:
    python tools/ship_one_shots.py [--model NAME]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from idm_host.engine import Separator
    from idm_host.kit_cache import SHIPPED_DIR, SUFFIX, precompute

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    args = ap.parse_args(argv)
    sep = Separator(args.model, device="cpu")
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    keep = {p.name for p in precompute(sep, folder=SHIPPED_DIR)}
    for old in SHIPPED_DIR.glob(f"*{SUFFIX}"):
        if old.name not in keep:
            old.unlink()
    print(f"{len(keep)} kits in {SHIPPED_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
