"""The one `mt5db` command. Each installed component adds its subcommands.

Components declare an entry point in the group `mt5db.commands` whose target is
`register(subparsers)`; it must stay cheap to import (no torch, no DB) because every
invocation loads all of them. A component that is not installed simply has no subcommand,
so the operator image offers `mt5db operator` without carrying torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt5db", description="MT5 Trading DB")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in sorted(entry_points(group="mt5db.commands"), key=lambda e: (e.name != "core", e.name)):
        entry.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
