"""TrainingRun without KubeRay: the batch/v1 Job fallback, its outcome and mirrored result."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .helpers import (
    EXAMPLES,
    condition,
    create,
    kubectl_env,
    load,
    mark_pods_succeeded,
    now,
    owned_by,
    pods,
    run_status,
    wait_for,
    wait_run_phase,
)

pytestmark = pytest.mark.kube


def test_example_run_falls_back_to_a_job_and_mirrors_the_result(
    operator: EmbeddedOperator, admin: Kube, namespace: str, kubectl: Path, kube: Any
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, stack, namespace)
    owner = create(admin, run, namespace)
    job = wait_for(lambda: admin.get("batch/v1", "Job", namespace, "rf-eurusd-h1"), 30, "training Job")
    assert owned_by(job, owner)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["mt5db", "train"]
    status = wait_for(
        lambda: (s := run_status(admin, namespace, "rf-eurusd-h1")).get("backend") and s, 20, "backend"
    )
    assert status["backend"] == "job"
    assert condition(status, "Submitted")["reason"] == "JobCreated"

    # The entrypoint leaves its result in the ConfigMap the operator created for it (a merge patch of
    # `data`, as mt5db_training.publish does: test_trainingrun_result.py runs the real publisher);
    # its pod exits 0; the Job completes (KCM).
    wait_for(lambda: admin.get("v1", "ConfigMap", namespace, "rf-eurusd-h1-result"), 20, "result ConfigMap")
    result = {"metrics": {"rmse": 0.00123, "hit_rate": 0.54}, "modelVersion": "rf-7", "primaryMetric": "rmse"}
    admin.call("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/rf-eurusd-h1-result",
               body={"data": {"result.json": json.dumps(result)}}, content_type="application/merge-patch+json")  # fmt: skip
    mark_pods_succeeded(admin, namespace, "mt5db.io/training-run=rf-eurusd-h1")
    status = wait_run_phase(admin, namespace, "rf-eurusd-h1", "Succeeded")
    assert condition(status, "Ready")["status"] == "True"
    assert status["metrics"] == {"rmse": 0.00123, "hit_rate": 0.54}
    assert status["modelVersion"] == "rf-7" and status["metric"] == "rmse=0.00123"
    assert status["completionTime"] and status["duration"].endswith("s")

    env = kubectl_env(kube)
    table = subprocess.run([str(kubectl), "-n", namespace, "get", "trainingruns"], capture_output=True, text=True,
                           env=env, check=True).stdout  # fmt: skip
    assert table.split("\n")[0].split() == ["NAME", "MODEL", "BACKEND", "PHASE", "METRIC", "AGE"], table
    assert "randomForest" in table and "Succeeded" in table and "rmse=0.00123" in table
    # Finished runs are never resubmitted, even when the Job goes away (TTL).
    admin.delete("batch/v1", "Job", namespace, "rf-eurusd-h1")
    wait_for(lambda: admin.get("batch/v1", "Job", namespace, "rf-eurusd-h1") is None, 20, "Job gone")
    assert run_status(admin, namespace, "rf-eurusd-h1")["phase"] == "Succeeded"
    assert admin.get("batch/v1", "Job", namespace, "rf-eurusd-h1") is None


def test_config_error_fails_the_run_through_pod_failure_policy(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, stack, namespace)
    create(admin, run, namespace)
    found = wait_for(lambda: pods(admin, namespace, "mt5db.io/training-run=rf-eurusd-h1"), 30, "training pod")
    stamp = now()
    pod = found[0]
    admin.call(
        "PATCH", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status",
        body={"status": {"phase": "Failed", "startTime": stamp, "containerStatuses": [
            {"name": "train", "image": pod["spec"]["containers"][0]["image"], "imageID": "", "ready": False,
             "restartCount": 0, "state": {"terminated": {"exitCode": 2, "reason": "Error",
                                                          "startedAt": stamp, "finishedAt": stamp}}}]}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    status = wait_run_phase(admin, namespace, "rf-eurusd-h1", "Failed")
    assert condition(status, "Ready")["reason"] == "Failed"
    assert "PodFailurePolicy" in status["message"]


def test_run_without_its_stack_waits_pending(operator: EmbeddedOperator, admin: Kube, namespace: str) -> None:
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, run, namespace)
    status = wait_run_phase(admin, namespace, "rf-eurusd-h1", "Pending", 20)
    assert condition(status, "StackReady")["reason"] == "StackNotFound"
    assert admin.get("batch/v1", "Job", namespace, "rf-eurusd-h1") is None
