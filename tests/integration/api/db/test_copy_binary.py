"""Binary COPY payloads built with numpy store exactly what asyncpg's own COPY encoder stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace

import asyncpg
import pytest

from mt5db_api.db import copy_binary
from mt5db_api.db.migrations import migrate

pytestmark = pytest.mark.postgres

READ = "SELECT symbol, timeframe, ts, open, high, low, close, volume, spread, real_volume, source FROM {} ORDER BY 1, 2, 3"


def columns(rng: random.Random, n: int) -> dict[str, list]:
    """Every layout at once: symbol and timeframe lengths, NULL and present extras, extreme values."""
    prices = [rng.uniform(1e-6, 1e6) for _ in range(n)]
    prices[:5] = [0.30000000000000004, 1e-07, 1.7976931348623157e308, 5e-324, -0.0]
    return {
        "symbol": [rng.choice(["EURUSD", "US500.cash", "A", "BTC#", "X" * 32]) for _ in range(n)],
        "timeframe": [rng.choice(["M1", "MN1", "H12"]) for _ in range(n)],
        "ts": [631152000 + 60 * i for i in range(n)],
        "open": prices, "high": prices, "low": prices, "close": prices[::-1],
        "volume": [rng.choice([0, 1, 2**63 - 1, rng.randrange(10**9)]) for _ in range(n)],
        "spread": [rng.choice([None, 0.00017, -0.0, rng.random()]) for _ in range(n)],
        "real_volume": [rng.choice([None, 0, 2**63 - 1]) for _ in range(n)],
    }  # fmt: skip


@pytest.mark.parametrize("layouts", ["one", "mixed"])
async def test_numpy_payload_matches_asyncpg_records(database_url, layouts):
    rng = random.Random(layouts)
    cols = columns(rng, 400)
    if layouts == "one":
        cols.update(
            symbol=["EURUSD"] * 400, timeframe=["M1"] * 400, spread=[None] * 400, real_volume=[7] * 400
        )
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await conn.execute("CREATE TABLE reference (LIKE market_data INCLUDING ALL)")
        payload = copy_binary.market_data_payload(SimpleNamespace(**cols), "PDC-Rebuild/1.0")
        await conn.copy_to_table(
            "market_data", source=memoryview(payload), columns=list(copy_binary.COLUMNS), format="binary"
        )
        records = [
            (s, t, datetime.fromtimestamp(e, UTC), o, h, lo, c, v, sp, rv, "PDC-Rebuild/1.0")
            for s, t, e, o, h, lo, c, v, sp, rv in zip(*cols.values(), strict=True)
        ]
        await conn.copy_records_to_table("reference", records=records, columns=list(copy_binary.COLUMNS))
        ours, theirs = (
            await conn.fetch(READ.format("market_data")),
            await conn.fetch(READ.format("reference")),
        )
        assert len(ours) == 400
        # repr: bit-exact doubles, -0.0 kept apart from 0.0
        assert [tuple(map(repr, r)) for r in ours] == [tuple(map(repr, r)) for r in theirs]
    finally:
        await conn.close()


async def test_a_payload_with_a_taken_key_stores_nothing(database_url):
    cols = columns(random.Random(3), 50)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        payload = copy_binary.market_data_payload(SimpleNamespace(**cols), "api")
        await conn.copy_to_table(
            "market_data", source=memoryview(payload), columns=list(copy_binary.COLUMNS), format="binary"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.copy_to_table(
                "market_data", source=memoryview(payload), columns=list(copy_binary.COLUMNS), format="binary"
            )
        assert await conn.fetchval("SELECT count(*) FROM market_data") == 50
    finally:
        await conn.close()
