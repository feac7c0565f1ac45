"""Experimental SQL ingest path: the whole candle batch as one jsonb parameter, checked and merged
by PostgreSQL in one statement, so the API process does no per-candle work.

Exactness by construction: the statement stores the batch only when every item is in a strict,
common subset that the Python path (`parsing.validate_candles`) provably accepts with the same
values: an object with a string ISO-8601 ts (seconds, optional 1-6 digit fraction, Z / +-HH:MM /
no zone = UTC) inside 1990 .. now + 24 h - 1 s, a valid symbol, a timeframe written exactly as a
canonical name or code string, plain positive decimal prices (at most 40 characters: parsed by
float8in, correctly rounded like orjson/float(), so the doubles are bit-identical) that satisfy the
OHLC rules, integer volume / real_volume of at most 15 digits (or absent/null), an optional plain
decimal spread >= 0, and no key repeated inside the batch. Anything else (any invalid item, an
in-batch snapshot, another envelope error, more than max_items) stores nothing and returns None:
the caller then runs the authoritative Python path, which gives the per-item reasons. A body that
PostgreSQL cannot read (NaN tokens, a NUL escape, nesting past its stack) raises `Unreadable`: the caller falls back
too, and so does a body nested 12 levels deep or more. Merging into stored rows is the same ON CONFLICT statement as `market_data.upsert_candles`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from mt5db_api.db.market_data import _MERGE_PART
from mt5db_api.timeframes import SUNDAY_ORIGIN, TIMEFRAMES, WEEK

EPOCH_1990 = 631152000
DAY = 86400

# (alias, canonical name, fixed width in seconds or 0 for W1/MN1)
_TF_ROWS = ", ".join(
    f"('{alias}', '{tf.name}', {tf.seconds if tf.fixed else 0})"
    for tf in TIMEFRAMES.values()
    for alias in (tf.name, str(tf.code))
)

# Accepted ts spellings, as shapes (digits -> 0): [T or space] seconds, optional 1-6 digit
# fraction, Z / +HH:MM / -HH:MM / no zone (= UTC). Field ranges are checked
# below (hour <= 23, second <= 59: PostgreSQL itself would take 24:00 and leap seconds); an
# impossible date (02-30) makes PostgreSQL raise a DataError, which falls back as well.
_SHAPES = ", ".join(
    f"('0000-00-00{sep}00:00:00{frac}{zone}', {'true' if len(zone) == 6 else 'false'})"
    for sep in ("T", " ")
    for frac in ["", *("." + "0" * n for n in range(1, 7))]
    for zone in ("", "Z", "+00:00", "-00:00")
)
_SYMBOL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._#+-"
# Numbers are read by jsonb (exact decimal) and cast to float8 through float8in: correctly
# rounded, like orjson and float(int). Magnitudes >= 1e300 fall back (Python tells a huge integer,
# not finite, from a huge float there; jsonb cannot).
_BIG = "1e300"


def _num(name: str) -> str:
    return f"CASE WHEN jsonb_typeof(v->'{name}') = 'number' THEN (v->>'{name}')::float8 END"


def _count(name: str) -> str:
    return f"CASE WHEN jsonb_typeof(v->'{name}') = 'number' THEN (v->>'{name}')::numeric END"


def _absent(name: str) -> str:
    return f"coalesce(jsonb_typeof(v->'{name}'), 'null') = 'null'"


# $1 body (jsonb), $2 now (epoch seconds, float8), $3 source, $4 max items.
# Each stage is MATERIALIZED: inlined, its expressions would be copied into every later use.
INGEST_JSON_SQL = f"""
WITH env AS (
    -- nesting 12 deep or more (Python refuses ~1000 deep as invalid_json; jsonb goes deeper): Python
    SELECT CASE WHEN jsonb_path_exists(d, 'strict $.**{{12}}') THEN NULL
           ELSE CASE jsonb_typeof(d)
               WHEN 'array' THEN d
               WHEN 'object' THEN CASE WHEN NOT d ? 'items' THEN jsonb_build_array(d)
                                       WHEN jsonb_typeof(d->'items') = 'array' THEN d->'items' END
           END END AS items
    FROM (SELECT $1::jsonb AS d) AS b
),
tf(alias, name, width) AS (VALUES {_TF_ROWS}),
shape(shape, offset_zone) AS (VALUES {_SHAPES}),
fld AS MATERIALIZED (
    SELECT e.ord, jsonb_typeof(e.v) = 'object' AS obj,
           CASE WHEN jsonb_typeof(v->'ts') = 'string' THEN v->>'ts' END AS ts,
           CASE WHEN jsonb_typeof(v->'symbol') = 'string' THEN v->>'symbol' END AS symbol,
           CASE WHEN jsonb_typeof(v->'timeframe') = 'string' THEN v->>'timeframe' END AS tf_raw,
           {_num("open")} AS open, {_num("high")} AS high, {_num("low")} AS low, {_num("close")} AS close,
           {_absent("volume")} AS no_volume, {_count("volume")} AS volume,
           {_absent("spread")} AS no_spread, {_num("spread")} AS spread,
           {_absent("real_volume")} AS no_real, {_count("real_volume")} AS real_volume
    FROM env CROSS JOIN LATERAL jsonb_array_elements(env.items) WITH ORDINALITY AS e(v, ord)
),
chk AS MATERIALIZED (
    SELECT f.*, tf.name AS timeframe, tf.width, sh.offset_zone,
           coalesce(f.obj AND tf.name IS NOT NULL AND sh.shape IS NOT NULL
               AND length(f.symbol) BETWEEN 1 AND 32 AND ltrim(f.symbol, '{_SYMBOL_CHARS}') = ''
               AND f.open > 0 AND f.high > 0 AND f.low > 0 AND f.close > 0 AND f.high < {_BIG}
               AND f.low <= f.open AND f.open <= f.high AND f.low <= f.close AND f.close <= f.high
               AND (f.no_volume OR (f.volume >= 0 AND f.volume < 1e15 AND f.volume = trunc(f.volume)))
               AND (f.no_real OR (f.real_volume >= 0 AND f.real_volume < 1e15
                                  AND f.real_volume = trunc(f.real_volume)))
               AND (f.no_spread OR (f.spread >= 0 AND f.spread < {_BIG})), false) AS shape_ok
    FROM fld AS f
    LEFT JOIN tf ON tf.alias = f.tf_raw
    LEFT JOIN shape AS sh ON sh.shape = translate(f.ts, '0123456789', '0000000000')
),
parts AS MATERIALIZED (
    SELECT c.*,
           CASE WHEN c.shape_ok THEN substr(c.ts, 6, 2)::int END AS mo,
           CASE WHEN c.shape_ok THEN substr(c.ts, 9, 2)::int END AS dd,
           CASE WHEN c.shape_ok THEN substr(c.ts, 12, 2)::int END AS hh,
           CASE WHEN c.shape_ok THEN substr(c.ts, 15, 2)::int END AS mi,
           CASE WHEN c.shape_ok THEN substr(c.ts, 18, 2)::int END AS ss,
           CASE WHEN c.offset_zone THEN substr(c.ts, length(c.ts) - 4, 2)::int ELSE 0 END AS oh,
           CASE WHEN c.offset_zone THEN right(c.ts, 2)::int ELSE 0 END AS om
    FROM chk AS c
),
typed AS MATERIALIZED (
    -- whole epoch seconds of the instant (the fraction is dropped, as parse_ts's // 1 does), from
    -- the digits once every field is in range: make_date raises for an impossible date such as
    -- 02-30 (a DataError: the Python path answers)
    SELECT p.*,
           CASE WHEN p.shape_ok AND p.mo BETWEEN 1 AND 12 AND p.dd BETWEEN 1 AND 31 AND p.hh <= 23
                     AND p.mi <= 59 AND p.ss <= 59 AND p.oh <= 23 AND p.om <= 59 THEN
               (make_date(substr(p.ts, 1, 4)::int, p.mo, p.dd) - DATE '1970-01-01')::bigint * 86400
               + p.hh * 3600 + p.mi * 60 + p.ss
               - (CASE WHEN substr(p.ts, length(p.ts) - 5, 1) = '-' THEN -1 ELSE 1 END) * (p.oh * 3600 + p.om * 60)
           END AS epoch
    FROM parts AS p
),
val AS MATERIALIZED (
    SELECT t.symbol, t.timeframe, t.open, t.high, t.low, t.close,
           CASE WHEN t.no_volume THEN 0 ELSE t.volume::bigint END AS volume,
           CASE WHEN NOT t.no_spread THEN t.spread END AS spread,
           CASE WHEN NOT t.no_real THEN t.real_volume::bigint END AS real_volume,
           -- parse_ts: 1990 <= instant <= now + 24 h; a fraction may follow the whole second, hence + 1
           coalesce(t.epoch IS NOT NULL AND t.epoch >= {EPOCH_1990} AND t.epoch + 1 <= $2::float8 + {DAY}, false) AS good,
           CASE WHEN t.width > 0 THEN t.epoch - t.epoch % t.width
                WHEN t.timeframe = 'W1' THEN t.epoch - (t.epoch - {SUNDAY_ORIGIN}) % {WEEK}
                WHEN t.timeframe = 'MN1' THEN extract(epoch FROM date_trunc(
                     'month', to_timestamp(t.epoch) AT TIME ZONE 'UTC'))::bigint
           END AS bucket
    FROM typed AS t
),
stat AS (
    SELECT count(*) AS n,
           count(*) > 0 AND count(*) <= $4::int AND bool_and(good)
           AND (SELECT count(*) FROM (SELECT DISTINCT symbol, timeframe, bucket FROM val) AS k) = count(*)
           AS go  -- a key twice (in-batch snapshots): Python merges them
    FROM val
),
changed AS (
    INSERT INTO market_data AS m
        (symbol, timeframe, ts, open, high, low, close, volume, spread, real_volume, source)
    SELECT s.symbol, s.timeframe, to_timestamp(s.bucket), s.open, s.high, s.low, s.close, s.volume,
           s.spread, s.real_volume, $3::text
    FROM val AS s WHERE (SELECT go FROM stat)
    ORDER BY 1, 2, 3  -- the same fixed lock order as the Python path's statement
    {_MERGE_PART}
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT go FROM stat) AS go, (SELECT n FROM stat) AS n,
       count(*) FILTER (WHERE inserted) AS inserted, count(*) AS changed
FROM changed
"""  # noqa: S608 - constants of this module only; values are bound


@dataclass(frozen=True)
class JsonIngestResult:
    received: int
    inserted: int
    updated: int
    duplicates: int


async def ingest_json(
    conn: Any, *, body: str, now: float, source: str, max_items: int, command_timeout: float | None = None
) -> JsonIngestResult | None:
    """Validate and merge a whole candle body in PostgreSQL; None = nothing stored, use Python.

    Raises `Unreadable` when PostgreSQL cannot read the body (the caller falls back as well).
    """
    row = await conn.fetchrow(INGEST_JSON_SQL, body, now, source, max_items, timeout=command_timeout)
    if not row["go"]:
        return None
    n, inserted, changed = int(row["n"]), int(row["inserted"]), int(row["changed"])
    return JsonIngestResult(received=n, inserted=inserted, updated=changed - inserted, duplicates=n - changed)


# Not JSON to PostgreSQL (NaN tokens, \\u0000, an impossible date in a ts), or nested too deep for
# its parser's stack: nothing was stored, the Python path answers.
Unreadable = (asyncpg.DataError, asyncpg.ProgramLimitExceededError)
