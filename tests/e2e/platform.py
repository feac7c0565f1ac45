"""What the e2e steps share: the platform team's view of the cluster (kubectl, helm, the examples
with the local images, HTTP through the Service and through the Ingress, SQL in the database pod).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mt5db_harness.cluster import HTTPS_NODE_PORT, NodeCluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EA_BODIES = REPO / "tests" / "integration" / "api" / "ea_bodies"
OPERATOR_NAMESPACE = "mt5db-system"
NAMESPACE = "trading"  # the examples' stackRef is `trading`; the stack lives in this namespace
INGRESS_CLASS = "traefik"

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, every: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout:.0f}s (last error: {last})")


def example(name: str, **patch: Any) -> dict[str, Any]:
    """A file of examples/ with only what a local cluster must change, in the `trading` namespace."""
    (doc,) = yaml.safe_load_all((EXAMPLES / name).read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    for path, value in patch.items():
        node = doc
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


@dataclass
class Platform:
    cluster: NodeCluster
    helm: Path
    ca_bundle: Path
    state: dict[str, Any] = field(default_factory=dict)

    # -- kubectl -------------------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120) -> str:
        return self.cluster.kubectl(*args, check=check, stdin=stdin, timeout=timeout).stdout

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        done = self.cluster.kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def items(
        self, kind: str, selector: str | None = None, namespace: str = NAMESPACE
    ) -> list[dict[str, Any]]:
        args = ["-n", namespace, "get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args))["items"]
        return items

    def apply(self, doc: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(doc))

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return (self.get(kind, name) or {}).get("status") or {}

    def secret_value(self, name: str, key: str) -> str:
        import base64

        secret = self.get("secret", name)
        assert secret is not None, f"no Secret {name}"
        return base64.b64decode(secret["data"][key]).decode()

    def helm_run(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(self.helm), f"--kubeconfig={self.cluster.kubeconfig}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    def diagnosis(self, namespace: str = NAMESPACE, log_lines: int = 30) -> str:
        """What a person would look at when a step fails: the namespace's objects, the custom
        resources' status, recent events, and the last log lines of every container not ready."""
        parts = []
        for args in (
            ("get", "pods,jobs,statefulsets,deployments,pvc,ingress", "-o", "wide"),
            ("get", "tradingstacks,trainingruns,backuppolicies", "-o", "yaml"),
            ("get", "events", "--sort-by=.lastTimestamp"),
        ):
            done = self.cluster.kubectl("-n", namespace, *args, check=False, timeout=30)
            parts.append(
                f"$ kubectl -n {namespace} {' '.join(args)}\n{done.stdout[-6000:]}{done.stderr[-500:]}"
            )
        pods = json.loads(
            self.cluster.kubectl("-n", namespace, "get", "pods", "-o", "json", check=False).stdout or "{}"
        )
        for pod in pods.get("items", []):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if status.get("ready"):
                    continue
                name = pod["metadata"]["name"]
                done = self.cluster.kubectl("-n", namespace, "logs", name, "-c", status["name"],
                                            f"--tail={log_lines}", check=False, timeout=30)  # fmt: skip
                parts.append(f"$ kubectl logs {name} -c {status['name']}\n{done.stdout}{done.stderr[-500:]}")
        return "\n".join(parts)

    # -- SQL in the database pod -----------------------------------------------------------------

    def sql(self, query: str, database: str = "mt5db", pod: str = "trading-db-0") -> str:
        """psql inside the database container, over its Unix socket (local trust, as initdb set it)."""
        return self.kubectl("-n", NAMESPACE, "exec", pod, "-c", "timescaledb", "--", "psql", "-X", "-q",
                            "-A", "-t", "-U", "mt5db", "-d", database, "-c", query).strip()  # fmt: skip

    # -- HTTP --------------------------------------------------------------------------------------

    def service_url(self, name: str, namespace: str = NAMESPACE) -> tuple[str, int]:
        svc = self.get("service", name, namespace)
        assert svc is not None, f"no Service {name}"
        return svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])

    def via_service(self, method: str, path: str, body: bytes | None = None,
                    headers: dict[str, str] | None = None, service: str = "trading-api") -> tuple[int, bytes]:  # fmt: skip
        """Through an API's ClusterIP Service (the host routes the Service range to the node)."""
        host, port = self.service_url(service)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        return _exchange(conn, method, path, body, headers or {})

    def via_ingress(self, host_name: str, method: str, path: str, body: bytes | None = None,
                    headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
        """Through Traefik's HTTPS entry point on the node, SNI and Host `host_name`, verifying the
        certificate against the Secret the test created (as an EA would its server's CA)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        conn = _PinnedHTTPS(self.cluster.node_ip, HTTPS_NODE_PORT, host_name, context)
        return _exchange(conn, method, path, body, {"Host": host_name, **(headers or {})})


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI and certificate checks for a name that DNS does not know."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=30, context=context)
        self._server_name = server_name
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._server_name)
