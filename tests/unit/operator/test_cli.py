"""`mt5db operator`'s arguments."""

from __future__ import annotations

import argparse

import pytest

from mt5db_operator import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt5db")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_requires_a_scope_and_takes_several_namespaces() -> None:
    args = _parser().parse_args(["operator", "-n", "a", "--namespace", "b", "--metrics-port", "0"])
    assert args.namespaces == ["a", "b"] and not args.all_namespaces and args.metrics_port == 0
    assert _parser().parse_args(["operator", "-A"]).all_namespaces
    with pytest.raises(SystemExit):
        _parser().parse_args(["operator"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["operator", "-A", "-n", "x"])
