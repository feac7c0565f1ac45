"""Invalid specs are refused by the API server itself (schema bounds, enums, patterns, CEL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mt5db_operator.kubeapi import ApiError, Kube

from .helpers import EXAMPLES, GV, load

pytestmark = pytest.mark.kube


def _example(name: str) -> dict[str, Any]:
    (body,) = load(EXAMPLES / name)
    return copy.deepcopy(body)


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return body


def _refused(admin: Kube, body: dict[str, Any], namespace: str) -> str:
    body["metadata"]["namespace"] = namespace
    with pytest.raises(ApiError) as err:
        admin.create(body)
    assert err.value.status == 422, err.value
    return err.value.message


CREATE_CASES = [
    ("tradingstack.yaml", "spec.api.minReplicas", 7, "api.minReplicas must be <= api.maxReplicas"),
    ("tradingstack.yaml", "spec.api.minReplicas", 0, "should be greater than or equal to 1"),
    ("tradingstack.yaml", "spec.database.timescale.retentionDays", 30,
     "retentionDays must be >= database.trainingWindowDays"),
    ("tradingstack.yaml", "spec.database.trainingWindowDays", 0, "should be greater than or equal to 1"),
    ("tradingstack.yaml", "spec.api.image", "ghcr.io/mt5db/mt5db-api:latest", "api.image must be pinned"),
    ("tradingstack.yaml", "spec.api.image", "ghcr.io/mt5db/mt5db-api", "api.image must be pinned"),
    ("tradingstack.yaml", "spec.pvcRetention", "Keep", 'Unsupported value: "Keep"'),
    ("tradingstack.yaml", "spec.database.storage.size", "lots", "database.storage.size must be a quantity"),
    ("tradingstack.yaml", "spec.database.storage.size", "100Mi", "at least 1Gi"),
    ("tradingstack.yaml", "spec.api.ingress.host", "Not_A_Host", "spec.api.ingress.host: Invalid value"),
    ("tradingstack.yaml", "spec.monitoring.thresholds.errorRatio", 0, "should be greater than 0"),
    ("tradingstack.yaml", "spec.api.targetCPUUtilizationPercentage", 120, "less than or equal to 95"),
    ("trainingrun.yaml", "spec.model.type", "xgboost", 'Unsupported value: "xgboost"'),
    ("trainingrun.yaml", "spec.data.symbols", [], "should have at least 1 items"),
    ("trainingrun.yaml", "spec.data.start", "2025-01-01", "data.start must be before data.end"),
    ("trainingrun.yaml", "spec.data.timeframe", "H2", 'Unsupported value: "H2"'),
    ("trainingrun.yaml", "spec.resources.workers", 0, "should be greater than or equal to 1"),
    ("trainingrun.yaml", "spec.backend", "spark", 'Unsupported value: "spark"'),
    ("trainingrun.yaml", "spec.model.params.n_estimators", 0, "should be greater than or equal to 1"),
    ("trainingrun.yaml", "spec.model.params.max_depth", "deep", 'must be of type integer'),
    ("backuppolicy.yaml", "spec.schedule", "0 0 3 * * *", "spec.schedule: Invalid value"),
    ("backuppolicy.yaml", "spec.schedule", "every night", "spec.schedule: Invalid value"),
    ("trainingrun.yaml", "spec.resources.cpu", "two", "resources.cpu must be a quantity"),
    ("trainingrun.yaml", "spec.resources.memory", "4 gigs", "resources.memory must be a quantity"),
    ("trainingrun.yaml", "spec.activeDeadlineSeconds", 10, "should be greater than or equal to 60"),
    ("trainingrun.yaml", "spec.image", "reg/train:latest", "image must be pinned"),
    ("backuppolicy.yaml", "spec.destination.pvc.size", "big", "destination.pvc.size must be a quantity"),
    ("backuppolicy.yaml", "spec.retention.keepLast", 0, "should be greater than or equal to 1"),
    ("backuppolicy.yaml", "spec.retention.maxAge", "0d", "spec.retention.maxAge: Invalid value"),
    ("backuppolicy.yaml", "spec.destination.s3", {"bucket": "bkt", "credentialsSecret": "s"},
     "destination takes either pvc or s3, not both"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("example", "path", "value", "message"), CREATE_CASES, ids=[f"{c[1]}={c[2]}" for c in CREATE_CASES]
)
def test_invalid_spec_is_refused_on_create(
    mt5db_crds: Any, admin: Kube, namespace: str, example: str, path: str, value: Any, message: str
) -> None:
    assert message in _refused(admin, _set(_example(example), path, value), namespace)


def _patch(admin: Kube, namespace: str, plural: str, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as err:
        admin.call(
            "PATCH", f"/apis/{GV}/namespaces/{namespace}/{plural}/{name}",
            body={"spec": spec}, content_type="application/merge-patch+json",
        )  # fmt: skip
    assert err.value.status == 422, err.value
    return err.value.message


def test_transition_rules_refuse_shrinking_storage_and_changing_its_class(
    mt5db_crds: Any, admin: Kube, namespace: str
) -> None:
    body = _set(_example("tradingstack.yaml"), "spec.database.storage.storageClassName", "fast")
    body["metadata"]["namespace"] = namespace
    admin.create(body)
    assert "database.storage.size may only grow" in _patch(
        admin, namespace, "tradingstacks", "trading", {"database": {"storage": {"size": "10Gi"}}}
    )
    assert "storageClassName is immutable" in _patch(
        admin, namespace, "tradingstacks", "trading", {"database": {"storage": {"storageClassName": "slow"}}}
    )
    # Growing is fine.
    admin.call(
        "PATCH", f"/apis/{GV}/namespaces/{namespace}/tradingstacks/trading",
        body={"spec": {"database": {"storage": {"size": "40Gi"}}}}, content_type="application/merge-patch+json",
    )  # fmt: skip


def test_external_database_secret_is_immutable(mt5db_crds: Any, admin: Kube, namespace: str) -> None:
    body = _example("tradingstack-external-db.yaml")
    body["metadata"]["namespace"] = namespace
    admin.create(body)
    assert "database.external.secretName is immutable" in _patch(
        admin,
        namespace,
        "tradingstacks",
        "trading-external",
        {"database": {"external": {"secretName": "other"}}},
    )


def test_training_run_spec_is_immutable(mt5db_crds: Any, admin: Kube, namespace: str) -> None:
    body = _example("trainingrun.yaml")
    body["metadata"]["namespace"] = namespace
    admin.create(body)
    assert "spec is immutable" in _patch(admin, namespace, "trainingruns", "rf-eurusd-h1", {"backend": "job"})


def test_defaults_are_applied_by_the_server(mt5db_crds: Any, admin: Kube, namespace: str) -> None:
    created = admin.create(
        {
            "apiVersion": GV,
            "kind": "TradingStack",
            "metadata": {"name": "tiny", "namespace": namespace},
            "spec": {},
        }
    )
    assert created is not None
    spec = created["spec"]
    assert spec["pvcRetention"] == "Retain" and spec["suspend"] is False
    assert spec["database"]["storage"]["size"] == "10Gi"
    assert spec["database"]["image"].startswith("timescale/timescaledb-ha:")
    assert (spec["api"]["minReplicas"], spec["api"]["maxReplicas"]) == (2, 4)
    assert spec["monitoring"]["thresholds"]["errorRatio"] == 0.05


def test_an_unknown_training_param_is_refused_under_strict_field_validation(
    mt5db_crds: Any, admin: Kube, namespace: str
) -> None:
    """`kubectl apply` validates fields strictly: a parameter the trainer has no option for
    (a typo, or another library's name) is refused, not dropped."""
    body = _set(_example("trainingrun.yaml"), "spec.model.params.n_estimator", 10)
    body["metadata"]["namespace"] = namespace
    path = f"/apis/{GV}/namespaces/{namespace}/trainingruns"
    with pytest.raises(ApiError) as err:
        admin.call("POST", path, body=body, query=[("fieldValidation", "Strict")])
    assert err.value.status == 400 and 'unknown field "spec.model.params.n_estimator"' in err.value.message
