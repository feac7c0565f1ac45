"""/metrics cost against table size: the per-series statistics query on N generated rows.

Issue 12 item 8: the statistics behind GET /metrics (db/market_data.series_stats) scan the whole
table with a window function, so their cost grows with rows, not series. This prints the time of
one call at the given size (default 10M rows over 20 series of M1 bars), bounded by --timeout-s,
as the figure a fix must change. Starts its own LocalPostgres (fsync off); rows come from
generate_series inside the server (no client transfer).

    .venv/bin/python bench/metrics.py [--rows 10000000] [--series 20] [--timeout-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg

from mt5db_api.db import market_data
from mt5db_api.db.migrations import migrate
from mt5db_local.postgres import LocalPostgres

FILL = """
INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close, volume)
SELECT 'S' || s, 'M1', TIMESTAMPTZ '2010-01-04' + make_interval(mins => i), 1.1, 1.2, 1.0, 1.15, 1
FROM generate_series(1, $1::int) AS s, generate_series(0, $2::int - 1) AS i
"""


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
        for attempt in range(2):
            started = time.monotonic()
            try:
                rows = await market_data_stats(conn, args.timeout_s)
            except TimeoutError:
                print(f"series_stats call {attempt + 1}: over {args.timeout_s:.0f} s (stopped)")
                break
            print(
                f"series_stats call {attempt + 1}: {time.monotonic() - started:.2f} s for {len(rows)} series"
            )
        await conn.close()
    finally:
        pg.stop()


async def market_data_stats(conn: asyncpg.Connection, timeout_s: float) -> list[object]:
    return await asyncio.wait_for(market_data.series_stats(conn), timeout_s)


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
