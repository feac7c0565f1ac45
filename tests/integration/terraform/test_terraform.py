"""terraform/ with the real Terraform CLI and the real hashicorp/helm and hashicorp/kubernetes
providers (built from their Go modules, served from a filesystem mirror: no registry):
fmt, validate, the modules' own `terraform test` files, and an apply of terraform/examples/local
onto the test control plane that ends with the TradingStack Ready, then a clean destroy.

The control plane has no kubelet: the operator runs embedded here (the chart's operator pod
cannot run), and the test plays kubelet for the stack's pods, as the operator tests do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mt5db_harness.control_plane import ControlPlane
from mt5db_operator.context import Options
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator

from ..operator.helpers import (
    CRDS,
    GV,
    condition,
    install_crds,
    load,
    mark_pods_ready,
    mark_pods_succeeded,
    wait_for,
)

pytestmark = [pytest.mark.kube, pytest.mark.helm]

REPO = Path(__file__).resolve().parents[3]
CONFIGS = ["terraform/modules/platform", "terraform/modules/kind-cluster", "terraform/examples/local"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the configurations reference (their state and .terraform stay out of the
    checkout): terraform/, the chart (its crds/ link kept), crds/ and kind/."""
    root = tmp_path_factory.mktemp("tf")
    for part in ("terraform", "charts", "crds", "kind"):
        shutil.copytree(REPO / part, root / part, symlinks=True,
                        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))  # fmt: skip
    return root


def terraform(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_fmt_validate_and_the_modules_terraform_tests(terraform_env: dict[str, str], workdir: Path) -> None:
    fmt = terraform(terraform_env, workdir / "terraform", "fmt", "-check", "-recursive")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    for config in CONFIGS:
        cwd = workdir / config
        init = terraform(terraform_env, cwd, "init", "-input=false")
        assert init.returncode == 0, f"{config}: {init.stdout}{init.stderr}"
        valid = terraform(terraform_env, cwd, "validate")
        assert valid.returncode == 0, f"{config}: {valid.stdout}{valid.stderr}"
    for config in CONFIGS[:2]:
        done = terraform(terraform_env, workdir / config, "test")
        assert done.returncode == 0, f"{config}: {done.stdout}{done.stderr}"
        assert "0 failed" in done.stdout and " passed" in done.stdout

    # The example plans with a kind cluster too (apply would need a container engine).
    plan = terraform(terraform_env, workdir / "terraform/examples/local", "plan", "-input=false")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "module.cluster[0].terraform_data.cluster will be created" in plan.stdout
    assert "Plan: 6 to add, 0 to change, 0 to destroy." in plan.stdout


@pytest.fixture
def tf_namespace(kube: ControlPlane) -> Iterator[str]:
    """The stack's namespace name (terraform creates and deletes it); an operator watches it."""
    install_crds(Kube(_client(kube)), [d for path in sorted(CRDS.glob("*.yaml")) for d in load(path)])
    name = f"tf-{uuid.uuid4().hex[:8]}"
    op = EmbeddedOperator(
        namespaces=[name], kubeconfig=str(kube.kubeconfig),
        options=Options(resync_seconds=3.0, discovery_ttl_seconds=1.0, run_poll_seconds=2.0),
    ).start()  # fmt: skip
    try:
        yield name
    finally:
        op.close()


def _client(kube: ControlPlane) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kube.kubeconfig))


def play_kubelet(admin: Kube, ns: str, stack: str, stop: threading.Event) -> None:
    """What the kubelet would do for the stack's pods, once they exist."""
    select = f"app.kubernetes.io/instance={stack},app.kubernetes.io/component="
    try:
        mark_pods_ready(admin, ns, select + "database", timeout=240)
        mark_pods_succeeded(admin, ns, select + "migrate", timeout=120)
        mark_pods_ready(admin, ns, select + "api", timeout=120)
    except AssertionError:
        if not stop.is_set():
            raise


def test_apply_ends_with_the_stack_ready_then_destroys_cleanly(
    terraform_env: dict[str, str], workdir: Path, kube: ControlPlane, kubectl: Path, tf_namespace: str
) -> None:
    ns, stack = tf_namespace, "mt5db"
    admin = Kube(_client(kube))
    cwd = workdir / "terraform/examples/local"
    variables = [
        "-var", "create_cluster=false", "-var", f"kubeconfig_path={kube.kubeconfig}",
        "-var", f"namespace={ns}", "-var", f"operator_namespace={ns}-system", "-var", f"stack_name={stack}",
        "-var", f"kubectl={kubectl}", "-var", "ready_timeout=300s",
    ]  # fmt: skip
    assert terraform(terraform_env, cwd, "init", "-input=false").returncode == 0

    stop = threading.Event()
    errors: list[BaseException] = []

    def kubelet() -> None:
        try:
            play_kubelet(admin, ns, stack, stop)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=kubelet, daemon=True)
    thread.start()
    try:
        applied = terraform(terraform_env, cwd, "apply", "-auto-approve", "-input=false", *variables)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr
    assert not errors, errors
    assert "condition met" in applied.stdout  # kubectl wait saw Ready before the apply ended

    body = admin.get(GV, "TradingStack", ns, stack) or {}
    ready = condition(body.get("status") or {}, "Ready")
    assert ready and ready["status"] == "True", body.get("status")
    assert body["spec"]["api"]["minReplicas"] == 1 and body["spec"]["database"]["storage"]["size"] == "5Gi"
    policy = admin.get(GV, "BackupPolicy", ns, f"{stack}-backup") or {}
    assert policy["spec"]["schedule"] == "0 3 * * *" and policy["spec"]["verify"] is True
    namespace = admin.get("v1", "Namespace", None, ns) or {}
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    # Outputs name things; none carries a credential.
    outputs = json.loads(terraform(terraform_env, cwd, "output", "-json").stdout)
    secret = admin.get("v1", "Secret", ns, f"{stack}-api-key") or {}
    assert outputs["api_key_secret"]["value"] == {"name": f"{stack}-api-key", "key": "api-key"}
    text = json.dumps(outputs)
    for value in (secret.get("data") or {}).values():
        assert value not in text
    assert "password" not in text.lower()

    destroyed = terraform(terraform_env, cwd, "destroy", "-auto-approve", "-input=false", *variables)
    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr
    assert "Destroy complete!" in destroyed.stdout
    assert admin.get(GV, "TradingStack", ns, stack) is None
    wait_for(lambda: admin.get("v1", "Namespace", None, ns) is None, 120, f"namespace {ns} gone")
    state = terraform(terraform_env, cwd, "state", "list", *[])
    assert state.stdout.strip() == "", state.stdout
