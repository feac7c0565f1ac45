"""Subcommands owned by the core package: `mt5db version`."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    version = subparsers.add_parser("version", help="print the installed components and versions")
    version.set_defaults(handler=_version)


def _version(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    for name in (
        "mt5db-core",
        "mt5db-api",
        "mt5db-backup",
        "mt5db-training",
        "mt5db-operator",
        "mt5db-local",
    ):
        try:
            print(f"{name} {version(name)}")
        except PackageNotFoundError:
            print(f"{name} not installed")
    return 0
