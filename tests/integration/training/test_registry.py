"""Against the real PostgreSQL fixture: versions per name in the migrated `model_versions` table, a
clear refusal where `mt5db migrate` never ran, and hash-checked artifact loading."""

from __future__ import annotations

import asyncio
import json
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
    read_champion,
    save_sklearn_artifact,
    save_torch_artifact,
)

pytestmark = pytest.mark.postgres

T = TypeVar("T")


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


def _row(sha: str, name: str = "rf_ret_EURUSD_H1") -> dict[str, Any]:
    return {
        "name": name, "algo": "random_forest", "task": "regression", "model_kind": "rf",
        "symbol": "EURUSD", "timeframe": "H1", "horizon": 5, "horizons": [1, 5, 10],
        "feature_set_version": "ta22-v1", "feature_set_hash": "f" * 64, "features": ["rsi14"],
        "warmup_bars": 400, "train_range": "a → b", "train_start": "2022-01-03T00:00:00",
        "train_end": "2022-06-01T00:00:00", "data_sha256": "0" * 64, "code_git_sha": "abc",
        "params": {"n_estimators": 10},
        "metrics": {"5": {"verdict": "does not beat baselines"}}, "threshold": 1e-4,
        "verdict": "does not beat baselines", "beats_baselines": False, "model_card": {"signal": {"horizon": 5}},
        "artifact_uri": "file:///x", "artifact_sha256": sha, "run_name": "t",
    }  # fmt: skip


def test_versions_count_per_name_and_are_immutable(migrated_database_url: str, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from mt5db_training.artifacts import joblib_bytes, load_joblib_bytes
    from mt5db_training.registry import fetch_artifact, store_artifact

    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), np.arange(10.0))
    uri, sha = save_sklearn_artifact(model, tmp_path)
    assert uri == f"artifacts/{sha}.joblib"
    data = joblib_bytes(model)

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(migrated_database_url)
        try:
            stored = await store_artifact(conn, data, "application/x-joblib")
            assert stored == await store_artifact(conn, data, "application/x-joblib")  # stored once
            v1 = await insert_version(conn, _row(stored))
            v2 = await insert_version(conn, _row(stored))
            v_other = await insert_version(conn, _row(stored, "rf_ret_GBPUSD_H1"))
            assert [v for _, v in (v1, v2, v_other)] == [1, 2, 1]
            # Versions and artifacts never change: a trigger refuses UPDATE and DELETE.
            for sql in ("UPDATE model_versions SET verdict = 'beats baselines'", "DELETE FROM model_versions",
                        "UPDATE model_artifacts SET size = 0", "DELETE FROM model_artifacts"):  # fmt: skip
                with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                    await conn.execute(sql)
            # Every new version names stored bytes.
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await insert_version(conn, _row("e" * 64))
            loaded = load_joblib_bytes(await fetch_artifact(conn, stored), stored)
            assert loaded.predict(np.array([[3.0]]))[0] == pytest.approx(3.0)
            return await conn.fetch("SELECT name, version, verdict FROM model_versions ORDER BY id")
        finally:
            await conn.close()

    records = run(go)
    assert [(r["name"], r["version"]) for r in records] == [
        ("rf_ret_EURUSD_H1", 1),
        ("rf_ret_EURUSD_H1", 2),
        ("rf_ret_GBPUSD_H1", 1),
    ]
    loaded = load_sklearn_artifact(tmp_path / uri, sha)
    assert loaded.predict(np.array([[3.0]]))[0] == pytest.approx(3.0)


def test_alias_changes_are_recorded_and_notified(migrated_database_url: str) -> None:
    from mt5db_training.artifacts import joblib_bytes
    from mt5db_training.registry import alias_target, history, set_alias, store_artifact

    async def go() -> None:
        conn = await asyncpg.connect(migrated_database_url)
        listener = await asyncpg.connect(migrated_database_url)
        heard: asyncio.Queue[str] = asyncio.Queue()
        await listener.add_listener("mt5db_model_alias", lambda *args: heard.put_nowait(args[-1]))
        try:
            sha = await store_artifact(conn, joblib_bytes({"x": 1}), "application/x-joblib")
            first, _ = await insert_version(conn, _row(sha))
            second, _ = await insert_version(conn, _row(sha))
            async with conn.transaction():
                assert await set_alias(conn, symbol="EURUSD", timeframe="H1", kind="rf", alias="champion",
                                       version_id=first, action="promote", actor="test", reason="first",
                                       gate={"net_pips": 1.5}) is None  # fmt: skip
            async with conn.transaction():
                assert await set_alias(conn, symbol="EURUSD", timeframe="H1", kind="rf", alias="champion",
                                       version_id=second, action="manual", actor="a person",
                                       reason="second") == first  # fmt: skip
            target = await alias_target(conn, "EURUSD", "H1", "rf", "champion")
            assert target["id"] == second
            rows = await history(conn, "EURUSD", "H1", "rf")
            assert [(r["action"], r["version"], r["previous"], r["actor"]) for r in rows] == [
                ("manual", "rf_ret_EURUSD_H1:v2", "rf_ret_EURUSD_H1:v1", "a person"),
                ("promote", "rf_ret_EURUSD_H1:v1", None, "test"),
            ]
            assert json.loads(rows[1]["gate"]) == {"net_pips": 1.5}
            payloads = [json.loads(await asyncio.wait_for(heard.get(), 5)) for _ in range(2)]
            assert [p["version_id"] for p in payloads] == [first, second]
            assert payloads[0] | {"version_id": 0} == {"symbol": "EURUSD", "timeframe": "H1", "model_kind": "rf",
                                                         "alias": "champion", "version_id": 0, "op": "INSERT"}  # fmt: skip
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("INSERT INTO model_aliases (symbol, timeframe, model_kind, alias, version_id) "
                                   "VALUES ('EURUSD', 'H1', 'rf', 'staging', $1)", first)  # fmt: skip
        finally:
            await listener.close()
            await conn.close()

    run(go)


def test_registering_where_migrate_never_ran_says_to_run_it(database_url: str, tmp_path: Path) -> None:
    # The gate's first registry read (a gated run stops here, before training).
    with pytest.raises(RegistryNotMigrated, match="run `mt5db migrate`"):
        read_champion(database_url, "EURUSD", "H1", "rf")

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
