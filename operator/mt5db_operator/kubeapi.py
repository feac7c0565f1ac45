"""The operator's Kubernetes API client: a thin synchronous REST layer over the official
client's ApiClient.

Server-side apply (a stable field manager, force), get, create, delete, list, status
merge-patch and discovery. Paths come from a table of the kinds the operator manages, so
nothing needs a discovery round trip per call. The reconcile layer's `ensure` primitive
(`reconcile/children.py`) is built on these calls.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from mt5db_operator import constants as c

# (apiVersion, kind) -> plural, for every kind the operator reads or writes.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",
    ("v1", "Namespace"): "namespaces",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "Deployment"): "deployments",
    ("batch/v1", "Job"): "jobs",
    ("batch/v1", "CronJob"): "cronjobs",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    (c.MONITORING_GROUP_VERSION, "ServiceMonitor"): "servicemonitors",
    (c.MONITORING_GROUP_VERSION, "PrometheusRule"): "prometheusrules",
    (c.RAY_GROUP_VERSION, "RayJob"): "rayjobs",
    (c.API_VERSION, c.KIND_STACK): c.TRADINGSTACKS,
    (c.API_VERSION, c.KIND_RUN): c.TRAININGRUNS,
    (c.API_VERSION, c.KIND_POLICY): c.BACKUPPOLICIES,
}


class ApiError(RuntimeError):
    """A Kubernetes API answer other than 2xx, with the server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def path_for(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    plural = PLURALS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


@dataclass
class Kube:
    """Synchronous calls; safe to share between Kopf's handler threads (urllib3 pools are)."""

    api_client: Any

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data = self._send(method, path, query or [], headers, body)
        return json.loads(data) if data else None

    def _send(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: Any = None
    ) -> bytes | None:
        """One request; the body of a 2xx answer, else ApiError with the server's message."""
        serialized = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(*serialized, _request_timeout=30)
            response.read()
        except ApiException as exc:
            raise ApiError(int(exc.status or 0), _message(exc.body)) from exc
        if not 200 <= response.status < 300:
            raise ApiError(response.status, _message(response.data))
        data: bytes | None = response.data
        return data

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.call("GET", path_for(api_version, kind, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else None
        result = self.call("GET", path_for(api_version, kind, namespace), query=query)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (force): creates if absent, re-takes drifted fields we own."""
        md = obj["metadata"]
        path = path_for(obj["apiVersion"], obj["kind"], md.get("namespace"), md["name"])
        result: dict[str, Any] = self.call(
            "PATCH",
            path,
            body=obj,  # JSON is YAML: the client serialises structured bodies for +yaml types
            query=[("fieldManager", c.FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        return result

    def create(self, obj: dict[str, Any], field_manager: str = c.FIELD_MANAGER) -> dict[str, Any] | None:
        """POST; None when it already exists (409), so racing creators converge on one object."""
        md = obj["metadata"]
        try:
            result: dict[str, Any] = self.call(
                "POST",
                path_for(obj["apiVersion"], obj["kind"], md.get("namespace")),
                body=obj,
                query=[("fieldManager", field_manager)],
            )
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise
        return result

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        """DELETE (background propagation); False when absent, or replaced since `uid` was read."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            # Delete exactly the object that was judged, not a same-named successor.
            body["preconditions"] = {"uid": uid}
        try:
            self.call("DELETE", path_for(api_version, kind, namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404 or (uid and exc.status == 409):
                return False
            raise
        return True

    def pod_log(self, namespace: str, name: str, container: str, tail_lines: int) -> str:
        """The last lines of a container's log (plain text, as the kubelet serves it)."""
        data = self._send(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{name}/log",
            [("container", container), ("tailLines", str(tail_lines))],
            # The log is plain text; the API server (1.36) answers 406 to `Accept: text/plain` alone.
            {"Accept": "*/*"},
        )
        return (data or b"").decode("utf-8", errors="replace")

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        self.call(
            "PATCH",
            path_for(api_version, kind, namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def resources_of(self, group_version: str) -> set[str] | None:
        """Plural names served under a group/version, or None when the group is not served."""
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        try:
            result = self.call("GET", base)
        except ApiError as exc:
            if exc.status in (404, 503):
                return None
            raise
        return {r["name"] for r in result.get("resources", []) if "/" not in r["name"]}


def _message(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        return str(json.loads(raw).get("message", raw))
    except (TypeError, ValueError, AttributeError):
        return str(raw)


@dataclass
class Capabilities:
    """Optional integrations by API discovery, cached for `ttl` seconds (CRDs come and go)."""

    kube: Kube
    ttl: float = 15.0
    _cache: dict[str, tuple[float, bool]] = field(default_factory=dict)
    # One lock for the cache dict only; discovery itself runs outside it.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def has(self, group_version: str, plural: str) -> bool:
        key = f"{group_version}/{plural}"
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        served = self.kube.resources_of(group_version)
        found = served is not None and plural in served
        with self._lock:
            self._cache[key] = (now, found)
        return found

    def monitoring(self) -> bool:
        return self.has(c.MONITORING_GROUP_VERSION, "servicemonitors") and self.has(
            c.MONITORING_GROUP_VERSION, "prometheusrules"
        )

    def ray(self) -> bool:
        return self.has(c.RAY_GROUP_VERSION, "rayjobs")
