"""Migrations: idempotent, versioned, safe when several replicas migrate at once; Timescale guarded."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mt5db_api.db.migrations import CURRENT_VERSION, MIGRATIONS, migrate, schema_version, timescale_available

EVERY = [version for version, _, _ in MIGRATIONS]

pytestmark = pytest.mark.postgres


async def test_migrate_twice_is_idempotent(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        assert await schema_version(conn) == 0
        first = await migrate(conn)
        assert first.applied == EVERY and first.version == CURRENT_VERSION
        second = await migrate(conn)
        assert second.applied == [] and second.version == CURRENT_VERSION
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        assert [r[0] for r in tables] == [
            "api_keys",
            "market_data",
            "model_alias_history",
            "model_aliases",
            "model_artifacts",
            "model_versions",
            "order_feedback",
            "schema_migrations",
            "signal_acks",
            "signal_deliveries",
            "signals",
            "ticks",
        ]
    finally:
        await conn.close()


async def test_concurrent_migrate_from_several_connections(database_url):
    conns = [await asyncpg.connect(database_url) for _ in range(5)]
    try:
        reports = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r.applied) for r in reports) == [0, 0, 0, 0, len(EVERY)]
        assert {r.version for r in reports} == {CURRENT_VERSION}
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == CURRENT_VERSION
    finally:
        for c in conns:
            await c.close()


async def test_timescale_statements_guarded(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        report = await migrate(conn, retention_days=3650, compress_after_days=30)
        if await timescale_available(conn):
            assert report.timescale
            assert report.policies
        else:
            assert not report.timescale
            assert report.skipped == [
                "timescaledb is not in pg_available_extensions: plain PostgreSQL tables, no hypertables, "
                "compression, retention policies or continuous aggregates; /candles resamples on the fly"
            ]
        off = await migrate(conn, use_timescale=False)
        assert off.skipped == ["timescaledb disabled by the caller"]
    finally:
        await conn.close()


async def test_retention_and_compression_parameters_are_checked(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(ValueError, match="retention_days"):
            await migrate(conn, retention_days=0)
        with pytest.raises(ValueError, match="compress_after_days"):
            await migrate(conn, compress_after_days=-1)
    finally:
        await conn.close()
