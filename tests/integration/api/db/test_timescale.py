"""The Timescale path on a real TimescaleDB engine (PGlite + timescaledb, mt5db_harness.timescale):
the migration, chunk intervals, the background jobs it creates, and aggregates that answer like
plain PostgreSQL at all times. One connection per test: the engine has one backend session."""

from __future__ import annotations

import asyncpg
import pytest

from mt5db_api.db.migrations import AGGREGATES, migrate

pytestmark = pytest.mark.timescale


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, statement_cache_size=0)


async def test_migrate_twice_builds_hypertables_and_aggregates(timescale):
    conn = await connect(timescale.dsn)
    try:
        first = await migrate(conn, retention_days=730, compress_after_days=7)
        second = await migrate(conn, retention_days=730, compress_after_days=7)
        assert first.timescale and second.timescale and second.applied == []
        tables = {
            r[0] for r in await conn.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        assert tables == {"market_data", "ticks"}
        views = {
            r[0]
            for r in await conn.fetch("SELECT view_name FROM timescaledb_information.continuous_aggregates")
        }
        assert views == {f"candles_{name.lower()}" for name, _ in AGGREGATES}
    finally:
        await conn.close()
