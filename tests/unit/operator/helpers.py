"""Shared assertions for builder tests: names, labels, selectors, hardening."""

from __future__ import annotations

from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.specs import Meta, TradingStackSpec

META = Meta(name="demo", namespace="trading", uid="1234", generation=3)


def stack(**spec: Any) -> TradingStackSpec:
    return TradingStackSpec.parse(spec, META)


def assert_child(obj: dict[str, Any], kind: str, name: str, namespace: str = "trading") -> None:
    assert obj["kind"] == kind
    assert obj["metadata"]["name"] == name
    assert obj["metadata"]["namespace"] == namespace
    labels = obj["metadata"]["labels"]
    assert labels[c.LABEL_MANAGED_BY] == c.MANAGED_BY
    assert labels[c.LABEL_PART_OF] == c.PART_OF
    assert "ownerReferences" not in obj["metadata"], "builders never adopt; handlers do"


def assert_hardened(pod_spec: dict[str, Any]) -> None:
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    for container in pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert not container["image"].endswith(":latest")
        assert ":" in container["image"].rsplit("/", 1)[-1]


def assert_runs_as(pod_spec: dict[str, Any], service_account: str, *, token: bool) -> None:
    """The pod runs under `service_account` and mounts an API token only where it must."""
    assert pod_spec["serviceAccountName"] == service_account
    assert pod_spec["automountServiceAccountToken"] is token


def assert_grants_only(role: dict[str, Any], resource: str, names: list[str], verbs: list[str]) -> None:
    """A Role with exactly one rule: `verbs` on the named objects of one core resource, no wildcard."""
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1" and role["kind"] == "Role"
    (rule,) = role["rules"]
    assert rule == {"apiGroups": [""], "resources": [resource], "resourceNames": names, "verbs": verbs}
    assert "create" not in verbs, "create cannot be restricted by resourceNames"
