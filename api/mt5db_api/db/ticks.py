"""SQL for `ticks`: raw ticks kept in arrival order, and the idempotent tick -> M1 derivation."""

from __future__ import annotations

from typing import Any

from mt5db_api.db.market_data import MERGE_ON_CONFLICT
from mt5db_core.market.tables import MARKET_DATA, TICKS

INSERT_SQL = f"""
INSERT INTO {TICKS} (symbol, ts, bid, ask, last, volume, flags, digits, spread, meta)
SELECT s.symbol, to_timestamp(s.ts), s.bid, s.ask, s.last, s.volume, s.flags, s.digits, s.spread,
       s.meta::jsonb
FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::bigint[],
            $7::int[], $8::smallint[], $9::float8[], $10::text[])
     WITH ORDINALITY AS s(symbol, ts, bid, ask, last, volume, flags, digits, spread, meta, n)
ORDER BY s.n
"""  # noqa: S608 - the table name is a constant; values are bound

# Recompute every touched minute from ALL its ticks (never from the partial batch), then merge it
# into market_data with the same monotone upsert as /ingest: a minute's tick set only grows, so the
# recomputed bar dominates and re-running is a no-op (duplicate).
_DERIVE_BARS = f"""
WITH touched AS (
    SELECT DISTINCT t.symbol, date_bin(INTERVAL '1 minute', to_timestamp(t.ts), TIMESTAMPTZ '1970-01-01') AS minute
    FROM unnest($1::text[], $2::float8[]) AS t(symbol, ts)
),
bars AS (
    SELECT k.symbol, k.minute,
           (array_agg((x.bid + x.ask) / 2 ORDER BY x.ts, x.seq))[1] AS open,
           max((x.bid + x.ask) / 2) AS high,
           min((x.bid + x.ask) / 2) AS low,
           (array_agg((x.bid + x.ask) / 2 ORDER BY x.ts DESC, x.seq DESC))[1] AS close,
           count(*) AS volume
    FROM touched k
    JOIN {TICKS} x ON x.symbol = k.symbol AND x.ts >= k.minute AND x.ts < k.minute + INTERVAL '1 minute'
    GROUP BY k.symbol, k.minute
)
INSERT INTO {MARKET_DATA} AS m (symbol, timeframe, ts, open, high, low, close, volume, source)
SELECT symbol, 'M1', minute, open, high, low, close, volume, 'ticks' FROM bars
"""  # noqa: S608 - the table names are constants; values are bound
DERIVE_SQL = _DERIVE_BARS + MERGE_ON_CONFLICT


async def insert_ticks(
    conn: Any,
    *,
    symbol: list[str],
    ts: list[float],
    bid: list[float],
    ask: list[float],
    last: list[float],
    volume: list[int],
    flags: list[int],
    digits: list[int | None],
    spread: list[float | None],
    meta: list[str | None],
    derive_m1: bool,
    command_timeout: float | None = None,
) -> int:
    """Store every tick (arrival order = seq) and optionally re-derive the touched M1 bars; one
    transaction, so nothing is acknowledged before both are committed. Returns ticks stored."""
    async with conn.transaction():
        status: str = await conn.execute(
            INSERT_SQL,
            symbol,
            ts,
            bid,
            ask,
            last,
            volume,
            flags,
            digits,
            spread,
            meta,
            timeout=command_timeout,
        )
        if derive_m1:
            await conn.execute(DERIVE_SQL, symbol, ts, timeout=command_timeout)
    return int(status.split()[-1])
