"""Write the synthesised kits (:mod:`idm_host.kitgen`) into the checkout's ``presets/kits/``.

Usage:
    python tools/make_kits.py [--out FOLDER] [--overwrite]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from idm_host.kitgen import KITS, write_kit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "presets" / "kits"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    for name in KITS:
        print(write_kit(name, args.out, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
