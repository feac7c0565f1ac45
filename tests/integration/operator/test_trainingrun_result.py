"""The training side's publisher writes `<run>-result` with the identity the operator gave the run's
pods, on the real control plane; the TrainingRun's status then shows the metrics and model version.

No kubelet runs pods here, so the test plays the pod: it mints a token for the run's
ServiceAccount (TokenRequest API, as the kubelet would for the projected volume), hands the
publisher the control plane's address and CA in place of the in-pod paths, then marks the Job's
pod Succeeded.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator
from mt5db_training import publish

from .helpers import (
    EXAMPLES,
    condition,
    create,
    load,
    mark_pods_succeeded,
    owned_by,
    pods,
    wait_for,
    wait_run_phase,
)

pytestmark = pytest.mark.kube

RUN = "rf-eurusd-h1"
SA = f"{RUN}-trainer"


def _report() -> dict[str, Any]:
    """A finished RF run's report, reduced to what the result document reads."""
    block = {
        "regression": {
            "random_forest": {"r2_oos": -0.0006, "r2_oos_ci95": [-0.0249, 0.0246], "mae": 1.194e-3},
            "zero": {"r2_oos": 0.0, "mae": 1.175e-3},
            "persistence": {"r2_oos": -0.973},
        },
        "classification": {
            "random_forest": {"auc": 0.526, "auc_ci95": [0.502, 0.55]},
            "logistic_regression": {"auc": 0.494},
        },
        "backtest": {
            "random_forest": {"trades": 526, "total_net_pips": 40.2, "total_net_pips_ci95": [-646.0, 821.0]},
            "always_long": {"total_net_pips": -783.0},
            "always_short": {"total_net_pips": -907.0},
        },
        "verdict": "does not beat baselines",
    }
    return {
        "run": RUN, "algo": "random_forest", "task": "regression",
        "data": {"symbol": "EURUSD", "timeframe": "H1"}, "horizons": {"5": block},
        "artifacts": {"5": {"sha256": "c" * 64}}, "verdict": "does not beat baselines (any horizon)",
    }  # fmt: skip


def _pod_files(tmp_path: Path, token: str, namespace: str) -> dict[str, Path]:
    """What the kubelet would mount at /var/run/secrets/kubernetes.io/serviceaccount."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "token").write_text(token)
    (tmp_path / "namespace").write_text(namespace)
    return {"token_path": tmp_path / "token", "namespace_path": tmp_path / "namespace"}


def _as_pod(kube: Any, configmap: str) -> dict[str, str]:
    url = urllib.parse.urlsplit(kube.server)
    return {
        "KUBERNETES_SERVICE_HOST": str(url.hostname),
        "KUBERNETES_SERVICE_PORT": str(url.port),
        publish.ENV_CONFIGMAP: configmap,
        publish.ENV_RUN_NAME: RUN,
    }


def _raw(kube: Any, token: str, method: str, path: str, body: dict[str, Any], content_type: str) -> int:
    req = urllib.request.Request(  # noqa: S310 - the test's own control plane
        f"{kube.server}{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(kube.ca_file))
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_publisher_writes_the_result_with_the_runs_identity_only(
    operator: EmbeddedOperator, admin: Kube, namespace: str, kube: Any, tmp_path: Path
) -> None:
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    create(admin, stack, namespace)
    owner = create(admin, run, namespace)
    job = wait_for(lambda: admin.get("batch/v1", "Job", namespace, RUN), 30, "training Job")
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == SA and pod_spec["automountServiceAccountToken"] is True
    # The pod was admitted with that ServiceAccount (it existed before the Job).
    (pod,) = wait_for(lambda: pods(admin, namespace, f"mt5db.io/training-run={RUN}"), 30, "training pod")
    assert pod["spec"]["serviceAccountName"] == SA

    sa = admin.get("v1", "ServiceAccount", namespace, SA)
    role = admin.get("rbac.authorization.k8s.io/v1", "Role", namespace, SA)
    binding = admin.get("rbac.authorization.k8s.io/v1", "RoleBinding", namespace, SA)
    result_cm = admin.get("v1", "ConfigMap", namespace, f"{RUN}-result")
    for obj in (sa, role, binding, result_cm):
        assert obj is not None and owned_by(obj, owner)
    assert role is not None and role["rules"][0]["resourceNames"] == [f"{RUN}-result"]
    assert not (result_cm or {}).get("data")

    minted = admin.call(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{SA}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}},
    )  # fmt: skip
    token = minted["status"]["token"]
    files = _pod_files(tmp_path, token, namespace)
    report_dir = tmp_path / "run"
    report_dir.mkdir()
    from mt5db_training.registry import Registered

    registered = Registered("rf_ret_EURUSD_H1", 4, 11, "EURUSD", "H1", "rf", "challenger", "challenger",
                            "does not beat its baselines after costs at h=5")  # fmt: skip
    expected = publish.result_document(_report(), registered=registered)
    rc = publish.publish_document(expected, report_dir, env=_as_pod(kube, f"{RUN}-result"), ca_path=kube.ca_file,
                                  **files)  # fmt: skip
    assert rc == 0
    written = admin.get("v1", "ConfigMap", namespace, f"{RUN}-result")
    assert written is not None and json.loads(written["data"]["result.json"]) == expected
    assert owned_by(written, owner), "the merge patch keeps the operator's ownerReference"
    # Publishing twice (a retried entrypoint) replaces the document.
    assert publish.publish_document(expected, report_dir, env=_as_pod(kube, f"{RUN}-result"),
                                    ca_path=kube.ca_file, **files) == 0  # fmt: skip

    # The same token may not write any other ConfigMap: not patch, not update, not create.
    create(admin, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someone-else"},
                   "data": {"k": "v"}}, namespace)  # fmt: skip
    for name in ("someone-else", "other-result"):  # existing, and absent (PATCH, then POST on 404)
        with pytest.raises(publish.PublishError, match="HTTP 403"):
            publish.write_result_configmap(
                expected, env=_as_pod(kube, name), ca_path=kube.ca_file, attempts=1, **files
            )
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "other-result"},
        "data": {"a": "b"},
    }
    assert _raw(kube, token, "POST", base, other, "application/json") == 403
    mine = {**other, "metadata": {"name": "someone-else"}}
    assert _raw(kube, token, "PUT", f"{base}/someone-else", mine, "application/json") == 403
    assert _raw(kube, token, "PATCH", f"{base}/someone-else", {"data": {"x": "y"}},
                "application/merge-patch+json") == 403  # fmt: skip
    assert (admin.get("v1", "ConfigMap", namespace, "someone-else") or {}).get("data") == {"k": "v"}
    assert admin.get("v1", "ConfigMap", namespace, "other-result") is None

    # With an identity that may create (the admin), an absent ConfigMap is created (PATCH 404 → POST).
    admin_files = _pod_files(tmp_path / "admin", kube.admin.token, namespace)
    assert publish.write_result_configmap(expected, env=_as_pod(kube, "made-by-post"), ca_path=kube.ca_file,
                                          **admin_files) == f"{namespace}/made-by-post"  # fmt: skip
    made = admin.get("v1", "ConfigMap", namespace, "made-by-post") or {}
    assert json.loads(made["data"]["result.json"]) == expected
    assert made["metadata"]["labels"]["mt5db.io/training-run"] == RUN

    mark_pods_succeeded(admin, namespace, f"mt5db.io/training-run={RUN}")
    status = wait_run_phase(admin, namespace, RUN, "Succeeded")
    assert condition(status, "Ready")["status"] == "True"
    assert status["metrics"] == expected["metrics"]
    assert status["metrics"]["r2_oos_h5"] == -0.0006 and status["metrics"]["auc_h5"] == 0.526
    assert status["metric"] == "r2_oos_h5=-0.0006"
    assert status["modelVersion"] == "rf_ret_EURUSD_H1:v4"
    # what the gate did with the version, per symbol
    assert status["models"] == [{"symbol": "EURUSD", "timeframe": "H1", "version": "rf_ret_EURUSD_H1:v4",
                                 "alias": "challenger", "promoted": False,
                                 "reason": "does not beat its baselines after costs at h=5"}]  # fmt: skip


def test_a_job_submitted_before_the_trainer_identity_is_followed_as_it_is(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    """Upgrade: an in-flight run's Job (pod template immutable) from an operator without `r-trainer`."""
    from mt5db_operator.resources import trainingrun as tr
    from mt5db_operator.specs import Meta, TradingStackSpec, TrainingRunSpec

    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (run,) = load(EXAMPLES / "trainingrun.yaml")
    old = tr.build_job(
        TrainingRunSpec.parse(run["spec"], Meta(RUN, namespace)),
        TradingStackSpec.parse(stack["spec"], Meta(stack["metadata"]["name"], namespace)),
    )
    pod_spec = old["spec"]["template"]["spec"]
    del pod_spec["serviceAccountName"]
    pod_spec["automountServiceAccountToken"] = False
    create(admin, old, namespace)
    create(admin, stack, namespace)
    create(admin, run, namespace)
    wait_for(lambda: admin.get("v1", "ServiceAccount", namespace, SA), 30, "trainer ServiceAccount")
    status = wait_for(lambda: (s := (admin.get("mt5db.io/v1alpha1", "TrainingRun", namespace, RUN) or {})
                               .get("status") or {}).get("backend") and s, 30, "backend")  # fmt: skip
    assert condition(status, "Submitted")["reason"] == "JobCreated"
    job = admin.get("batch/v1", "Job", namespace, RUN)
    assert job is not None and "serviceAccountName" not in job["spec"]["template"]["spec"]
    mark_pods_succeeded(admin, namespace, f"mt5db.io/training-run={RUN}")
    status = wait_run_phase(admin, namespace, RUN, "Succeeded")
    assert status["metrics"] == {}  # nothing was published by that pod
