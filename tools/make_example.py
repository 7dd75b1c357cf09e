"""Re-render the bundled example loop ``examples/drum-loop.flac`` with :func:`idm_host.demo.make_example_loop`.

Usage:
    python tools/make_example.py [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from idm_host.demo import make_example_loop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "examples" / "drum-loop.flac"))
    args = ap.parse_args(argv)
    print(make_example_loop(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
