"""The root Tiltfile evaluated by the real tilt (built from its Go module): `tilt alpha
tiltfile-result` runs it (and the `helm template` it calls, with the real helm) without Docker,
a cluster or the web UI, and prints what `tilt up` would run: resources, images, live update
steps, manifests. And kind/cluster.yaml decodes strictly into kind's own config type.

`tilt ci` needs a cluster that runs pods (and images it can pull): not here yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
IMAGES = {
    "localhost/mt5db-operator": "operator/Dockerfile",
    "localhost/mt5db-api": "api/Dockerfile",
    "localhost/mt5db-training": "training/Dockerfile",
}

pytestmark = pytest.mark.helm


def tiltfile_result(tilt: Path, helm: Path, home: Path, *args: str) -> dict[str, Any]:
    """Evaluate the Tiltfile against a kind-* context (the context kind writes; nothing connects)."""
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-mt5db",
        "clusters": [{"name": "kind-mt5db", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "kind-mt5db", "user": {}}],
        "contexts": [{"name": "kind-mt5db", "context": {"cluster": "kind-mt5db", "user": "kind-mt5db"}}],
    }))  # fmt: skip
    env = {"HOME": str(home), "KUBECONFIG": str(kubeconfig), "PATH": f"{helm.parent}:/usr/bin:/bin",
           "TILT_DISABLE_ANALYTICS": "1"}  # fmt: skip
    done = subprocess.run([str(tilt), "alpha", "tiltfile-result", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["Error"] is None, result["Error"]
    return result


def docs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest["DeployTarget"]["yaml"]) if d]


@pytest.fixture(scope="module")
def evaluated(
    go_tool: Callable[[str], Path], helm: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    tilt = go_tool("tilt")
    result = tiltfile_result(tilt, helm, tmp_path_factory.mktemp("tilt"))
    return {m["Name"]: m for m in result["Manifests"]}


def test_resources_and_their_order(evaluated: dict[str, Any]) -> None:
    assert set(evaluated) == {
        "namespaces", "crds", "operator", "trading", "trading-nightly", "api-port-forward", "replay-candles",
        "start-trainingrun",
    }  # fmt: skip
    deps = {name: m.get("ResourceDependencies") or [] for name, m in evaluated.items()}
    assert deps["crds"] == ["namespaces"] and deps["operator"] == ["crds"] and deps["trading"] == ["operator"]
    assert deps["api-port-forward"] == ["trading"] and deps["replay-candles"] == ["api-port-forward"]
    # Buttons: manual, and not run at start-up (Tilt's TriggerModeManual).
    assert (
        evaluated["replay-candles"]["TriggerMode"] == 2 and evaluated["start-trainingrun"]["TriggerMode"] == 2
    )


def test_images_are_built_where_their_dockerfile_exists_with_live_update_for_the_operator(
    evaluated: dict[str, Any],
) -> None:
    built = {t["selector"]: t for m in evaluated.values() for t in m.get("ImageTargets") or []}
    assert set(built) == {ref for ref, dockerfile in IMAGES.items() if (REPO / dockerfile).exists()}
    operator = built["localhost/mt5db-operator"]["LiveUpdateSpec"]
    assert {(s["localPath"], s["containerPath"]) for s in operator["syncs"]} == {
        ("operator/mt5db_operator", "/opt/mt5db-dev/mt5db_operator"),
        ("core/mt5db_core", "/opt/mt5db-dev/mt5db_core"),
    }
    assert operator["execs"][0]["args"] == ["sh", "-c", "kill 1"]  # Kopf does not reload: restart


def test_the_chart_runs_with_the_dev_overlay_and_the_examples_in_their_namespace(
    evaluated: dict[str, Any],
) -> None:
    namespaces = docs(evaluated["namespaces"])
    assert {n["metadata"]["name"] for n in namespaces} == {"mt5db", "mt5db-system"}
    assert all(
        n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted" for n in namespaces
    )
    assert {d["metadata"]["name"] for d in docs(evaluated["crds"])} == {
        "tradingstacks.mt5db.io", "trainingruns.mt5db.io", "backuppolicies.mt5db.io",
    }  # fmt: skip
    (deployment,) = [d for d in docs(evaluated["operator"]) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].startswith("localhost/mt5db-operator:")
    assert {"name": "PYTHONPATH", "value": "/opt/mt5db-dev"} in pod["containers"][0]["env"]
    assert "--namespace=mt5db" in pod["containers"][0]["args"]
    (stack,) = docs(evaluated["trading"])
    assert stack["kind"] == "TradingStack" and stack["metadata"]["namespace"] == "mt5db"
    assert stack["spec"]["api"]["minReplicas"] == 1
    assert evaluated["trading"]["DeployTarget"]["imageLocators"] == [
        {"objectSelector": {"kindRegexp": "(?i)TradingStack"}, "path": "{.spec.api.image}"}
    ]
    (policy,) = docs(evaluated["trading-nightly"])
    assert policy["kind"] == "BackupPolicy" and policy["metadata"]["namespace"] == "mt5db"
    forward = evaluated["api-port-forward"]["DeployTarget"]["ServeCmd"]["Argv"]
    assert forward[-1].endswith("service/trading-api 18001:8000")


def test_the_dev_overlay_init_container_really_shadows_the_installed_packages(
    evaluated: dict[str, Any], tmp_path: Path
) -> None:
    """Run the chart's init container script with this Python into a scratch directory: with
    that directory first on PYTHONPATH, the operator and core import from the copies."""
    (deployment,) = [d for d in docs(evaluated["operator"]) if d["kind"] == "Deployment"]
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["python", "-c"]
    script = init["args"][0].replace("/opt/mt5db-dev/", f"{tmp_path}/")
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (tmp_path / "mt5db_operator" / "handlers.py").exists() and (tmp_path / "mt5db_core").is_dir()
    probe = "import mt5db_core, mt5db_operator; print(mt5db_operator.__file__, mt5db_core.__file__)"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    where = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert all(path.startswith(str(tmp_path)) for path in where.stdout.split()), where.stdout


def test_a_daemonless_builder_uses_custom_build(
    go_tool: Callable[[str], Path], helm: Path, tmp_path: Path
) -> None:
    result = tiltfile_result(go_tool("tilt"), helm, tmp_path, "--", "--builder=scripts/build-image")
    targets = [t for m in result["Manifests"] for t in m.get("ImageTargets") or []]
    assert targets
    for target in targets:
        details = json.dumps(target["BuildDetails"])
        assert "scripts/build-image" in details and "EXPECTED_REF" in details, details


def test_kind_config_decodes_strictly(go_tool: Callable[[str], Path], tmp_path: Path) -> None:
    kindcheck = go_tool("kindcheck")
    done = subprocess.run([str(kindcheck), str(REPO / "kind" / "cluster.yaml")], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and "name=mt5db nodes=[control-plane]" in done.stdout, done.stdout
    broken = tmp_path / "cluster.yaml"
    broken.write_text(
        (REPO / "kind" / "cluster.yaml").read_text().replace("apiServerAddress", "apiServerAdress")
    )
    done = subprocess.run([str(kindcheck), str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "apiServerAdress" in done.stdout, done.stdout
