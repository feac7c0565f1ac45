"""The one apply primitive, against an in-memory API: create, re-apply, refuse, delete, collect."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mt5db_operator.context import Context
from mt5db_operator.instruments import OperatorMetrics
from mt5db_operator.reconcile.children import Children, NotOwnedError, Ref
from mt5db_operator.resources.labels import labels, managed_selector, meta

OWNER = {
    "apiVersion": "mt5db.io/v1alpha1",
    "kind": "TradingStack",
    "metadata": {"name": "demo", "namespace": "trading", "uid": "stack-uid"},
}
Key = tuple[str, str, str, str]


class FakeApi:
    """Objects by (apiVersion, kind, namespace, name); apply replaces, as far as these tests look."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    @staticmethod
    def key(obj: dict[str, Any]) -> Key:
        md = obj["metadata"]
        return (obj["apiVersion"], obj["kind"], md["namespace"], md["name"])

    def put(self, obj: dict[str, Any]) -> None:
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("uid", f"uid-{stored['metadata']['name']}")
        self.objects[self.key(stored)] = stored

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", obj["metadata"]["name"]))
        self.put(obj)
        return copy.deepcopy(self.objects[self.key(obj)])

    def create(self, obj: dict[str, Any], field_manager: str = "") -> dict[str, Any] | None:
        self.calls.append(("create", obj["metadata"]["name"]))
        if self.key(obj) in self.objects:
            return None
        return self.apply(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        self.calls.append(("delete", name))
        found = self.objects.get((api_version, kind, namespace, name))
        if found is None or (uid and found["metadata"]["uid"] != uid):
            return False
        del self.objects[(api_version, kind, namespace, name)]
        return True

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list", kind))
        wanted = dict(part.split("=", 1) for part in selector.split(","))
        return [
            copy.deepcopy(obj)
            for (av, k, ns, _), obj in self.objects.items()
            if (av, k, ns) == (api_version, kind, namespace)
            and wanted.items() <= obj["metadata"].get("labels", {}).items()
        ]


def service(name: str, component: str = "api", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, "trading", labels("demo", component)),
            "spec": spec}  # fmt: skip


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(name, "trading", labels("demo", "migrate")),
    }


def foreign(obj: dict[str, Any]) -> dict[str, Any]:
    """The same object, controlled by someone else."""
    other = copy.deepcopy(obj)
    other["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    return other


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics()


def children(api: FakeApi, metrics: OperatorMetrics) -> Children:
    ctx = Context(kube=api, capabilities=None, metrics=metrics)  # type: ignore[arg-type]
    return Children(ctx, copy.deepcopy(OWNER))


def test_ensure_creates_an_absent_child_adopted_by_its_owner(api: FakeApi, metrics: OperatorMetrics) -> None:
    applied = children(api, metrics).ensure(service("demo-api"))
    assert applied is not None
    (ref,) = applied["metadata"]["ownerReferences"]
    assert ref["uid"] == "stack-uid" and ref["controller"] is True and ref["kind"] == "TradingStack"
    assert api.calls == [("get", "demo-api"), ("apply", "demo-api")]
    assert metrics.registry.get_sample_value("mt5db_operator_applies_total", {"kind": "Service"}) == 1


def test_ensure_reapplies_an_owned_child_on_every_pass(api: FakeApi, metrics: OperatorMetrics) -> None:
    children(api, metrics).ensure(service("demo-api", type="ClusterIP"))
    api.objects[("v1", "Service", "trading", "demo-api")]["spec"]["type"] = "NodePort"  # drift
    again = children(api, metrics).ensure(service("demo-api", type="ClusterIP"))
    assert again is not None and again["spec"]["type"] == "ClusterIP"


def test_ensure_refuses_an_object_it_does_not_control(api: FakeApi, metrics: OperatorMetrics) -> None:
    api.put(foreign(service("demo-api", type="NodePort")))
    with pytest.raises(NotOwnedError) as err:
        children(api, metrics).ensure(service("demo-api", type="ClusterIP"))
    assert err.value.status == 409 and "neither controlled by TradingStack trading/demo" in err.value.message
    assert ("apply", "demo-api") not in api.calls
    assert api.objects[("v1", "Service", "trading", "demo-api")]["spec"]["type"] == "NodePort"
    # Someone's own object, owned by nobody and without our label: refused as well.
    users = service("demo-db")
    del users["metadata"]["labels"]
    api.put(users)
    with pytest.raises(NotOwnedError):
        children(api, metrics).ensure(service("demo-db"))


def test_ensure_adopts_an_orphan_the_operator_made(api: FakeApi, metrics: OperatorMetrics) -> None:
    api.put(service("demo-api", type="NodePort"))  # our labels, no owner (an older operator's, say)
    applied = children(api, metrics).ensure(service("demo-api", type="ClusterIP"))
    assert applied is not None and applied["spec"]["type"] == "ClusterIP"
    assert [r["uid"] for r in applied["metadata"]["ownerReferences"]] == ["stack-uid"]


def test_disabled_deletes_its_own_child_and_leaves_others_alone(
    api: FakeApi, metrics: OperatorMetrics
) -> None:
    kids = children(api, metrics)
    kids.ensure(service("demo-api"))
    assert kids.ensure(service("demo-api"), enabled=False) is None
    assert ("v1", "Service", "trading", "demo-api") not in api.objects
    api.put(foreign(service("demo-db")))
    children(api, metrics).ensure(Ref("v1", "Service", "trading", "demo-db"), enabled=False)
    assert ("v1", "Service", "trading", "demo-db") in api.objects, "never deletes what it does not control"
    children(api, metrics).ensure(Ref("v1", "Service", "trading", "absent"), enabled=False)  # absent is fine
    with pytest.raises(TypeError):
        children(api, metrics).ensure(Ref("v1", "Service", "trading", "x"))


def test_collect_deletes_managed_children_no_longer_desired(api: FakeApi, metrics: OperatorMetrics) -> None:
    children(api, metrics).ensure(job("demo-migrate-old"))
    api.put(foreign(job("demo-migrate-theirs")))
    kids = children(api, metrics)
    kids.ensure(job("demo-migrate-new"))
    kids.collect("batch/v1", "Job", "trading", managed_selector("demo", "migrate"))
    names = {key[3] for key in api.objects}
    assert names == {"demo-migrate-new", "demo-migrate-theirs"}


def test_unowned_children_skip_adoption_and_the_ownership_check(
    api: FakeApi, metrics: OperatorMetrics
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta("p-backups", "trading", {}),
    }
    api.put(claim)
    applied = children(api, metrics).ensure(copy.deepcopy(claim), owned=False)
    assert applied is not None and "ownerReferences" not in applied["metadata"]
    assert api.calls == [("apply", "p-backups")]


def test_create_once_never_overwrites_and_live_reads_once(api: FakeApi, metrics: OperatorMetrics) -> None:
    kids = children(api, metrics)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta("demo-db-credentials", "trading", {}),
              "stringData": {"password": "first"}}  # fmt: skip
    assert kids.create_once(copy.deepcopy(secret)) is not None
    secret["stringData"]["password"] = "second"
    assert kids.create_once(secret) is None
    assert (
        api.objects[("v1", "Secret", "trading", "demo-db-credentials")]["stringData"]["password"] == "first"
    )
    ref = Ref("v1", "Secret", "trading", "demo-db-credentials")
    assert kids.live(ref) is kids.live(ref)
    assert ("get", "demo-db-credentials") not in api.calls, "the created object is what the pass knows"
