"""`mt5db doctor` (a development command: installed with the test harness, never in an image)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the harness's subcommands."""
    doctor = subparsers.add_parser(
        "doctor", help="report which real services and tools this machine can start, and why not"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from mt5db_harness.doctor import render, run_checks

    checks = run_checks()
    print(render(checks, as_json=args.json))
    return 0
