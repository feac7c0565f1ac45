"""Optional integrations with the real upstream CRDs, fetched at test time from their Go modules
(never copied into this repository): Prometheus Operator (ServiceMonitor, PrometheusRule) and
KubeRay (RayJob). The CRDs are removed again afterwards so other tests see them missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mt5db_harness.prometheus import LocalPrometheus
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .helpers import EXAMPLES, GV, condition, create, install_crds, load, owned_by, stack_status, wait_for

pytestmark = pytest.mark.kube

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
KUBERAY = "github.com/ray-project/kuberay/ray-operator@v1.5.0"


def module_dir(module: str) -> Path:
    """`go mod download` into the shared module cache, from a throwaway module dir."""
    if not shutil.which("go"):
        pytest.skip("go not found: needed to fetch upstream CRDs from their Go modules")
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "go.mod").write_text("module mt5db.local/crdfetch\n\ngo 1.22\n")
        done = subprocess.run(
            ["go", "mod", "download", "-json", module], cwd=work, capture_output=True, text=True,
            env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=600, check=False,
        )  # fmt: skip
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or not info.get("Dir"):
        pytest.skip(f"cannot download {module}: {info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def remove_crds(admin: Kube, docs: list[dict[str, Any]]) -> None:
    for crd in docs:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
        admin.call("DELETE", path)
    for crd in docs:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
        wait_for(lambda path=path: _absent(admin, path), 60, f"{path} removed")


def _absent(admin: Kube, path: str) -> bool:
    try:
        admin.call("GET", path)
    except Exception:
        return True
    return False


@pytest.fixture
def prometheus_crds(admin: Kube, mt5db_crds: Any) -> Iterator[None]:
    base = module_dir(PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
    docs = [
        yaml.safe_load((base / f"monitoring.coreos.com_{n}.yaml").read_text())
        for n in ("servicemonitors", "prometheusrules")
    ]
    install_crds(admin, docs)
    yield
    remove_crds(admin, docs)


@pytest.fixture
def kuberay_crds(admin: Kube, mt5db_crds: Any) -> Iterator[None]:
    docs = [
        yaml.safe_load((module_dir(KUBERAY) / "config" / "crd" / "bases" / "ray.io_rayjobs.yaml").read_text())
    ]
    install_crds(admin, docs)
    yield
    remove_crds(admin, docs)


@pytest.mark.prometheus
def test_monitoring_objects_with_prometheus_operator_crds(
    prometheus_crds: None, operator: EmbeddedOperator, admin: Kube, namespace: str,
    prometheus: LocalPrometheus, tmp_path: Path,
) -> None:  # fmt: skip
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    owner = create(admin, stack, namespace)
    sm = wait_for(
        lambda: admin.get("monitoring.coreos.com/v1", "ServiceMonitor", namespace, "trading-api"),
        30,
        "ServiceMonitor",
    )
    rule = wait_for(
        lambda: admin.get("monitoring.coreos.com/v1", "PrometheusRule", namespace, "trading-rules"),
        30,
        "PrometheusRule",
    )
    assert owned_by(sm, owner) and owned_by(rule, owner)
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    mon = wait_for(lambda: (c := condition(stack_status(admin, namespace, "trading"), "MonitoringReady")) and c["status"] == "True" and c,
                   20, "MonitoringReady=True")  # fmt: skip
    assert mon["reason"] == "Applied"
    # The rules as stored by the apiserver pass promtool.
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = prometheus.promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr


def test_rayjob_with_kuberay_crds_and_its_outcome(
    kuberay_crds: None, operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, stack, namespace)
    owner = create(admin, run, namespace)
    rj = wait_for(lambda: admin.get("ray.io/v1", "RayJob", namespace, "rf-eurusd-h1"), 30, "RayJob")
    assert owned_by(rj, owner)
    assert rj["spec"]["entrypoint"].startswith("python -m mt5db_training.ray_entry --run rf-eurusd-h1")
    assert rj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] == 1
    # KubeRay's schema keeps the run's identity on every pod template (nothing pruned).
    head = rj["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    submitter = rj["spec"]["submitterPodTemplate"]["spec"]
    assert head["serviceAccountName"] == submitter["serviceAccountName"] == "rf-eurusd-h1-trainer"
    assert head["automountServiceAccountToken"] is True and submitter["automountServiceAccountToken"] is False
    assert submitter["containers"][0]["name"] == "ray-job-submitter"
    assert admin.get("batch/v1", "Job", namespace, "rf-eurusd-h1") is None
    status = wait_for(lambda: (s := (admin.get(GV, "TrainingRun", namespace, "rf-eurusd-h1") or {}).get("status")) and s.get("backend") and s,
                      20, "backend chosen")  # fmt: skip
    assert status["backend"] == "ray" and condition(status, "Submitted")["reason"] == "RayJobCreated"

    def set_rayjob(job_status: str, deployment: str) -> None:
        admin.call(
            "PATCH", f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/rf-eurusd-h1/status",
            body={"status": {"jobStatus": job_status, "jobDeploymentStatus": deployment}},
            content_type="application/merge-patch+json",
        )  # fmt: skip

    def phase() -> str:
        return str(
            ((admin.get(GV, "TrainingRun", namespace, "rf-eurusd-h1") or {}).get("status") or {}).get("phase")
        )

    # Ray says SUCCEEDED but KubeRay is still running the deployment: not done yet.
    set_rayjob("SUCCEEDED", "Running")
    wait_for(lambda: phase() == "Running", 20, "Running while jobDeploymentStatus is Running")
    set_rayjob("SUCCEEDED", "Complete")
    wait_for(lambda: phase() == "Succeeded", 20, "Succeeded")


def test_rayjob_failure_when_fields_disagree(
    kuberay_crds: None, operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, stack, namespace)
    create(admin, run, namespace)
    wait_for(lambda: admin.get("ray.io/v1", "RayJob", namespace, "rf-eurusd-h1"), 30, "RayJob")
    # KubeRay #2314: jobStatus RUNNING while the deployment already failed -> Failed.
    admin.call(
        "PATCH", f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/rf-eurusd-h1/status",
        body={"status": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    status = wait_for(
        lambda: (s := (admin.get(GV, "TrainingRun", namespace, "rf-eurusd-h1") or {}).get("status") or {}).get("phase") == "Failed" and s,
        20, "Failed",
    )  # fmt: skip
    assert "DeadlineExceeded" in status["message"]
