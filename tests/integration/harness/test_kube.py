"""The kube fixture is a real control plane: namespaces, CRDs with server-side validation,
and garbage collection by the controller manager."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mt5db_harness.control_plane import ControlPlane

pytestmark = pytest.mark.kube

T = TypeVar("T")

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.mt5db.io"},
    "spec": {
        "group": "smoke.mt5db.io",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.size != 7", "message": "seven is not allowed"}
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def eventually(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy, with a deadline (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def test_reports_the_pinned_version(kube: ControlPlane, kube_api: Any) -> None:
    info = client.VersionApi(kube_api).get_code()
    assert info.git_version.startswith("v1.36.")
    assert info.major == "1" and info.minor == "36"


def test_crd_object_and_server_side_validation(kube_api: Any, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.smoke.mt5db.io")
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    eventually(established, what="CRD Established")
    custom = client.CustomObjectsApi(kube_api)

    def create(size: int, name: str) -> dict[str, Any]:
        body = {
            "apiVersion": "smoke.mt5db.io/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size},
        }
        return custom.create_namespaced_custom_object("smoke.mt5db.io", "v1", namespace, "widgets", body)  # type: ignore[no-any-return]

    # Right after Established the discovery cache can lag a moment: retry the first create briefly.
    created = eventually(lambda: _ignore_404(lambda: create(3, "ok")), what="first Widget create")
    assert created["spec"]["size"] == 3

    with pytest.raises(ApiException) as too_big:
        create(11, "too-big")
    assert too_big.value.status == 422
    assert "spec.size" in too_big.value.body and "less than or equal to 10" in too_big.value.body

    with pytest.raises(ApiException) as cel:
        create(7, "seven")
    assert cel.value.status == 422
    assert "seven is not allowed" in cel.value.body


def _ignore_404(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_garbage_collection_deletes_an_owned_configmap(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"role": "owner"})
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=True
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]), data={"x": "1"}
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def owned_gone() -> bool:
        return _ignore_404(lambda: core.read_namespaced_config_map("owned", namespace)) is None

    eventually(owned_gone, timeout=60, what="the garbage collector to delete the owned ConfigMap")


def test_controller_manager_turns_a_deployment_into_a_replicaset(kube_api: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="smoke"),
            spec=client.V1DeploymentSpec(
                replicas=1,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="c", image="example.invalid/none:1")]
                    ),
                ),
            ),
        ),
    )
    sets = eventually(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector="app=smoke").items,
        what="a ReplicaSet for the Deployment",
    )
    assert sets[0].metadata.owner_references[0].kind == "Deployment"


def test_a_killed_controller_manager_is_restarted_and_collects_again(
    kube: ControlPlane, kube_api: Any, namespace: str
) -> None:
    assert kube.kcm is not None
    killed, before = kube.kcm, kube.kcm_restarts
    killed.kill()
    killed.wait()
    eventually(
        lambda: kube.kcm_restarts > before, timeout=10, what="the harness to restart the controller manager"
    )
    assert kube.kcm is not killed and kube.kcm.poll() is None
    assert "restarted by the test harness" in kube.log_tail("kube-controller-manager")
    test_garbage_collection_deletes_an_owned_configmap(kube_api, namespace)


def test_kubectl_uses_the_same_kubeconfig(kube: ControlPlane, kubectl: Path, namespace: str) -> None:
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kube.kubeconfig), "get", "namespace", namespace, "-o", "name"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"namespace/{namespace}"


def test_rbac_refuses_an_identity_without_bindings(kube: ControlPlane, kubectl: Path) -> None:
    """Authorization is real: a token user with no RoleBinding may not list anything."""
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kube.kubeconfig_for(kube.nobody)), "get", "namespaces"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "forbidden" in done.stderr.lower()
