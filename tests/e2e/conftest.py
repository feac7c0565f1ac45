"""The e2e tier: the platform installed and used as a platform team would, on a node whose pods
really run (the session `node_cluster` fixture, tests/conftest.py; docs/e2e.md).

Steps are the tests of test_platform.py, in file order; each builds on the previous ones, so a
failed step skips the rest (its error is the one to read). Each step's time is printed at the end.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mt5db_harness.cluster import NodeCluster

from .platform import Platform

_step_seconds: dict[str, float] = {}
_failed: dict[str, str] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    module = item.nodeid.split("::")[0]
    if module in _failed and "tests/e2e/" in module:
        pytest.skip(f"an earlier step failed: {_failed[module]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    started = time.monotonic()
    outcome = yield
    if "tests/e2e/" in item.nodeid:
        _step_seconds[item.name] = time.monotonic() - started
        if outcome.excinfo is not None and outcome.excinfo[0] is not pytest.skip.Exception:
            _failed[item.nodeid.split("::")[0]] = item.name
            platform = getattr(item, "funcargs", {}).get("platform")
            if isinstance(platform, Platform):
                item.add_report_section("call", "cluster state", platform.diagnosis())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _step_seconds:
        terminalreporter.write_line(
            "e2e steps: "
            + ", ".join(f"{name.removeprefix('test_')} {s:.1f}s" for name, s in _step_seconds.items())
            + f"; total {sum(_step_seconds.values()):.1f}s"
        )


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for the example's Ingress host (its `tlsSecretName`)."""
    folder = tmp_path_factory.mktemp("tls")
    crt, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=mt5db.example.com",
         "-addext", "subjectAltName=DNS:mt5db.example.com"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def platform(node_cluster: NodeCluster, helm: Path, tls_ca: tuple[Path, Path]) -> Platform:
    return Platform(node_cluster, helm, tls_ca[0])
