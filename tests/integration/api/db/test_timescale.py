"""The Timescale path on a real TimescaleDB engine (PGlite + timescaledb, mt5db_harness.timescale):
the migration, chunk intervals, the background jobs it creates, and aggregates that answer like
plain PostgreSQL at all times. One connection per test: the engine has one backend session."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from mt5db_api.db.migrations import (
    AGGREGATES,
    ASSUMED_ROWS_PER_DAY,
    MAX_CHUNK_DAYS,
    chunk_interval_days,
    migrate,
)
from mt5db_operator.resources.tradingstack import build_db_statefulset
from mt5db_operator.specs import Meta, TradingStackSpec

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


async def test_chunk_intervals_follow_the_data_density(timescale):
    """Three years of H1 (one symbol) became ~160 weekly chunks; sized from density they are a few."""
    conn = await connect(timescale.dsn)
    try:
        await migrate(conn, use_timescale=False)  # plain tables first, filled, then converted
        await conn.execute(
            "INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close, volume) "
            "SELECT 'EURUSD', 'H1', t, 1, 2, 0.5, 1.5, 10 FROM generate_series("
            "'2021-10-18'::timestamptz, '2024-10-17', '1 hour') t"
        )
        report = await migrate(conn)
        chunks = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'market_data'"
        )
        assert chunks <= 3 * 365 // MAX_CHUNK_DAYS + 2, chunks
        assert f"market_data: chunks of {MAX_CHUNK_DAYS} days" in report.policies
        ticks_days = chunk_interval_days(ASSUMED_ROWS_PER_DAY["ticks"])
        assert f"ticks: chunks of {ticks_days} days" in report.policies
        intervals = dict(
            await conn.fetch("SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions")
        )
        assert intervals["market_data"] == timedelta(days=MAX_CHUNK_DAYS)
        assert intervals["ticks"] == timedelta(days=ticks_days)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("rows_per_day", "days"),
    [
        (24.0, MAX_CHUNK_DAYS),
        (30_000.0, 90),
        (200_000.0, 25),
        (1_000_000.0, 5),
        (1e9, 1),
        (0.0, MAX_CHUNK_DAYS),
    ],
)
def test_chunk_interval_days(rows_per_day, days):
    assert chunk_interval_days(rows_per_day) == days


async def test_the_database_pod_has_a_worker_for_every_job(timescale):
    """Every job migrate creates (all policies on) plus TimescaleDB's own and one scheduler per
    database fit the background workers the operator's StatefulSet configures, and those plus the
    parallel workers fit max_worker_processes (the default 8 left jobs failing to start)."""
    conn = await connect(timescale.dsn)
    try:
        await migrate(conn, retention_days=730, compress_after_days=7)
        jobs = await conn.fetchval("SELECT count(*) FROM timescaledb_information.jobs")
        schedules = dict(
            await conn.fetch(
                "SELECT hypertable_name, schedule_interval FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
            )
        )
    finally:
        await conn.close()
    assert jobs >= 15
    stack = TradingStackSpec.parse({}, Meta(name="demo", namespace="trading", uid="1", generation=1))
    args = build_db_statefulset(stack)["spec"]["template"]["spec"]["containers"][0]["args"]
    settings = dict(a.split("=", 1) for a in args[2::2])
    assert args[0] == "postgres" and set(args[1::2]) == {"-c"}
    workers = int(settings["timescaledb.max_background_workers"])
    assert jobs + 3 <= workers  # schedulers: mt5db, postgres, template1
    assert workers + int(settings["max_parallel_workers"]) + 1 <= int(settings["max_worker_processes"])
    assert settings["shared_preload_libraries"] == "timescaledb"
    assert sorted(schedules.values()) == sorted(timedelta(minutes=m) for m in (5, 15, 30, 60, 60, 60))
