"""`python -m devstack demo [--keep]` (what `make demo` runs) and `python -m devstack up --repo PATH`: the dev wing's
command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the whole loop on this machine, with nothing but this repository")
    demo.add_argument("--keep", action="store_true", help="leave everything running and print the URLs")
    up = sub.add_parser("up", help="the whole loop around your own repository, until Ctrl-C")
    up.add_argument("--repo", type=Path, required=True, help="a git repository (every branch is imported)")
    up.add_argument(
        "--config",
        type=Path,
        help="a config template with ${WEB_URL} ${FORGE_URL} ${MLFLOW_URL} ${SLACK_URL} ${WORKSPACE_URL} "
        "(default: one made for the repository)",
    )
    up.add_argument("--name", help="owner/repo on the forge (default: acme/<directory name>)")
    up.add_argument("--workdir", type=Path, help="where the processes keep their data and logs (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.command == "up":
        from devstack.up import run_up

        return run_up(args.repo, config=args.config, name=args.name, workdir=args.workdir)
    from devstack.demo import run_demo

    return run_demo(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
