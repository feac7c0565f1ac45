"""SQL for `market_data`: the one-round-trip monotone upsert, candle queries, per-series stats.

The table is named by mt5db_core.market.tables, and a stored series is read with its
`select_series()`, the statement training's loader uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mt5db_api.db import copy_binary, series_stats
from mt5db_api.db.copy_binary import CandleColumns
from mt5db_core.market.tables import MARKET_DATA, select_series
from mt5db_core.market.timeframes import ORDERED, TIMEFRAMES, can_build

# One statement per request: the arrays are unnested into rows, each key is inserted or merged
# (high = max, low = min, volume = max, open/close from the snapshot with the larger volume, ties ->
# the incoming, newer one). The WHERE skips rows the merge would not change, so an identical
# resend touches nothing (no dead tuple, no WAL) and RETURNING omits it: it is a duplicate.
# `xmax = 0` is true only for a freshly inserted row version; the outer SELECT folds RETURNING
# into two counts, so one row comes back instead of one per candle.
_INSERT_PART = """
INSERT INTO {table} AS m
    (symbol, timeframe, ts, open, high, low, close, volume, spread, real_volume, source)
SELECT s.symbol, s.timeframe, to_timestamp(s.ts), s.open, s.high, s.low, s.close, s.volume,
       {extras_select}, s.source
FROM unnest($1::text::text[], $2::text::text[], $3::text::bigint[], $4::text::float8[],
            $5::text::float8[], $6::text::float8[], $7::text::float8[], $8::text::bigint[],
            $9::text::text[]{extras_params})
     AS s(symbol, timeframe, ts, open, high, low, close, volume, source{extras_names})
ORDER BY 1, 2, 3  -- a fixed lock order: concurrent batches with overlapping keys cannot deadlock
"""
MERGE_ON_CONFLICT = """
ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET
    open = CASE WHEN EXCLUDED.volume >= m.volume THEN EXCLUDED.open ELSE m.open END,
    close = CASE WHEN EXCLUDED.volume >= m.volume THEN EXCLUDED.close ELSE m.close END,
    high = GREATEST(m.high, EXCLUDED.high),
    low = LEAST(m.low, EXCLUDED.low),
    volume = GREATEST(m.volume, EXCLUDED.volume),
    spread = CASE WHEN EXCLUDED.volume >= m.volume THEN coalesce(EXCLUDED.spread, m.spread)
                  ELSE m.spread END,
    real_volume = GREATEST(m.real_volume, EXCLUDED.real_volume),
    updated_at = now()
WHERE (CASE WHEN EXCLUDED.volume >= m.volume THEN EXCLUDED.open ELSE m.open END,
       CASE WHEN EXCLUDED.volume >= m.volume THEN EXCLUDED.close ELSE m.close END,
       GREATEST(m.high, EXCLUDED.high), LEAST(m.low, EXCLUDED.low), GREATEST(m.volume, EXCLUDED.volume))
      IS DISTINCT FROM (m.open, m.close, m.high, m.low, m.volume)
"""
_FULL = {
    "table": MARKET_DATA,
    "extras_select": "s.spread, s.real_volume",
    "extras_params": ", $10::text::float8[], $11::text::bigint[]",
    "extras_names": ", spread, real_volume",
}
_SLIM = {
    "table": MARKET_DATA,
    "extras_select": "NULL::float8, NULL::bigint",
    "extras_params": "",
    "extras_names": "",
}


def _upsert(parts: dict[str, str]) -> str:
    return (
        "WITH changed AS ("
        + _INSERT_PART.format(**parts)
        + MERGE_ON_CONFLICT
        + "RETURNING m.symbol, m.timeframe, m.ts, (xmax = 0) AS inserted)"
        + series_stats.fold("changed")
        + "\nSELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS changed FROM changed"
    )


# With spread/real_volume arrays ($10, $11), and without them for the usual EA batch where both
# are absent (two fewer arrays to encode and unnest per request). Each statement also folds what it
# changed into series_stats (series_stats.py), so the stats commit with the rows.
UPSERT_SQL = _upsert(_FULL)
UPSERT_SQL_SLIM = _upsert(_SLIM)
# The coalesced form (several requests in one statement) needs each changed key back to tell every
# request its own counts; only changed rows come back, so resends cost nothing extra.
UPSERT_KEYS_SQL = (
    "WITH changed AS ("
    + _INSERT_PART.format(**_FULL)
    + MERGE_ON_CONFLICT
    + "RETURNING m.symbol, m.timeframe, m.ts, (xmax = 0) AS inserted)"
    + series_stats.fold("changed")
    + "\nSELECT symbol, timeframe, extract(epoch FROM ts)::bigint, inserted FROM changed"
)


def _numbers(values: list[Any]) -> str:
    """A PostgreSQL array literal of numbers ('{1.1,2,NULL}').

    Columns travel as text array literals rather than Python lists: asyncpg's array encoder runs an
    abstract-base-class isinstance check per element (~10% of the API's CPU on 500-candle batches,
    cProfile), while repr() + join is cheap and PostgreSQL parses the literal in C. repr() of a
    finite float is its shortest round-trip form, so the stored double is bit-identical.
    """
    if None in values:
        return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
    return "{" + ",".join(map(repr, values)) + "}"


def _names(values: list[str]) -> str:
    """An array literal of validated names (symbols: [A-Za-z0-9._#+-], timeframes), each quoted so
    that a symbol spelled NULL stays a string."""
    if not values:
        return "{}"
    return '{"' + '","'.join(values) + '"}'


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    duplicates: int
    fell_back: bool = False  # the optimistic INSERT hit an existing key


async def upsert_candles(
    conn: Any,
    candles: CandleColumns,
    *,
    source: str,
    optimistic: bool = False,
    command_timeout: float | None = None,
) -> UpsertResult:
    """Insert or merge distinct-key candles in one statement.

    optimistic: first try a binary COPY (all keys new); on a unique violation run the merge
    statement instead (then two round trips, the failed COPY leaving dead tuples for vacuum).
    """
    n = len(candles.symbol)
    if optimistic:
        # All keys new (the bet): binary COPY straight into the table, the fastest write there is.
        # A unique violation aborts the whole COPY (nothing stored) and the merge answers instead.
        payload = copy_binary.market_data_payload(candles, source)
        try:
            async with conn.transaction():  # the stats fold and the rows commit together
                await conn.execute(
                    series_stats.FOLD_NEW_KEYS_SQL, candles.symbol, candles.timeframe, candles.ts,
                    timeout=command_timeout,
                )  # fmt: skip
                # a memoryview: asyncpg would take bytes for a file path
                await conn.copy_to_table(
                    MARKET_DATA, source=memoryview(payload), columns=list(copy_binary.COLUMNS),
                    format="binary", timeout=command_timeout,
                )  # fmt: skip
        except asyncpg.UniqueViolationError:
            pass
        else:
            return UpsertResult(inserted=n, updated=0, duplicates=0, fell_back=False)
    # The text literals are built only here: the optimistic COPY above does not need them, and
    # building them first cost a quarter of the API's CPU on 500-candle batches (py-spy).
    full = any(x is not None for x in candles.spread) or any(x is not None for x in candles.real_volume)
    row = await conn.fetchrow(
        UPSERT_SQL if full else UPSERT_SQL_SLIM, *_literals(candles, [source] * n, extras=full),
        timeout=command_timeout,
    )  # fmt: skip
    inserted, changed = int(row[0]), int(row[1])
    return UpsertResult(
        inserted=inserted, updated=changed - inserted, duplicates=n - changed, fell_back=optimistic
    )


async def upsert_candles_keys(
    conn: Any, candles: CandleColumns, *, sources: list[str], command_timeout: float | None = None
) -> dict[tuple[str, str, int], bool]:
    """The same merge for distinct keys from several requests (`sources`: each row's);
    returns {changed key: inserted?}."""
    rows = await conn.fetch(
        UPSERT_KEYS_SQL, *_literals(candles, sources, extras=True), timeout=command_timeout
    )
    return {(r[0], r[1], int(r[2])): bool(r[3]) for r in rows}


def _literals(candles: CandleColumns, sources: list[str], *, extras: bool) -> tuple[str, ...]:
    """The statement parameters $1..$9 (and $10, $11 with extras) as array literals."""
    c = candles
    columns = (
        _names(c.symbol), _names(c.timeframe), _numbers(c.ts), _numbers(c.open), _numbers(c.high),
        _numbers(c.low), _numbers(c.close), _numbers(c.volume), _names(sources),
    )  # fmt: skip
    return (*columns, _numbers(c.spread), _numbers(c.real_volume)) if extras else columns


async def stored_timeframes(
    conn: Any, *, symbol: str, start: datetime | None, end: datetime | None
) -> set[str]:
    """The timeframes that hold at least one bar of `symbol` in [start, end) (one index probe each)."""
    rows = await conn.fetch(
        f"""
        SELECT tf FROM unnest($1::text[]) AS tf
        WHERE EXISTS (SELECT 1 FROM {MARKET_DATA}
                      WHERE symbol = $2 AND timeframe = tf
                        AND ($3::timestamptz IS NULL OR ts >= $3)
                        AND ($4::timestamptz IS NULL OR ts < $4))
        """,  # noqa: S608 - the table name is a constant; values are bound
        [t.name for t in ORDERED], symbol, start, end,
    )  # fmt: skip
    return {r[0] for r in rows}


def source_for(target: str, stored: set[str]) -> str | None:
    """The stored timeframe to answer `target` from: itself when present, else the finest that nests."""
    if target in stored:
        return target
    for tf in ORDERED:
        if tf.name in stored and can_build(target, tf.name) and tf.seconds < TIMEFRAMES[target].seconds:
            return tf.name
    return None


def bucket_sql(target: str) -> str:
    """SQL expression flooring `ts` to the target's bucket in the labelled clock (session is UTC)."""
    if target == "MN1":
        return "(date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    if target == "W1":
        return "date_bin(INTERVAL '7 days', ts, TIMESTAMPTZ '1970-01-04 00:00:00+00')"
    seconds = TIMEFRAMES[target].seconds
    return f"date_bin(INTERVAL '{seconds} seconds', ts, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


_COLUMNS = "ts, open, high, low, close, volume"

# The logs hold TimescaleDB's internal time: Unix microseconds. No bar is older than 1970; the
# far-past stub each view's log keeps (before 4713 BC) is.
_INTERNAL_MIN = 0
_INTERNAL_MAX = 2**63 - 1

# A continuous aggregate answers like the raw table only where nothing changed since it was
# materialized: no pending row in the raw hypertable's invalidation log (late, corrected or deleted
# bars; TRUNCATE invalidates everything), and no range of the view's own log below its watermark
# (above it real-time aggregation reads raw rows anyway). Both logs are empty after a refresh.
_PENDING_SQL = """
SELECT EXISTS (
    SELECT 1 FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
    JOIN _timescaledb_catalog.continuous_agg a ON a.raw_hypertable_id = l.hypertable_id
    WHERE a.user_view_schema = 'public' AND a.user_view_name = $1
      AND l.greatest_modified_value >= $2 AND l.lowest_modified_value < $3
) OR EXISTS (
    SELECT 1 FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l
    JOIN _timescaledb_catalog.continuous_agg a ON a.mat_hypertable_id = l.materialization_id
    WHERE a.user_view_schema = 'public' AND a.user_view_name = $1
      AND l.greatest_modified_value >= $2
      AND l.lowest_modified_value < least($3, _timescaledb_functions.cagg_watermark(a.mat_hypertable_id))
)
"""


def _internal(value: datetime | None, default: int) -> int:
    if value is None:
        return default
    return int(value.timestamp()) * 1_000_000


async def view_is_current(conn: Any, view: str, start: datetime | None, end: datetime | None) -> bool:
    """True when continuous aggregate `view` holds no stale bucket in [start, end) (bucket-aligned).

    Where it may, the caller reads raw M1 instead, so answers equal plain PostgreSQL's at all times
    and not only after the next policy refresh. A catalog this code does not know reads raw too.
    """
    try:
        pending = await conn.fetchval(
            _PENDING_SQL, view, _internal(start, _INTERNAL_MIN), _internal(end, _INTERNAL_MAX)
        )
    except asyncpg.PostgresError:
        return False
    return not pending


async def fetch_candles(
    conn: Any,
    *,
    symbol: str,
    target: str,
    source: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    view: str | None = None,
) -> list[Any]:
    """Candles of `target` for [start, end), ascending; the newest `limit` when start is None.

    Read directly when source == target (core's `select_series`), from a continuous aggregate `view`
    when given, else resampled from `source` (open = first, close = last, high = max, low = min,
    volume = sum).
    `target` is validated against the timeframe table, so the interpolated bucket SQL is a constant.
    """
    newest_first = start is None
    order = "DESC" if newest_first else "ASC"
    if view is not None:
        sql = (
            f"SELECT {_COLUMNS} FROM {view} WHERE symbol = $1 AND ($2::timestamptz IS NULL OR ts >= $2) "  # noqa: S608 - constants only; values are bound
            f"AND ($3::timestamptz IS NULL OR ts < $3) ORDER BY ts {order} LIMIT $4"
        )
        args: tuple[Any, ...] = (symbol, start, end, limit)
    elif source == target:
        sql = select_series(newest_first=newest_first)
        args = (symbol, target, start, end, limit)
    else:
        bucket = bucket_sql(target)
        sql = (
            f"SELECT {bucket} AS ts, (array_agg(open ORDER BY ts))[1] AS open, max(high) AS high, "  # noqa: S608 - constants only; values are bound
            "min(low) AS low, (array_agg(close ORDER BY ts DESC))[1] AS close, sum(volume)::bigint AS volume "
            f"FROM {MARKET_DATA} WHERE symbol = $1 AND timeframe = $2 "
            "AND ($3::timestamptz IS NULL OR ts >= $3) AND ($4::timestamptz IS NULL OR ts < $4) "
            f"GROUP BY 1 ORDER BY 1 {order} LIMIT $5"
        )
        args = (symbol, source, start, end, limit)
    rows = await conn.fetch(sql, *args)
    return list(reversed(rows)) if newest_first else list(rows)
