"""`spec.serving` on the real apiserver: the serving Deployment and Service, `/predict` routed
through the API's Ingress, ServingReady from the Deployment's real status, and everything removed
again when serving is switched off (examples/tradingstack-serving.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from mt5db_core.paths import PUBLIC_PATHS
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .helpers import (
    EXAMPLES,
    condition,
    create,
    load,
    mark_pods_ready,
    mark_pods_succeeded,
    owned_by,
    stack_status,
    wait_for,
)

pytestmark = pytest.mark.kube

NAME = "trading-live"


def _paths(ingress: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (p["path"], p["backend"]["service"]["name"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]
    ]


def test_serving_children_routing_readiness_and_removal(
    operator: EmbeddedOperator, admin: Kube, namespace: str
) -> None:
    (body,) = load(EXAMPLES / "tradingstack-serving.yaml")
    owner = create(admin, body, namespace)
    dep = wait_for(
        lambda: admin.get("apps/v1", "Deployment", namespace, f"{NAME}-serving"), 30, "serving Deployment"
    )
    svc = wait_for(lambda: admin.get("v1", "Service", namespace, f"{NAME}-serving"), 10, "serving Service")
    assert owned_by(dep, owner) and owned_by(svc, owner)
    assert dep["spec"]["replicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert (
        container["command"] == ["mt5db", "serve"]
        and container["image"] == "ghcr.io/mt5db/mt5db-training:0.1.0"
    )
    ingress = wait_for(
        lambda: (i := admin.get("networking.k8s.io/v1", "Ingress", namespace, f"{NAME}-api")) and i,
        10,
        "ingress",
    )
    assert _paths(ingress) == [("/predict", f"{NAME}-serving"), *((p, f"{NAME}-api") for p in PUBLIC_PATHS)]

    # play kubelet: database, migrations, API and serving pods
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component="
    mark_pods_ready(admin, namespace, selector + "database")
    mark_pods_succeeded(admin, namespace, selector + "migrate")
    mark_pods_ready(admin, namespace, selector + "api", expect=2)
    status = wait_for(
        lambda: (s := stack_status(admin, namespace, NAME)).get("serving") == "0/2" and s, 30, "status"
    )
    assert condition(status, "ServingReady")["status"] == "False"  # serving pods not ready yet
    assert condition(status, "Ready")["status"] == "False"
    mark_pods_ready(admin, namespace, selector + "serving", expect=2)
    status = wait_for(
        lambda: (s := stack_status(admin, namespace, NAME)).get("phase") == "Ready" and s, 45, "Ready"
    )
    assert condition(status, "ServingReady")["status"] == "True" and status["serving"] == "2/2"

    # switched off: the Deployment and Service go, and the Ingress sends everything to the API
    admin.call(
        "PATCH", f"/apis/mt5db.io/v1alpha1/namespaces/{namespace}/tradingstacks/{NAME}",
        body={"spec": {"serving": {"enabled": False}}}, content_type="application/merge-patch+json",
    )  # fmt: skip
    wait_for(
        lambda: admin.get("apps/v1", "Deployment", namespace, f"{NAME}-serving") is None,
        30,
        "Deployment gone",
    )
    wait_for(lambda: admin.get("v1", "Service", namespace, f"{NAME}-serving") is None, 10, "Service gone")
    wait_for(
        lambda: _paths(admin.get("networking.k8s.io/v1", "Ingress", namespace, f"{NAME}-api"))
        == [(p, f"{NAME}-api") for p in PUBLIC_PATHS],
        10, "the /predict path removed",
    )  # fmt: skip
    status = wait_for(
        lambda: (s := stack_status(admin, namespace, NAME)) and condition(s, "ServingReady")["reason"] == "Disabled" and s,
        30, "ServingReady Disabled",
    )  # fmt: skip
    assert condition(status, "Ready")["status"] == "True" and status["serving"] == "off"
