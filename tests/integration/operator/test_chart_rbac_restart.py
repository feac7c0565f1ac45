"""The Helm chart on a real apiserver, the operator under the chart's RBAC only, and a crash
mid-reconcile followed by a restart that converges without duplicates.

Runs on its own control plane: the operator's least-privilege user must be known to the
apiserver at start-up (static token file), which the shared session plane does not have.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from mt5db_core.net import free_port
from mt5db_harness import tools
from mt5db_harness.control_plane import ControlPlane, KubeUser
from mt5db_operator.kubeapi import ApiError, Kube

from .helpers import (
    CHILDREN,
    EXAMPLES,
    REPO,
    children_of,
    condition,
    create,
    load,
    mark_pods_ready,
    mark_pods_succeeded,
    wait_for,
)

pytestmark = [pytest.mark.kube, pytest.mark.helm]

CHART = REPO / "charts" / "mt5db-operator"
OPERATOR_USER = KubeUser("mt5db-operator-sa", secrets.token_hex(16))
NAMESPACED_USER = KubeUser("mt5db-operator-namespaced", secrets.token_hex(16))


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    try:
        binaries = tools.ensure_kube_binaries()
    except (tools.ToolMissing, OSError) as exc:
        pytest.skip(f"kube cannot start here: {exc}")
    cp = ControlPlane(binaries, extra_users=(OPERATOR_USER, NAMESPACED_USER))
    cp.start()
    yield cp
    cp.destroy()


@pytest.fixture(scope="module")
def padmin(plane: ControlPlane) -> Kube:
    return Kube(config.new_client_from_config(config_file=str(plane.kubeconfig)))


@pytest.fixture(scope="module")
def installed(plane: ControlPlane, padmin: Kube, helm: Path) -> dict[str, Any]:
    """`helm install` of the chart with the admin kubeconfig; the operator user gets its roles."""
    done = subprocess.run(
        [str(helm), "install", "mt5db", str(CHART), "--namespace", "mt5db-system", "--create-namespace",
         "--kubeconfig", str(plane.kubeconfig), "--set", "resyncSeconds=3", "--wait=false"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The chart binds its ServiceAccount; bind the same ClusterRoles to the test's user so the
    # operator below runs with exactly the chart's permissions.
    for role in ("mt5db-mt5db-operator", "mt5db-mt5db-operator-cluster"):
        padmin.call(
            "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            body={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": {"name": f"{role}-test-user"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                  "subjects": [{"kind": "User", "name": OPERATOR_USER.name, "apiGroup": "rbac.authorization.k8s.io"}]},
        )  # fmt: skip
    dep = wait_for(
        lambda: padmin.get("apps/v1", "Deployment", "mt5db-system", "mt5db-mt5db-operator"),
        20,
        "operator Deployment",
    )
    return dep


class OperatorProcess:
    """`mt5db operator` as a subprocess, stopped by PID."""

    def __init__(self, kubeconfig: Path, log: Path, scope: tuple[str, ...] = ("--all-namespaces",)) -> None:
        self.metrics_port, self.live_port = free_port(), free_port()
        self.scope = scope
        self.kubeconfig, self.log = kubeconfig, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        mt5db = Path(sys.executable).parent / "mt5db"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(mt5db), "operator", *self.scope, "--kubeconfig", str(self.kubeconfig),
             "--metrics-port", str(self.metrics_port),
             "--liveness", f"http://127.0.0.1:{self.live_port}/healthz", "--resync-seconds", "3"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

        def live() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.live_port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(live, 60, "operator liveness endpoint", every=0.2)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())


def test_chart_installs_crds_rbac_and_the_operator_deployment(
    installed: dict[str, Any], padmin: Kube
) -> None:
    spec = installed["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["operator", "--all-namespaces"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for name in ("tradingstacks.mt5db.io", "trainingruns.mt5db.io", "backuppolicies.mt5db.io"):
        assert padmin.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    roles = padmin.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/mt5db-mt5db-operator")
    for rule in roles["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_operator_with_chart_rbac_survives_a_kill_mid_reconcile(
    installed: dict[str, Any], plane: ControlPlane, padmin: Kube, tmp_path: Path
) -> None:
    ns = f"k-{secrets.token_hex(4)}"
    padmin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    wait_for(lambda: padmin.get("v1", "ServiceAccount", ns, "default"), 30, "default ServiceAccount")
    op = OperatorProcess(plane.kubeconfig_for(OPERATOR_USER), tmp_path / "operator.log")
    op.start()
    try:
        (stack,) = load(EXAMPLES / "tradingstack.yaml")
        create(padmin, stack, ns)
        # Kill as soon as the first child exists: the reconcile pass is in flight.
        first = wait_for(
            lambda: padmin.get("v1", "Secret", ns, "trading-db-credentials"), 30, "first child", every=0.01
        )
        op.kill()
        partial = len(children_of(padmin, ns, "trading"))
        op.start()
        wait_for(
            lambda: len(children_of(padmin, ns, "trading")) == len(CHILDREN), 40, "all children after restart"
        )
        assert (
            padmin.get("v1", "Secret", ns, "trading-db-credentials")["metadata"]["uid"]
            == first["metadata"]["uid"]
        )
        mark_pods_ready(padmin, ns, "app.kubernetes.io/instance=trading,app.kubernetes.io/component=database")
        mark_pods_succeeded(
            padmin, ns, "app.kubernetes.io/instance=trading,app.kubernetes.io/component=migrate"
        )
        mark_pods_ready(
            padmin, ns, "app.kubernetes.io/instance=trading,app.kubernetes.io/component=api", expect=2
        )
        status = wait_for(
            lambda: (s := (padmin.get("mt5db.io/v1alpha1", "TradingStack", ns, "trading") or {}).get("status") or {})
            .get("phase") == "Ready" and s, 45, "Ready after restart",
        )  # fmt: skip
        assert condition(status, "Ready")["status"] == "True"
        # No duplicates: exactly one object per child kind and name, one migration Job.
        sel = "app.kubernetes.io/instance=trading"
        assert len(padmin.list("batch/v1", "Job", ns, sel)) == 1
        assert len(padmin.list("v1", "Secret", ns, sel)) == 3
        assert len(padmin.list("apps/v1", "Deployment", ns, sel)) == 1
        assert len(padmin.list("apps/v1", "StatefulSet", ns, sel)) == 1

        # TrainingRun (Job fallback) and BackupPolicy with the same least-privilege identity.
        (run,) = load(EXAMPLES / "trainingrun.yaml")
        (policy,) = load(EXAMPLES / "backuppolicy.yaml")
        create(padmin, run, ns)
        create(padmin, policy, ns)
        wait_for(lambda: padmin.get("batch/v1", "Job", ns, "rf-eurusd-h1"), 30, "training Job")
        # ... after the run's identity, which the chart's RBAC lets the operator create and grant.
        for api_version, kind, name in (
            ("v1", "ServiceAccount", "rf-eurusd-h1-trainer"),
            ("rbac.authorization.k8s.io/v1", "Role", "rf-eurusd-h1-trainer"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", "rf-eurusd-h1-trainer"),
            ("v1", "ConfigMap", "rf-eurusd-h1-result"),
        ):
            assert padmin.get(api_version, kind, ns, name) is not None, f"{kind} {name}"
        wait_for(
            lambda: padmin.get("batch/v1", "CronJob", ns, "trading-nightly-backup"), 30, "backup CronJob"
        )
        wait_for(
            lambda: ((padmin.get("mt5db.io/v1alpha1", "BackupPolicy", ns, "trading-nightly") or {}).get("status") or {})
            .get("phase") == "Ready", 30, "BackupPolicy Ready",
        )  # fmt: skip
        metrics = op.metrics()
        assert 'mt5db_operator_reconciles_total{kind="TradingStack"' in metrics
        assert "mt5db_operator_reconcile_duration_seconds_bucket" in metrics
    finally:
        op.stop()
    log = (tmp_path / "operator.log").read_text()
    assert "Forbidden" not in log and "forbidden" not in log, log[-4000:]
    print(f"children present when killed: {partial}/{len(CHILDREN)}")


def test_namespaced_mode_grants_roles_only_where_it_watches(
    installed: dict[str, Any], plane: ControlPlane, padmin: Kube, helm: Path, tmp_path: Path
) -> None:
    """watch.allNamespaces=false: a Role per watched namespace, no cluster-wide access to Secrets;
    the operator converges a stack there under exactly those Roles and reads no other namespace."""
    watched, other = f"w-{secrets.token_hex(4)}", f"o-{secrets.token_hex(4)}"
    for ns in (watched, other):
        padmin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    wait_for(lambda: padmin.get("v1", "ServiceAccount", watched, "default"), 30, "default ServiceAccount")
    padmin.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere", "namespace": other},
                   "stringData": {"k": "v"}})  # fmt: skip
    done = subprocess.run(
        [str(helm), "install", "scoped", str(CHART), "--namespace", "mt5db-scoped", "--create-namespace",
         "--kubeconfig", str(plane.kubeconfig), "--set", "watch.allNamespaces=false",
         "--set", f"watch.namespaces={{{watched}}}", "--skip-crds", "--wait=false"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cluster_roles = padmin.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles")["items"]
    scoped = [r for r in cluster_roles if r["metadata"]["name"].startswith("scoped-")]
    assert [r["metadata"]["name"] for r in scoped] == ["scoped-mt5db-operator-cluster"]
    assert all("secrets" not in rule["resources"] for r in scoped for rule in r["rules"])
    role = padmin.get("rbac.authorization.k8s.io/v1", "Role", watched, "scoped-mt5db-operator")
    (secret_rule,) = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert secret_rule["verbs"] == ["get", "create"]
    # The test's user gets what the chart's ServiceAccount got: the Role and the narrow ClusterRole.
    subject = [{"kind": "User", "name": NAMESPACED_USER.name, "apiGroup": "rbac.authorization.k8s.io"}]
    padmin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "scoped-test-user", "namespace": watched},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scoped-mt5db-operator"},
                   "subjects": subject})  # fmt: skip
    padmin.call(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
              "metadata": {"name": "scoped-test-user-cluster"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                          "name": "scoped-mt5db-operator-cluster"},
              "subjects": subject},
    )  # fmt: skip
    kubeconfig = plane.kubeconfig_for(NAMESPACED_USER)
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", scope=(f"--namespace={watched}",))
    op.start()
    try:
        (stack,) = load(EXAMPLES / "tradingstack.yaml")
        create(padmin, stack, watched)
        wait_for(lambda: len(children_of(padmin, watched, "trading")) == len(CHILDREN), 40, "all children")
    finally:
        op.stop()
    log = (tmp_path / "operator.log").read_text()
    assert "Forbidden" not in log and "forbidden" not in log, log[-4000:]
    user = Kube(config.new_client_from_config(config_file=str(kubeconfig)))
    for path in (f"/api/v1/namespaces/{other}/secrets/elsewhere", "/api/v1/secrets"):
        with pytest.raises(ApiError) as denied:
            user.call("GET", path)
        assert denied.value.status == 403, path
