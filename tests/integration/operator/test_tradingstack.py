"""TradingStack on the real apiserver: children, readiness from real child status, drift,
image roll-out, suspend, secrets generated once, garbage collection and PVC retention.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mt5db_core.paths import PUBLIC_PATHS
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .helpers import (
    CHILDREN,
    EXAMPLES,
    children_of,
    condition,
    create,
    kubectl_env,
    load,
    mark_pods_ready,
    mark_pods_succeeded,
    owned_by,
    stack_status,
    wait_for,
)

pytestmark = pytest.mark.kube


def example_stack(name: str | None = None, **spec_overrides: Any) -> dict[str, Any]:
    (body,) = load(EXAMPLES / "tradingstack.yaml")
    body = copy.deepcopy(body)
    if name:
        body["metadata"]["name"] = name
    body["spec"].update(spec_overrides)
    return body


def make_ready(admin: Kube, ns: str, name: str, api_pods: int = 2) -> None:
    """Play kubelet for the stack's pods: DB and API Ready, migration Job's pod exits 0."""
    mark_pods_ready(admin, ns, f"app.kubernetes.io/instance={name},app.kubernetes.io/component=database")
    mark_pods_succeeded(admin, ns, f"app.kubernetes.io/instance={name},app.kubernetes.io/component=migrate")
    mark_pods_ready(
        admin, ns, f"app.kubernetes.io/instance={name},app.kubernetes.io/component=api", expect=api_pods
    )


def wait_phase(admin: Kube, ns: str, name: str, phase: str, timeout: float = 45) -> dict[str, Any]:
    return wait_for(
        lambda: (s := stack_status(admin, ns, name)).get("phase") == phase and s,
        timeout, f"TradingStack {name} phase {phase}",
    )  # fmt: skip


def test_example_stack_becomes_ready_with_owned_children(
    operator: EmbeddedOperator, admin: Kube, namespace: str, kubectl: Path, kube: Any
) -> None:
    owner = create(admin, example_stack(), namespace)
    found = wait_for(
        lambda: len(c := children_of(admin, namespace, "trading")) == len(CHILDREN) and c, 30, "all children"
    )
    assert all(owned_by(obj, owner) for obj in found.values())
    ingress = wait_for(
        lambda: admin.get("networking.k8s.io/v1", "Ingress", namespace, "trading-api"), 10, "ingress"
    )
    assert ingress["spec"]["rules"][0]["host"] == "mt5db.example.com"
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [(p, "Exact") for p in PUBLIC_PATHS]
    policy = found[("NetworkPolicy", "trading-api")]["spec"]
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in policy["ingress"][0]["from"] if "namespaceSelector" in peer
    ]  # fmt: skip
    assert namespaces == ["ingress-nginx", "monitoring"]  # the CRD's defaults, applied by the apiserver
    # The API starts at minReplicas (bootstrap create), and the HPA targets it.
    assert found[("Deployment", "trading-api")]["spec"]["replicas"] == 2

    status = wait_phase(admin, namespace, "trading", "Provisioning")
    assert condition(status, "Ready")["status"] == "False"
    monitoring = condition(status, "MonitoringReady")
    assert monitoring["status"] == "False" and monitoring["reason"] == "CRDsMissing"

    make_ready(admin, namespace, "trading")
    status = wait_phase(admin, namespace, "trading", "Ready")
    ready = condition(status, "Ready")
    assert ready["status"] == "True" and ready["reason"] == "AllComponentsReady"
    assert status["observedGeneration"] == owner["metadata"]["generation"]
    assert all(c["observedGeneration"] == status["observedGeneration"] for c in status["conditions"])
    assert condition(status, "MonitoringReady")["reason"] == "CRDsMissing", "monitoring is optional"
    assert status["db"] == "1/1" and status["api"] == "2/2"

    # A new API image: Upgrading while the new ReplicaSet and migration Job roll, then Ready again.
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/trading",
        body={"spec": {"api": {"image": "ghcr.io/mt5db/mt5db-api:0.1.1"}}}, content_type="application/merge-patch+json",
    )  # fmt: skip
    status = wait_phase(admin, namespace, "trading", "Upgrading")
    assert condition(status, "Ready")["status"] == "True", "maxUnavailable 0: still serving while upgrading"

    def roll_on() -> bool:
        # Each new pod that becomes Ready lets the Deployment controller replace one more old one.
        make_ready(admin, namespace, "trading", api_pods=1)
        return stack_status(admin, namespace, "trading").get("phase") == "Ready"

    wait_for(roll_on, 60, "Ready after the roll-out", every=0.5)
    dep = admin.get("apps/v1", "Deployment", namespace, "trading-api")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.1")

    env = kubectl_env(kube)
    waited = subprocess.run(
        [str(kubectl), "-n", namespace, "wait", "--for=condition=Ready", "tradingstack/trading", "--timeout=30s"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    table = subprocess.run([str(kubectl), "-n", namespace, "get", "tradingstacks"],
                           capture_output=True, text=True, env=env, check=True).stdout  # fmt: skip
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "READY", "PHASE", "DB", "API", "LAST"], table
    assert "trading" in table and "Ready" in table and "2/2" in table

    events = admin.list("v1", "Event", namespace)
    reasons = {e["reason"] for e in events if e["involvedObject"].get("name") == "trading"}
    assert {"Provisioning", "Ready"} <= reasons, reasons

    # Secrets: the hash Secret holds SHA-256 of the key, and the migration Job sees only the hash.
    key = admin.get("v1", "Secret", namespace, "trading-api-key")
    hashed = admin.get("v1", "Secret", namespace, "trading-api-key-hash")
    secret_key = base64.b64decode(key["data"]["api-key"]).decode()
    assert (
        base64.b64decode(hashed["data"]["key-hash"]).decode()
        == hashlib.sha256(secret_key.encode()).hexdigest()
    )
    assert "api-key" not in hashed["data"]


def test_drift_is_corrected_and_image_change_rolls_the_api(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    create(admin, example_stack("drift"), namespace)
    wait_for(lambda: len(children_of(admin, namespace, "drift")) == len(CHILDREN), 30, "children")
    creds_before = admin.get("v1", "Secret", namespace, "drift-db-credentials")["data"]

    # A deleted child comes back.
    svc = admin.get("v1", "Service", namespace, "drift-api")
    admin.delete("v1", "Service", namespace, "drift-api")
    back = wait_for(
        lambda: (s := admin.get("v1", "Service", namespace, "drift-api")) and s["metadata"]["uid"] != svc["metadata"]["uid"] and s,
        20, "Service drift-api re-created",
    )  # fmt: skip
    assert back["spec"]["selector"] == svc["spec"]["selector"]

    # An edited child is reverted (another field manager changed a field we own).
    admin.call(
        "PATCH", f"/apis/apps/v1/namespaces/{namespace}/statefulsets/drift-db",
        body={"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}},
        query=[("fieldManager", "someone-else")], content_type="application/merge-patch+json",
    )  # fmt: skip
    wait_for(
        lambda: admin.get("apps/v1", "StatefulSet", namespace, "drift-db")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60,
        20, "StatefulSet edit reverted",
    )  # fmt: skip

    # HPA-owned replicas are not fought over: a scale by someone else stays.
    admin.call(
        "PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/drift-api/scale",
        body={"spec": {"replicas": 5}}, content_type="application/merge-patch+json",
    )  # fmt: skip

    # Changing the image rolls the Deployment and runs a new migration Job.
    jobs_before = {j["metadata"]["name"] for j in admin.list("batch/v1", "Job", namespace)}
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/drift",
        body={"spec": {"api": {"image": "ghcr.io/mt5db/mt5db-api:0.2.0"}}}, content_type="application/merge-patch+json",
    )  # fmt: skip
    dep = wait_for(
        lambda: (d := admin.get("apps/v1", "Deployment", namespace, "drift-api"))
        and d["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0") and d,
        20, "Deployment rolled to 0.2.0",
    )  # fmt: skip
    assert dep["spec"]["replicas"] == 5, "the operator never resets replicas the HPA (or a user) owns"
    jobs_after = wait_for(
        lambda: (j := {x["metadata"]["name"] for x in admin.list("batch/v1", "Job", namespace)}) != jobs_before and j,
        20, "new migration Job",
    )  # fmt: skip
    assert len(jobs_after) == 1 and jobs_after.isdisjoint(jobs_before)
    assert admin.get("v1", "Secret", namespace, "drift-db-credentials")["data"] == creds_before, (
        "never regenerated"
    )

    # A PostgreSQL major change by image tag is refused with a condition; the DB keeps its image.
    def db_image() -> str:
        sts = admin.get("apps/v1", "StatefulSet", namespace, "drift-db")
        return str(sts["spec"]["template"]["spec"]["containers"][0]["image"])

    before = db_image()
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/drift",
        body={"spec": {"database": {"image": "timescale/timescaledb-ha:pg17.2-ts2.17.2-all"}}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    refused = wait_for(
        lambda: (c := condition(stack_status(admin, namespace, "drift"), "DatabaseVersionSupported"))
        and c["status"] == "False" and c,
        20, "DatabaseVersionSupported=False",
    )  # fmt: skip
    assert refused["reason"] == "UnsupportedVersionChange" and "major 16 -> 17" in refused["message"]
    assert db_image() == before

    # Growing storage keeps the StatefulSet's (immutable) claim template and never fails the apply;
    # a rate-limit change (in the migration Job's env) gets a new Job instead of an immutable-field error.
    migrate_before = {j["metadata"]["name"] for j in admin.list("batch/v1", "Job", namespace)}
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/drift",
        body={"spec": {"database": {"storage": {"size": "40Gi"}}, "api": {"rateLimit": {"burst": 300}}}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    generation = admin.get("mt5db.io/v1alpha1", "TradingStack", namespace, "drift")["metadata"]["generation"]
    status = wait_for(
        lambda: (s := stack_status(admin, namespace, "drift")).get("observedGeneration") == generation and s,
        20, "new generation observed",
    )  # fmt: skip
    assert "ApplyFailed" not in {c["reason"] for c in status["conditions"]}, status
    sts = admin.get("apps/v1", "StatefulSet", namespace, "drift-db")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    wait_for(
        lambda: (names := {j["metadata"]["name"] for j in admin.list("batch/v1", "Job", namespace)})
        and len(names) == 1 and names.isdisjoint(migrate_before),
        20, "migration Job replaced",
    )  # fmt: skip


def test_suspend_scales_api_to_zero_and_keeps_the_database(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    create(admin, example_stack("sleepy"), namespace)
    wait_for(
        lambda: admin.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "sleepy-api"), 30, "HPA"
    )
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/sleepy",
        body={"spec": {"suspend": True}}, content_type="application/merge-patch+json",
    )  # fmt: skip
    status = wait_phase(admin, namespace, "sleepy", "Suspended")
    assert condition(status, "Ready")["reason"] == "Suspended"
    assert admin.get("apps/v1", "Deployment", namespace, "sleepy-api")["spec"]["replicas"] == 0
    assert admin.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "sleepy-api") is None
    assert admin.get("apps/v1", "StatefulSet", namespace, "sleepy-db")["spec"]["replicas"] == 1
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/sleepy",
        body={"spec": {"suspend": False}}, content_type="application/merge-patch+json",
    )  # fmt: skip
    wait_for(
        lambda: admin.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "sleepy-api"),
        20,
        "HPA back",
    )
    assert admin.get("apps/v1", "Deployment", namespace, "sleepy-api")["spec"]["replicas"] == 2


@pytest.mark.parametrize("retention", ["Delete", "Retain"])
def test_deleting_the_stack_collects_children_and_honours_pvc_retention(
    operator: EmbeddedOperator, admin: Kube, namespace: str, retention: str
) -> None:
    create(admin, example_stack("gone", pvcRetention=retention), namespace)
    wait_for(lambda: len(children_of(admin, namespace, "gone")) == len(CHILDREN), 30, "children")
    # The StatefulSet controller creates the claim with the pod.
    pvc = wait_for(lambda: admin.get("v1", "PersistentVolumeClaim", namespace, "data-gone-db-0"), 30, "PVC")
    if retention == "Delete":
        wait_for(
            lambda: any(r["kind"] == "StatefulSet" for r in
                        (admin.get("v1", "PersistentVolumeClaim", namespace, "data-gone-db-0") or {})
                        .get("metadata", {}).get("ownerReferences") or []),
            20, "PVC owned by the StatefulSet",
        )  # fmt: skip
    admin.call("DELETE", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/gone",
               body={"propagationPolicy": "Background"})  # fmt: skip
    wait_for(lambda: not children_of(admin, namespace, "gone"), 60, "children garbage-collected")
    remaining = admin.get("v1", "PersistentVolumeClaim", namespace, "data-gone-db-0")
    if retention == "Delete":

        def claim_gone_or_going() -> bool:
            # One read per probe: two reads race with the deletion itself.
            claim = admin.get("v1", "PersistentVolumeClaim", namespace, "data-gone-db-0")
            return claim is None or bool(claim["metadata"].get("deletionTimestamp"))

        wait_for(claim_gone_or_going, 30, "PVC deleted")
    else:
        assert remaining is not None and remaining["metadata"]["uid"] == pvc["metadata"]["uid"]


def test_external_database_example_has_no_statefulset(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    (body,) = load(EXAMPLES / "tradingstack-external-db.yaml")
    create(admin, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "trading-external-dsn"},
                   "stringData": {"uri": "postgresql://u:p@db.example.com:5432/mt5db"}}, namespace)  # fmt: skip
    create(admin, body, namespace)
    dep = wait_for(
        lambda: admin.get("apps/v1", "Deployment", namespace, "trading-external-api"), 30, "Deployment"
    )
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MT5DB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "trading-external-dsn"
    status = wait_for(
        lambda: condition(stack_status(admin, namespace, "trading-external"), "DatabaseReady"), 20, "status"
    )
    assert status["reason"] == "ExternalDatabase"
    assert admin.get("apps/v1", "StatefulSet", namespace, "trading-external-db") is None
    assert admin.get("v1", "Secret", namespace, "trading-external-db-credentials") is None
    mon = condition(stack_status(admin, namespace, "trading-external"), "MonitoringReady")
    assert mon["reason"] == "Disabled"
