"""`helm lint` and `helm template` of the operator chart with the real helm binary."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from .helpers import REPO

pytestmark = pytest.mark.helm
CHART = REPO / "charts" / "mt5db-operator"


def render(helm: Path, *args: str) -> list[dict[str, object]]:
    done = subprocess.run([str(helm), "template", "rel", str(CHART), "-n", "ops", *args],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_helm_lint_is_clean(helm: Path) -> None:
    done = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_packaged_chart_ships_exactly_the_crds(helm: Path, tmp_path: Path) -> None:
    """`helm package` follows the crds/ symlink: the archive holds the files, byte for byte."""
    done = subprocess.run([str(helm), "package", str(CHART), "-d", str(tmp_path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (archive,) = tmp_path.glob("mt5db-operator-*.tgz")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("mt5db-operator/crds/")]
        assert all(m.isfile() for m in members), "no links inside the archive"
        packaged = {Path(m.name).name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    ours = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    assert ours and packaged == ours


def test_template_all_namespaces_and_no_service_monitor_without_the_api(helm: Path) -> None:
    docs = render(helm)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("ClusterRoleBinding") == 2 and "ServiceMonitor" not in kinds
    # Cluster-wide, Secrets only by name and created: no list/watch of every Secret in the cluster.
    rules = [rule for d in docs if d["kind"] == "ClusterRole" for rule in d["rules"]]  # type: ignore[union-attr]
    (secret_rule,) = [rule for rule in rules if "secrets" in rule["resources"]]
    assert secret_rule["verbs"] == ["get", "create"]
    assert "Deployment" in kinds and "ServiceAccount" in kinds


def test_template_namespaced_watch_and_service_monitor_with_the_api(helm: Path) -> None:
    docs = render(helm, "--set", "watch.allNamespaces=false", "--set", "watch.namespaces={trading,research}",
                  "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")  # fmt: skip
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["research", "trading"]  # type: ignore[index]
    # A Role per watched namespace; cluster-wide only the CRD/namespace scan, never Secrets.
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["research", "trading"]  # type: ignore[index]
    assert {b["roleRef"]["kind"] for b in bindings} == {"Role"}  # type: ignore[index]
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert all("secrets" not in rule["resources"] for rule in cluster_role["rules"])  # type: ignore[index, union-attr]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    assert "--namespace=trading" in args and "--all-namespaces" not in args
    assert any(d["kind"] == "ServiceMonitor" for d in docs)


def test_template_refuses_an_empty_watch_list(helm: Path) -> None:
    done = subprocess.run([str(helm), "template", "rel", str(CHART), "--set", "watch.allNamespaces=false"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode != 0 and "watch.namespaces" in done.stderr


def test_dev_live_update_overlay_only_when_asked(helm: Path) -> None:
    """Off by default; on, the sources sit in a writable emptyDir first on PYTHONPATH while the
    root filesystem stays read-only (the Tiltfile's live update syncs into it)."""
    (plain,) = [d for d in render(helm) if d["kind"] == "Deployment"]
    assert "initContainers" not in plain["spec"]["template"]["spec"]  # type: ignore[index]
    (dev,) = [d for d in render(helm, "--set", "dev.liveUpdate=true") if d["kind"] == "Deployment"]
    pod = dev["spec"]["template"]["spec"]  # type: ignore[index]
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    assert {"name": "PYTHONPATH", "value": "/opt/mt5db-dev"} in main["env"]
    for container in (init, main):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "dev-sources", "mountPath": "/opt/mt5db-dev"} in container["volumeMounts"]
    assert {"name": "dev-sources", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
