"""/metrics cost against table size: the kept statistics against the scan they replace.

Issue 12 item 8: GET /metrics used to scan the whole table with a window function (cost grows with
rows); it now reads series_stats, one row per series kept by every write (db/series_stats.py). This
fills N generated rows (default 10M over 20 series of M1 bars, by generate_series inside the server),
backfills the stats the way the migration does (the one-time O(rows) cost of an existing table), then
times in one run: the scan (the old read, = the recount of every series) and the kept read, and the
write path's cost of keeping them (an appended 500-bar batch through the upsert statement, with the
stats fold against the same statement without it).

    .venv/bin/python bench/metrics.py [--rows 10000000] [--series 20] [--timeout-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import asyncpg

from mt5db_api.db import market_data, series_stats
from mt5db_api.db.migrations import migrate
from mt5db_local.postgres import LocalPostgres

FILL = """
INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close, volume)
SELECT 'S' || s, 'M1', TIMESTAMPTZ '2010-01-04' + make_interval(mins => i), 1.1, 1.2, 1.0, 1.15, 1
FROM generate_series(1, $1::int) AS s, generate_series(0, $2::int - 1) AS i
"""

# The write statement without the fold: what an upsert cost before series_stats.
UNFOLDED = (
    "WITH changed AS ("  # noqa: S608 - constants of the module under test
    + market_data._INSERT_PART.format(**market_data._SLIM)
    + market_data.MERGE_ON_CONFLICT
    + "RETURNING (xmax = 0) AS inserted)\n"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FROM changed"
)


async def timed(what: str, call: Callable[[], Awaitable[Any]], timeout_s: float) -> float | None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(call(), timeout_s)
    except TimeoutError:
        print(f"{what}: over {timeout_s:.0f} s (stopped)")
        return None
    seconds = time.monotonic() - started
    print(f"{what}: {seconds * 1000:.1f} ms")
    return seconds


def append_batch(series: int, start_min: int, n: int, offset_s: int = 0) -> tuple[str, ...]:
    """n bars of one series from a minute on, as the statement's literals: an append (the EA's
    steady state), or with offset_s = 30 late bars between stored ones (every one probes)."""

    columns = SimpleNamespace(
        symbol=[f"S{series}"] * n, timeframe=["M1"] * n,
        ts=[1262563200 + 60 * (start_min + i) + offset_s for i in range(n)],  # 2010-01-04 + minutes
        open=[1.1] * n, high=[1.2] * n, low=[1.0] * n, close=[1.15] * n, volume=[1] * n,
        spread=[None] * n, real_volume=[None] * n,
    )  # fmt: skip
    return market_data._literals(
        columns,
        ["bench"] * n,
        extras=False,
    )


async def run(args: argparse.Namespace) -> None:
    pg = LocalPostgres()
    pg.start()
    try:
        conn = await asyncpg.connect(pg.create_database("bench_metrics"))
        await migrate(conn)
        per_series = args.rows // args.series
        started = time.monotonic()
        await conn.execute(FILL, args.series, per_series, timeout=None)
        await conn.execute("VACUUM ANALYZE market_data", timeout=None)
        print(f"filled {args.series * per_series} rows in {time.monotonic() - started:.1f} s")
        await timed(
            "backfill of series_stats (the migration, once)",
            lambda: conn.execute(series_stats.BACKFILL_SQL, timeout=None),
            3600,
        )
        scan = await timed(
            "scan of every series (the old /metrics read)",
            lambda: conn.execute(series_stats.BACKFILL_SQL, timeout=None),
            args.timeout_s,
        )
        reads = [
            await timed(f"kept read {i + 1}", lambda: series_stats.read(conn), args.timeout_s)
            for i in range(3)
        ]
        kept = min(r for r in reads if r is not None)
        if scan is not None:
            print(
                f"read ratio: the scan costs {scan / kept:,.0f}x the kept read at {args.series * per_series:,} rows"
            )

        # The write path's cost of keeping them: alternate folded and unfolded appends.
        folded_ms: list[float] = []
        unfolded_ms: list[float] = []
        at = per_series
        for i in range(40):
            for sql, sink in ((market_data.UPSERT_SQL_SLIM, folded_ms), (UNFOLDED, unfolded_ms)):
                literals = append_batch(1 + i % args.series, at, 500)
                at += 500
                started = time.monotonic()
                await conn.fetchrow(sql, *literals)
                sink.append((time.monotonic() - started) * 1000)
        f, u = statistics.median(folded_ms), statistics.median(unfolded_ms)
        print(f"500-bar append, median of 40: {f:.2f} ms with the fold, {u:.2f} ms without ({f / u:.2f}x)")
        folded_ms, unfolded_ms = [], []
        for i in range(40):
            for sql, sink, offset in (
                (market_data.UPSERT_SQL_SLIM, folded_ms, 30),
                (UNFOLDED, unfolded_ms, 15),
            ):
                literals = append_batch(1 + i % args.series, 1000 * i, 500, offset)
                started = time.monotonic()
                await conn.fetchrow(sql, *literals)
                sink.append((time.monotonic() - started) * 1000)
        f, u = statistics.median(folded_ms), statistics.median(unfolded_ms)
        print(
            f"500 late bars inside the series, median of 40: {f:.2f} ms with the fold, {u:.2f} ms without ({f / u:.2f}x)"
        )
        await conn.close()
    finally:
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
