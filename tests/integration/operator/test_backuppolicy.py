"""BackupPolicy: the CronJob, the PVC destination, and run history in status."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .helpers import (
    EXAMPLES,
    GV,
    condition,
    create,
    kubectl_env,
    load,
    mark_pods_succeeded,
    owned_by,
    stack_status,
    wait_for,
)

pytestmark = pytest.mark.kube


def policy_status(admin: Kube, ns: str, name: str) -> dict[str, Any]:
    return (admin.get(GV, "BackupPolicy", ns, name) or {}).get("status") or {}


def test_example_policies_schedule_backups_and_record_runs(
    operator: EmbeddedOperator, admin: Kube, namespace: str, kubectl: Path, kube: Any
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (policy,) = load(EXAMPLES / "backuppolicy.yaml")
    (s3,) = load(EXAMPLES / "backuppolicy-s3.yaml")
    create(admin, stack, namespace)
    owner = create(admin, policy, namespace)
    create(admin, s3, namespace)
    cron = wait_for(
        lambda: admin.get("batch/v1", "CronJob", namespace, "trading-nightly-backup"), 30, "CronJob"
    )
    assert owned_by(cron, owner)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["spec"]["startingDeadlineSeconds"] == 300
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    pvc = wait_for(
        lambda: admin.get("v1", "PersistentVolumeClaim", namespace, "trading-nightly-backups"), 20, "PVC"
    )
    assert not pvc["metadata"].get("ownerReferences"), "backups outlive their policy"
    s3_cron = wait_for(
        lambda: admin.get("batch/v1", "CronJob", namespace, "trading-hourly-s3-backup"), 30, "s3 CronJob"
    )
    s3_container = s3_cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "s3://mt5db-backups/trading/hourly" in s3_container["command"]

    status = wait_for(lambda: (s := policy_status(admin, namespace, "trading-nightly")).get("phase") == "Ready" and s,
                      20, "policy Ready")  # fmt: skip
    assert condition(status, "LastBackupSucceeded")["reason"] == "NoRunsYet"
    assert status["nextScheduleTime"].endswith("T03:00:00Z")

    # A run, as `kubectl create job --from=cronjob/...` makes it: the CronJob's template, owned by it.
    template = copy.deepcopy(cron["spec"]["jobTemplate"])
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "trading-nightly-backup-manual", "labels": template["metadata"]["labels"],
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron["metadata"]["name"],
                                             "uid": cron["metadata"]["uid"], "controller": True}]},
           "spec": template["spec"]}  # fmt: skip
    create(admin, job, namespace)
    mark_pods_succeeded(admin, namespace, "mt5db.io/backup-policy=trading-nightly")
    status = wait_for(lambda: (s := policy_status(admin, namespace, "trading-nightly")).get("lastSuccessTime") and s,
                      40, "lastSuccessTime")  # fmt: skip
    # No kubelet here, so no log holds the run's result: the dumps kept are unknown, not guessed.
    assert "kept" not in status and "lastBackup" not in status
    assert status["recentRuns"][0]["name"] == "trading-nightly-backup-manual"
    assert status["recentRuns"][0]["phase"] == "Succeeded"
    assert condition(status, "LastBackupSucceeded")["reason"] == "BackupSucceeded"
    wait_for(
        lambda: "BackupSucceeded" in {e["reason"] for e in admin.list("v1", "Event", namespace)
                                      if e["involvedObject"].get("name") == "trading-nightly"},
        20, "BackupSucceeded event",
    )  # fmt: skip
    # The stack shows its last backup.
    wait_for(lambda: stack_status(admin, namespace, "trading").get("lastBackupTime") == status["lastSuccessTime"],
             20, "stack lastBackupTime")  # fmt: skip

    env = kubectl_env(kube)
    table = subprocess.run([str(kubectl), "-n", namespace, "get", "backuppolicies"], capture_output=True, text=True,
                           env=env, check=True).stdout  # fmt: skip
    assert table.split("\n")[0].split() == ["NAME", "SCHEDULE", "LAST", "SUCCESS", "NEXT", "KEPT", "AGE"], (
        table
    )

    # Suspending the policy suspends the CronJob.
    admin.call("PATCH", f"/apis/{GV}/namespaces/{namespace}/backuppolicies/trading-nightly",
               body={"spec": {"suspend": True}}, content_type="application/merge-patch+json")  # fmt: skip
    wait_for(lambda: admin.get("batch/v1", "CronJob", namespace, "trading-nightly-backup")["spec"]["suspend"] is True,
             20, "CronJob suspended")  # fmt: skip
    wait_for(
        lambda: policy_status(admin, namespace, "trading-nightly").get("phase") == "Suspended",
        20,
        "Suspended",
    )
