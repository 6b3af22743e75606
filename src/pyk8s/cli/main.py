"""The `pyk8s` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pyk8s


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyk8s", description="A Kubernetes-compatible cluster manager written in Python."
    )
    parser.add_argument("--version", action="version", version=f"pyk8s {pyk8s.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from pyk8s.cli import agent, images, server

    server.add_parser(sub)
    agent.add_parser(sub)
    images.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
