"""`python -m devstack demo [--keep]`: the dev wing's command line (what `make demo` runs)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the whole loop on this machine, with nothing but this repository")
    demo.add_argument("--keep", action="store_true", help="leave everything running and print the URLs")
    args = parser.parse_args(argv)
    from devstack.demo import run_demo

    return run_demo(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
