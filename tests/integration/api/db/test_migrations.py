"""Migrations: idempotent, versioned, safe when several replicas migrate at once; Timescale guarded."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mt5db_api.db.migrations import (
    CURRENT_VERSION,
    MIGRATIONS,
    NOT_AVAILABLE,
    NOT_PRELOADED,
    migrate,
    schema_version,
    timescale_available,
    timescale_facts,
    timescale_unusable,
)

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
            "series_stats",
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
            assert report.skipped == [NOT_AVAILABLE]
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


async def test_a_session_ended_mid_migration_raises_its_own_error_not_the_unlock(database_url):
    """A server-side termination (what FATAL "must be preloaded" does too) ends the session; the
    advisory lock goes with it, so the caller must see the real error and the next run proceed."""
    setup = await asyncpg.connect(database_url)
    migrating = await asyncpg.connect(database_url)
    try:
        await migrate(setup)
        # Hold schema_migrations so the second run blocks inside its lock, then end its session.
        blocker = setup.transaction()
        await blocker.start()
        await setup.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        run = asyncio.ensure_future(migrate(migrating))
        pid = migrating.get_server_pid()
        for _ in range(100):
            waiting = await setup.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the migration never blocked on the held table"
        assert await setup.fetchval("SELECT pg_terminate_backend($1)", pid)
        # The termination itself, not InterfaceError "connection is closed" from the unlock.
        with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
            await asyncio.wait_for(run, timeout=10)
        await blocker.rollback()
        again = await asyncpg.connect(database_url)
        try:
            report = await asyncio.wait_for(migrate(again), timeout=10)  # the lock died with the session
            assert report.version == CURRENT_VERSION
        finally:
            await again.close()
    finally:
        await setup.close()
        await migrating.close()


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"available": False, "preloaded": False, "installed": False}, NOT_AVAILABLE),
        # the finding: installed on disk, not preloaded -> CREATE EXTENSION would be FATAL
        ({"available": True, "preloaded": False, "installed": False}, NOT_PRELOADED),
        ({"available": True, "preloaded": True, "installed": False}, None),
        ({"available": True, "preloaded": False, "installed": True}, None),
    ],
)
def test_available_means_usable(facts, reason):
    assert timescale_unusable(**facts) == reason


async def test_facts_of_a_plain_server(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        facts = await timescale_facts(conn)
        assert facts == {"available": False, "preloaded": False, "installed": False}
        assert (await migrate(conn)).skipped == [NOT_AVAILABLE]
    finally:
        await conn.close()
