"""`mt5db train` against the real PostgreSQL fixture: candles from market_data, versions in
model_versions, and the exit status when the registry database was never migrated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from mt5db_core.cli import main
from mt5db_training.sources import frame_sha256, load_candles, load_csv

pytestmark = pytest.mark.postgres

T = TypeVar("T")

CANDLE_COLUMNS = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "spread"]
SMALL_RF = ["--horizons", "1", "--n-estimators", "5", "--folds", "2", "--test-bars", "300"]
SMALL_RF += ["--bootstrap-reps", "50", "--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1"]


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


def test_train_from_market_data_registers_versions(
    migrated_database_url: str, backtesting_csv: Path, tmp_path: Path
) -> None:
    """`mt5db train --database-url … --symbol --timeframe`: candles from market_data, rows in model_versions."""
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
        conn = await asyncpg.connect(migrated_database_url)
        try:
            await conn.copy_records_to_table("market_data", records=rows, columns=CANDLE_COLUMNS)
        finally:
            await conn.close()

    run(seed)
    out = tmp_path / "db-run"
    argv = [
        "train",
        "--model",
        "rf",
        "--database-url",
        migrated_database_url,
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
        conn = await asyncpg.connect(migrated_database_url)
        try:
            return await conn.fetch("SELECT name, version, data_sha256, artifact_uri FROM model_versions")
        finally:
            await conn.close()

    (record,) = run(fetch)
    assert record["name"] == "rf_ret_EURUSD_H1" and record["version"] == 1
    assert record["data_sha256"] == frame_sha256(
        load_candles(
            migrated_database_url,
            "EURUSD",
            "H1",
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
        )
    )
    assert record["artifact_uri"].startswith("file://")


def test_registry_never_migrated_exits_1_after_the_report(
    database_url: str, backtesting_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--model", "rf", "--csv", str(backtesting_csv), "--run", "t-nomig", "--out", str(out)]
    assert main([*argv, *SMALL_RF, "--registry-url", database_url]) == 1
    assert "run `mt5db migrate`" in capsys.readouterr().err
    assert (out / "report.json").is_file() and not (out / "result.json").exists()


def test_too_short_a_series_is_a_clear_error_not_a_traceback(
    eurusd_h1_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """800 bars cannot hold eight walk-forward folds: exit 2 with what to change."""
    short = tmp_path / "EURUSD_H1_short.csv"
    with eurusd_h1_csv.open() as fh:
        short.write_text("".join(next(fh) for _ in range(801)))
    argv = ["train", "--model", "rf", "--csv", str(short), "--folds", "8", "--run", "t-short"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-leakage-check"]) == 2
    err = capsys.readouterr().err
    assert "mt5db train: error: not enough data for this protocol" in err and "fewer folds" in err
    assert "Traceback" not in err


def test_a_symbol_never_ingested_is_a_config_error_exit_2(
    migrated_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No rows for a symbol: exit 2 (the Job's pod failure policy fails at once, no retries)."""
    argv = ["train", "--model", "rf", "--database-url", migrated_database_url, "--symbols", "NZDCHF"]
    argv += ["--timeframe", "H1", "--run", "t-nodata", "--out", str(tmp_path / "run"), *SMALL_RF]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "mt5db train: error: no market_data rows for NZDCHF H1" in err and "Traceback" not in err
