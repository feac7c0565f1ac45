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

from .helpers import CRDS, install_crds, load

pytestmark = pytest.mark.kube


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
