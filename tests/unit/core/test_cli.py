"""The one `mt5db` command: components register their subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mt5db_core import cli


def run_mt5db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mt5db_core.cli", *args], capture_output=True, text=True, check=False
    )


def test_version_lists_every_component() -> None:
    done = run_mt5db("version")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == [
        "mt5db-core",
        "mt5db-api",
        "mt5db-backup",
        "mt5db-training",
        "mt5db-operator",
        "mt5db-local",
    ]


def test_unknown_subcommand_is_a_usage_error() -> None:
    done = run_mt5db("no-such-command")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_registration_does_not_import_heavy_libraries() -> None:
    """Every invocation loads all registrations: they must not pull in torch, ray or kopf."""
    code = (
        "import sys; from mt5db_core.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch','ray','kopf','fastapi','sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_parser_requires_a_command() -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
