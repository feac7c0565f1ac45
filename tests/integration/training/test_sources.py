"""Against the real PostgreSQL fixture: candles read from `market_data` (the table `mt5db migrate`
creates) with the platform's one series query."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pandas as pd
import pytest

from mt5db_training.sources import load_candles

pytestmark = pytest.mark.postgres

INSERT_CANDLE = (
    "INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close, volume, spread) "
    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
)


def test_load_candles_reads_market_data_by_symbol_timeframe_and_range(migrated_database_url: str) -> None:
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
        conn = await asyncpg.connect(migrated_database_url)
        try:
            await conn.executemany(INSERT_CANDLE, list(reversed(rows)))
        finally:
            await conn.close()

    asyncio.run(seed())
    got = load_candles(
        migrated_database_url,
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
            migrated_database_url,
            "USDJPY",
            "H1",
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2024, 2, 1, tzinfo=UTC),
        )
