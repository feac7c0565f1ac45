"""`mt5db doctor` (installed with the harness): every real service with a version or a reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mt5db_harness import doctor


def run_mt5db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mt5db_core.cli", *args], capture_output=True, text=True, check=False
    )


def test_doctor_table_names_each_service_with_a_version_or_a_reason() -> None:
    done = run_mt5db("doctor", "--json")
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    for name in ("postgresql", "timescaledb", "kube-apiserver", "kube-controller-manager", "etcd",
                 "prometheus", "promtool", "helm", "kubectl"):  # fmt: skip
        assert name in checks
        check = checks[name]
        if check["ok"]:
            assert check["version"] != "-"
        else:
            assert check["detail"], f"{name} is unavailable without a reason"


def test_doctor_reports_postgres_version_from_the_binary() -> None:
    found = {c.name: c for c in doctor.run_checks()}["postgresql"]
    if not found.ok:
        pytest.skip(f"no PostgreSQL here: {found.detail}")
    assert "PostgreSQL" in found.version
