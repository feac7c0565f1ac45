"""Handler helpers, without a cluster: which owner a child event is for, and whose edit it was."""

from __future__ import annotations

from mt5db_operator import constants as c
from mt5db_operator.handlers import edited_by_someone_else, owners_of


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
