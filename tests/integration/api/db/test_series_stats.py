"""series_stats, kept by every write path, equals what the stored rows say (a real PostgreSQL):
random appends, late bars, resends and merges through the direct statement, the optimistic COPY and
the coalesced form; a raced write is detected and recounted; rows the stats never saw are too."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime

import asyncpg
import pytest

from mt5db_api.db import market_data, series_stats
from mt5db_api.db.migrations import migrate
from mt5db_api.ingest.batch import CandleBatch

pytestmark = pytest.mark.postgres

WIDTH = {"M1": 60, "H1": 3600}
MONDAY = int(datetime(2024, 1, 8, tzinfo=UTC).timestamp())


def candle(batch: CandleBatch, symbol: str, timeframe: str, ts: int, volume: int) -> None:
    batch.add(ts, symbol, timeframe, 1.1, 1.2, 1.0, 1.15, volume, None, None)


def expected_gaps(stamps: list[int], width: int | None) -> int | None:
    """The gap rule, independently: a step longer than the width, except the weekly close (a Friday
    to Sunday/Monday step of at most 3 days + one width)."""
    if width is None:
        return None
    gaps = 0
    for prev, ts in itertools.pairwise(stamps):
        step = ts - prev
        weekend = (
            datetime.fromtimestamp(prev, UTC).isoweekday() == 5
            and datetime.fromtimestamp(ts, UTC).isoweekday() in (7, 1)
            and step <= 3 * 86400 + width
        )
        gaps += step > width and not weekend
    return gaps


async def assert_matches_rows(conn: asyncpg.Connection) -> None:
    stats = {(r["symbol"], r["timeframe"]): r for r in await series_stats.read(conn)}
    series = await conn.fetch(
        "SELECT symbol, timeframe, array_agg(extract(epoch FROM ts)::bigint ORDER BY ts) AS stamps "
        "FROM market_data GROUP BY 1, 2"
    )
    assert set(stats) == {(r["symbol"], r["timeframe"]) for r in series}
    for r in series:
        got, stamps = stats[(r["symbol"], r["timeframe"])], list(r["stamps"])
        assert got["count"] == len(stamps)
        assert (int(got["first"].timestamp()), int(got["last"].timestamp())) == (stamps[0], stamps[-1])
        assert got["gaps"] == expected_gaps(stamps, WIDTH.get(r["timeframe"])), (r["symbol"], r["timeframe"])
        assert got["exact"]


async def write(conn: asyncpg.Connection, batch: CandleBatch, path: str) -> None:
    if path == "keys":
        await market_data.upsert_candles_keys(conn, batch, sources=["test"] * len(batch.ts))
    else:
        await market_data.upsert_candles(conn, batch, source="test", optimistic=path == "copy")


async def test_every_write_path_keeps_the_stats_equal_to_the_rows(database_url):
    rng = random.Random(12)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        # Market hours with holes, weekends and a W1 series (no width, no gaps).
        universe = {
            ("EURUSD", "M1"): [MONDAY + 60 * i for i in range(3000) if rng.random() < 0.9],
            ("EURUSD", "H1"): [MONDAY + 3600 * i for i in range(400) if (i // 24) % 7 < 5 or i % 24 == 0],
            ("GBPUSD", "W1"): [MONDAY + 7 * 86400 * i for i in range(30)],
        }
        pending = {key: rng.sample(stamps, len(stamps)) for key, stamps in universe.items()}
        for key in pending:  # mostly in order (appends), some late bars in the middle
            pending[key][: len(pending[key]) * 3 // 4] = sorted(pending[key][: len(pending[key]) * 3 // 4])
        written: list[tuple[str, str, int]] = []
        step = 0
        while any(pending.values()):
            batch = CandleBatch()
            for (symbol, timeframe), stamps in pending.items():
                for _ in range(min(len(stamps), rng.randint(0, 120))):
                    candle(batch, symbol, timeframe, stamps.pop(0), rng.randint(1, 50))
            seen = {(s, t, ts) for s, t, ts in zip(batch.symbol, batch.timeframe, batch.ts, strict=True)}
            # resends and merges of stored bars (distinct keys within one batch, as ingest makes them)
            for symbol, timeframe, ts in rng.sample(written, min(len(written), 20)):
                if (symbol, timeframe, ts) not in seen:
                    seen.add((symbol, timeframe, ts))
                    candle(batch, symbol, timeframe, ts, rng.randint(1, 100))
            written.extend(zip(batch.symbol, batch.timeframe, batch.ts, strict=True))
            await write(conn, batch, ("direct", "copy", "keys")[step % 3])
            step += 1
            if step % 7 == 0:
                await assert_matches_rows(conn)
        await assert_matches_rows(conn)
        assert step > 20
        # The recount of a series gives what the writes kept (the same rule in SQL).
        before = await conn.fetchrow(
            "SELECT count, gaps FROM series_stats WHERE symbol = 'EURUSD' AND timeframe = 'M1'"
        )
        await series_stats.refresh(conn, "EURUSD", "M1")
        after = await conn.fetchrow(
            "SELECT count, gaps FROM series_stats WHERE symbol = 'EURUSD' AND timeframe = 'M1'"
        )
        assert tuple(before) == tuple(after) and after["gaps"] > 0
    finally:
        await conn.close()


async def test_a_raced_write_is_detected_and_the_read_recounts(database_url):
    """Two bars land in one old step from two transactions at once: each fold saw a snapshot
    without the other's bar, so the summed gap deltas are wrong (1 instead of 0); the version check
    marks the row inexact and the next read recounts it."""
    a, b = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        await migrate(a)
        first = CandleBatch()
        candle(first, "EURUSD", "M1", MONDAY, 1)
        candle(first, "EURUSD", "M1", MONDAY + 180, 1)  # one gap: 3 minutes
        await write(a, first, "direct")
        one, two = CandleBatch(), CandleBatch()
        candle(one, "EURUSD", "M1", MONDAY + 60, 1)
        candle(two, "EURUSD", "M1", MONDAY + 120, 1)
        async with a.transaction():
            await write(a, one, "direct")
            racing = asyncio.create_task(write(b, two, "direct"))
            for _ in range(200):  # until b waits on the stats row a holds
                waiting = await a.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                    b.get_server_pid(),
                )
                if waiting:
                    break
                await asyncio.sleep(0.02)
            assert waiting, "the second write never waited for the first"
        await racing
        row = await a.fetchrow("SELECT gaps, exact, count FROM series_stats")
        assert (row["count"], row["gaps"], row["exact"]) == (4, 1, False)  # the deltas alone are wrong
        await assert_matches_rows(a)  # read() recounted: 0 gaps, exact again
    finally:
        await a.close()
        await b.close()


async def test_rows_written_around_the_stats_are_recounted(database_url):
    """A series with rows but no stats row (written by SQL, not by ingest): the first write through
    the API cannot trust its delta, marks the row inexact, and the read recounts."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close) "
            "SELECT 'EURUSD', 'M1', to_timestamp($1::bigint + 120 * i), 1, 1, 1, 1 FROM generate_series(0, 9) i",
            MONDAY,
        )
        later = CandleBatch()
        candle(later, "EURUSD", "M1", MONDAY + 3600, 1)
        await write(conn, later, "copy")
        assert await conn.fetchval("SELECT exact FROM series_stats") is False
        await assert_matches_rows(conn)
    finally:
        await conn.close()
