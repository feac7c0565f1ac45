"""Subcommands owned by the core package: `mt5db version`, `mt5db doctor`."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    version = subparsers.add_parser("version", help="print the installed components and versions")
    version.set_defaults(handler=_version)

    doctor = subparsers.add_parser(
        "doctor", help="report which real services and tools this machine can start, and why not"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(handler=_doctor)


def _version(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("mt5db-core", "mt5db-api", "mt5db-training", "mt5db-operator"):
        try:
            print(f"{name} {version(name)}")
        except PackageNotFoundError:
            print(f"{name} not installed")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from mt5db_core.doctor import render, run_checks

    checks = run_checks()
    print(render(checks, as_json=args.json))
    return 0
