"""Handler helpers and the CLI, without a cluster."""

from __future__ import annotations

import argparse

import pytest

from mt5db_operator import cli
from mt5db_operator import constants as c
from mt5db_operator.context import Context, Options
from mt5db_operator.handlers import edited_by_someone_else, owners_of
from mt5db_operator.instruments import OperatorMetrics


def test_owners_of_direct_children_and_cronjob_runs() -> None:
    child = {
        "metadata": {"ownerReferences": [{"apiVersion": c.API_VERSION, "kind": c.KIND_STACK, "name": "s"}]}
    }
    assert owners_of(child) == [(c.KIND_STACK, "s")]
    run = {"metadata": {"labels": {c.LABEL_POLICY: "nightly"},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly-backup"}]}}  # fmt: skip
    assert owners_of(run) == [(c.KIND_POLICY, "nightly")]
    assert (
        owners_of(
            {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"}]}}
        )
        == []
    )


def test_edits_by_others_are_told_from_our_own_echo() -> None:
    ours = {"metadata": {"managedFields": [{"manager": c.FIELD_MANAGER, "operation": "Apply"},
                                           {"manager": "kube-controller-manager", "subresource": "status"}]}}  # fmt: skip
    assert not edited_by_someone_else(ours)
    edited = {
        "metadata": {
            "managedFields": [
                {"manager": c.FIELD_MANAGER},
                {"manager": "kubectl-edit", "operation": "Update"},
            ]
        }
    }
    assert edited_by_someone_else(edited)


def test_coalescing_runs_again_when_dirty_and_never_concurrently() -> None:
    ctx = Context(kube=None, capabilities=None, metrics=OperatorMetrics(), options=Options())  # type: ignore[arg-type]
    calls: list[int] = []

    def work() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            # A second trigger while the first pass runs: not run concurrently, but once more after.
            assert ctx.coalesced("k", lambda: calls.append(-1)) is False

    assert ctx.coalesced("k", work) is True
    assert calls == [0, 1]


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
