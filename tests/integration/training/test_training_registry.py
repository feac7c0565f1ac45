"""Against the real PostgreSQL fixture: market_data loading, the idempotent registry schema, versions
per name, and hash-checked artifact loading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import numpy as np
import pandas as pd
import pytest

from mt5db_training.data import load_candles
from mt5db_training.registry import (
    ArtifactHashMismatch,
    ensure_registry_schema,
    insert_version,
    load_sklearn_artifact,
    load_torch_state,
    save_sklearn_artifact,
    save_torch_artifact,
)

pytestmark = pytest.mark.postgres

T = TypeVar("T")

# The API component owns the real migration; this is the subset of its columns training reads.
MARKET_DATA_DDL = """
CREATE TABLE market_data (
    symbol text NOT NULL, timeframe text NOT NULL, ts timestamptz NOT NULL,
    open double precision NOT NULL, high double precision NOT NULL, low double precision NOT NULL,
    close double precision NOT NULL, volume bigint NOT NULL, spread double precision NULL,
    PRIMARY KEY (symbol, timeframe, ts)
)
"""


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


def test_load_candles_reads_market_data_by_symbol_timeframe_and_range(database_url: str) -> None:
    ts = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    rows = [
        (
            "EURUSD",
            "H1",
            t.to_pydatetime(),
            1.1 + i * 1e-4,
            1.1 + i * 1e-4 + 5e-4,
            1.1 + i * 1e-4 - 5e-4,
            1.1 + i * 1e-4 + 1e-4,
            100 + i,
            12.0,
        )
        for i, t in enumerate(ts)
    ]
    rows.append(("GBPUSD", "H1", ts[0].to_pydatetime(), 1.2, 1.3, 1.1, 1.25, 1, None))

    async def seed() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(MARKET_DATA_DDL)
            await conn.executemany(
                "INSERT INTO market_data VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", list(reversed(rows))
            )
        finally:
            await conn.close()

    run(seed)
    got = load_candles(
        database_url,
        "EURUSD",
        "H1",
        datetime(2024, 1, 1, 10, tzinfo=UTC),
        datetime(2024, 1, 2, 0, tzinfo=UTC),
    )
    assert len(got) == 14
    assert got.index[0] == pd.Timestamp("2024-01-01 10:00") and got.index.tz is None
    assert got.index.is_monotonic_increasing
    assert np.isclose(got["close"].iloc[0], 1.1 + 10e-4 + 1e-4)
    assert (got["spread"] == 12.0).all()
    with pytest.raises(ValueError, match="no market_data rows"):
        load_candles(
            database_url, "USDJPY", "H1", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
        )


def test_registry_schema_is_idempotent_and_versions_count_per_name(database_url: str, tmp_path: Path) -> None:
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
        conn = await asyncpg.connect(database_url)
        try:
            await ensure_registry_schema(conn)
            await ensure_registry_schema(conn)  # idempotent
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


def test_artifacts_refuse_a_changed_file(tmp_path: Path) -> None:
    import torch

    uri, sha = save_torch_artifact({"w": torch.ones(3)}, tmp_path)
    assert torch.equal(load_torch_state(tmp_path / uri, sha)["w"], torch.ones(3))
    (tmp_path / uri).write_bytes((tmp_path / uri).read_bytes() + b"x")
    with pytest.raises(ArtifactHashMismatch):
        load_torch_state(tmp_path / uri, sha)


def test_train_from_market_data_registers_versions(
    database_url: str, backtesting_csv: Path, tmp_path: Path
) -> None:
    """`mt5db train --database-url … --symbol --timeframe`: candles from market_data, rows in model_versions."""
    from mt5db_core.cli import main
    from mt5db_training.data import frame_sha256, load_csv

    candles = load_csv(backtesting_csv)
    rows = [
        (
            "EURUSD",
            "H1",
            ts.to_pydatetime().replace(tzinfo=UTC),
            r.open,
            r.high,
            r.low,
            r.close,
            int(r.volume),
            None,
        )
        for ts, r in zip(candles.index, candles.itertuples(index=False), strict=True)
    ]

    async def seed() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(MARKET_DATA_DDL)
            await conn.copy_records_to_table("market_data", records=rows)
        finally:
            await conn.close()

    run(seed)
    out = tmp_path / "db-run"
    argv = [
        "train",
        "--model",
        "rf",
        "--database-url",
        database_url,
        "--symbol",
        "EURUSD",
        "--timeframe",
        "H1",
    ]
    argv += ["--run", "t-db", "--out", str(out), "--horizons", "5", "--n-estimators", "10", "--folds", "3"]
    argv += [
        "--test-bars",
        "300",
        "--bootstrap-reps",
        "50",
        "--lockbox-start",
        "",
        "--no-leakage-check",
        "--n-jobs",
        "1",
    ]
    assert main(argv) == 0

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch("SELECT name, version, data_sha256, artifact_uri FROM model_versions")
        finally:
            await conn.close()

    (record,) = run(fetch)
    assert record["name"] == "rf_ret_h5_EURUSD_H1" and record["version"] == 1
    assert record["data_sha256"] == frame_sha256(
        load_candles(
            database_url, "EURUSD", "H1", datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
    )
    assert record["artifact_uri"].startswith("file://")
