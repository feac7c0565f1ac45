"""`mt5db demo`: the single-machine commands (the embedded default database). Cheap to import."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add this component's subcommands; keep imports inside handlers (cheap start-up)."""
    p = subparsers.add_parser(
        "demo",
        help="the trading loop on one machine: PostgreSQL, API, serving, replay, gated training, signals, executor",
    )
    p.add_argument("--data-dir", help="PostgreSQL data under this directory (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the data directory afterwards")
    p.add_argument("--csv", help="history file (default: ../shared/data/EURUSD_H1_2021-10-18_2024-12-31.csv)")
    p.add_argument("--batch", type=int, default=500)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from mt5db_local.demo import run_demo

    return run_demo(data_dir=args.data_dir, keep=args.keep, csv=args.csv, batch=args.batch)
