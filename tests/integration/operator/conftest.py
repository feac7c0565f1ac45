"""Fixtures for the operator's tests on the real kube-apiserver + etcd + kube-controller-manager.

One embedded operator serves the session, watching the `t-*` namespaces the shared
`namespace` fixture creates; tests that stop and restart an operator use their own namespace
outside that pattern.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mt5db_harness.control_plane import ControlPlane
from mt5db_operator.context import Options
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from .kubeutil import CRDS, load, wait_for

pytestmark = pytest.mark.kube


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


@pytest.fixture(scope="session")
def admin(kube_api: Any) -> Kube:
    return Kube(kube_api)


@pytest.fixture(scope="session")
def mt5db_crds(admin: Kube) -> list[dict[str, Any]]:
    docs = [d for path in sorted(CRDS.glob("*.yaml")) for d in load(path)]
    install_crds(admin, docs)
    return docs


@pytest.fixture(scope="session")
def operator(kube: ControlPlane, mt5db_crds: list[dict[str, Any]]) -> Iterator[EmbeddedOperator]:
    """The operator embedded in a thread, as the admin, resync every 3 s, discovery TTL 1 s."""
    started = time.monotonic()
    op = EmbeddedOperator(
        namespaces=["t-*"],
        kubeconfig=str(kube.kubeconfig),
        options=Options(resync_seconds=3.0, discovery_ttl_seconds=1.0, run_poll_seconds=2.0),
    ).start()
    print(f"operator started in {time.monotonic() - started:.1f}s")
    yield op
    op.close()
