"""Helpers for the operator's real-apiserver tests: install CRDs, apply, wait with a deadline,
read children and status, and play kubelet (there is none: pods never run, so tests mark them
Ready/Succeeded themselves).

What more than one test module uses lives here, as plain functions (fixtures stay in
conftest.py); what one module uses stays in it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mt5db_operator.kubeapi import ApiError, Kube

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
GV = "mt5db.io/v1alpha1"
T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition", every: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy or the deadline passes (then fail with `what`)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except ApiError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(every)


def kubectl_env(kube: Any) -> dict[str, str]:
    """Environment for the real kubectl: the plane's kubeconfig, its cache beside it (not in cwd)."""
    return {"KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.base), "PATH": "/usr/bin:/bin"}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def create(kube: Kube, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    created = kube.create(obj)
    assert created is not None, f"{obj['kind']} {obj['metadata']['name']} already exists"
    return created


def stack_status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    body = kube.get("mt5db.io/v1alpha1", "TradingStack", namespace, name) or {}
    return body.get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def pods(kube: Kube, namespace: str, selector: str) -> list[dict[str, Any]]:
    return kube.list("v1", "Pod", namespace, selector)


def _pod_status_patch(kube: Kube, pod: dict[str, Any], status: dict[str, Any]) -> None:
    md = pod["metadata"]
    kube.call(
        "PATCH",
        f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )


def mark_pods_ready(kube: Kube, namespace: str, selector: str, expect: int = 1, timeout: float = 30) -> int:
    """Play kubelet: every pod matching `selector` becomes Running and Ready (waits for `expect`)."""
    found = wait_for(lambda: (p := pods(kube, namespace, selector)) and len(p) >= expect and p, timeout,
                     f"{expect} pod(s) {selector}")  # fmt: skip
    stamp = now()
    for pod in found:
        conds = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                 for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]  # fmt: skip
        containers = [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
             "started": True, "state": {"running": {"startedAt": stamp}}}
            for c in pod["spec"]["containers"]
        ]  # fmt: skip
        _pod_status_patch(kube, pod, {"phase": "Running", "conditions": conds, "containerStatuses": containers,
                                      "startTime": stamp, "podIP": "10.1.0.9", "hostIP": "10.1.0.1"})  # fmt: skip
    return len(found)


def mark_pods_succeeded(kube: Kube, namespace: str, selector: str, timeout: float = 30) -> None:
    """Play kubelet for Job pods: the container exited 0."""
    found = wait_for(lambda: pods(kube, namespace, selector), timeout, f"pods {selector}")
    stamp = now()
    for pod in found:
        containers = [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": stamp, "finishedAt": stamp}}}
            for c in pod["spec"]["containers"]
        ]  # fmt: skip
        conds = [{"type": "Ready", "status": "False", "lastTransitionTime": stamp, "reason": "PodCompleted"}]
        _pod_status_patch(kube, pod, {"phase": "Succeeded", "conditions": conds, "containerStatuses": containers,
                                      "startTime": stamp})  # fmt: skip


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r.get("controller") for r in refs)


def install_crds(kube: Kube, docs: list[dict[str, Any]]) -> None:
    """Create-or-update CRDs and wait until each is Established (served)."""
    for crd in docs:
        name = crd["metadata"]["name"]
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        kube.call(
            "PATCH", path, body=crd, query=[("fieldManager", "mt5db-tests"), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )  # fmt: skip

        def established(path: str = path) -> bool:
            conds = (kube.call("GET", path).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        wait_for(established, 30, f"CRD {name} established")
        # Established is not yet served by discovery, which is what the operator asks.
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served"))
        wait_for(lambda g=group, v=version, p=plural: p in (kube.resources_of(f"{g}/{v}") or set()),
                 30, f"{group}/{version} {plural} in discovery")  # fmt: skip


# -- TradingStack children and TrainingRun status ------------------------------------------------

CHILDREN = [
    ("v1", "Secret", "{n}-db-credentials"),
    ("v1", "Secret", "{n}-api-key"),
    ("v1", "Secret", "{n}-api-key-hash"),
    ("v1", "Service", "{n}-db"),
    ("apps/v1", "StatefulSet", "{n}-db"),
    ("networking.k8s.io/v1", "NetworkPolicy", "{n}-db"),
    ("v1", "Service", "{n}-api"),
    ("apps/v1", "Deployment", "{n}-api"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "{n}-api"),
    ("policy/v1", "PodDisruptionBudget", "{n}-api"),
    ("networking.k8s.io/v1", "NetworkPolicy", "{n}-api"),
    ("v1", "ConfigMap", "{n}-dashboards"),
]


def children_of(admin: Kube, ns: str, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for api_version, kind, pattern in CHILDREN:
        obj = admin.get(api_version, kind, ns, pattern.format(n=name))
        if obj:
            out[(kind, pattern.format(n=name))] = obj
    return out


def run_status(admin: Kube, ns: str, name: str) -> dict[str, Any]:
    return (admin.get(GV, "TrainingRun", ns, name) or {}).get("status") or {}


def wait_run_phase(admin: Kube, ns: str, name: str, phase: str, timeout: float = 40) -> dict[str, Any]:
    return wait_for(
        lambda: (s := run_status(admin, ns, name)).get("phase") == phase and s, timeout, f"{name} {phase}"
    )
