"""Against the real PostgreSQL fixture: versions per name in the migrated `model_versions` table, a
clear refusal where `mt5db migrate` never ran, and hash-checked artifact loading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import numpy as np
import pytest

from mt5db_training.registry import (
    ArtifactHashMismatch,
    RegistryNotMigrated,
    insert_version,
    load_sklearn_artifact,
    load_torch_state,
    register_run,
    save_sklearn_artifact,
    save_torch_artifact,
)

pytestmark = pytest.mark.postgres

T = TypeVar("T")


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


def test_versions_count_per_name(migrated_database_url: str, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), np.arange(10.0))
    uri, sha = save_sklearn_artifact(model, tmp_path)
    assert uri == f"artifacts/{sha}.joblib"
    row = {
        "name": "rf_ret_h5_EURUSD_H1",
        "algo": "random_forest",
        "task": "regression",
        "symbol": "EURUSD",
        "timeframe": "H1",
        "horizon": 5,
        "feature_set_version": "ta22-v1",
        "train_range": "a → b",
        "data_sha256": "0" * 64,
        "code_git_sha": "abc",
        "params": {"n_estimators": 10},
        "metrics": {"regression": {"random_forest": {"r2_oos": -0.01}}, "verdict": "does not beat baselines"},
        "threshold": None,
        "artifact_uri": uri,
        "artifact_sha256": sha,
        "run_name": "t",
    }

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(migrated_database_url)
        try:
            v1 = await insert_version(conn, row)
            v2 = await insert_version(conn, row)
            v_other = await insert_version(conn, row | {"name": "rf_ret_h1_EURUSD_H1"})
            assert (v1, v2, v_other) == (1, 2, 1)
            return await conn.fetch(
                "SELECT name, version, status, metrics->>'verdict' AS verdict, artifact_sha256 FROM model_versions ORDER BY id"
            )
        finally:
            await conn.close()

    records = run(go)
    assert [(r["name"], r["version"]) for r in records] == [
        ("rf_ret_h5_EURUSD_H1", 1),
        ("rf_ret_h5_EURUSD_H1", 2),
        ("rf_ret_h1_EURUSD_H1", 1),
    ]
    assert records[0]["status"] == "candidate" and records[0]["verdict"] == "does not beat baselines"
    loaded = load_sklearn_artifact(tmp_path / uri, sha)
    assert loaded.predict(np.array([[3.0]]))[0] == pytest.approx(3.0)


def test_registering_where_migrate_never_ran_says_to_run_it(database_url: str, tmp_path: Path) -> None:
    report = {"artifacts": {}, "data": {}}  # nothing to insert: the table check comes first
    with pytest.raises(RegistryNotMigrated, match="run `mt5db migrate`"):
        register_run(database_url, report, tmp_path / "report.json")

    async def tables() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return [
                r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ]
        finally:
            await conn.close()

    assert run(tables) == []  # and nothing was created on the way


def test_artifacts_refuse_a_changed_file(tmp_path: Path) -> None:
    import torch

    uri, sha = save_torch_artifact({"w": torch.ones(3)}, tmp_path)
    assert torch.equal(load_torch_state(tmp_path / uri, sha)["w"], torch.ones(3))
    (tmp_path / uri).write_bytes((tmp_path / uri).read_bytes() + b"x")
    with pytest.raises(ArtifactHashMismatch):
        load_torch_state(tmp_path / uri, sha)
