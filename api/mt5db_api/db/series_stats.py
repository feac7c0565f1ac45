"""`series_stats`: per (symbol, timeframe) count, first, last, last arrival, last update and gaps,
kept by every write to `market_data` so that GET /metrics costs O(series), not O(rows).

Each write statement folds what it changed into the table in the same statement (the COPY path:
in the same transaction), against the statement's own snapshot of `market_data`, which does not yet
hold the new rows. A new bar t with old neighbours p < t < q replaces the old step (p, q) by
(p, t) and (t, q); new bars falling into one old step chain together. Only the steps touching new
bars are looked at: two index probes per new bar inside the series, none for an append after the
last bar (the common case: the stats row knows the last bar).

Counts, first and last are exact under any concurrency (each insert is counted by the one statement
that made it). The gap delta is exact only against the snapshot it was computed on: a write that
raced another one for the same series (the stats row's `version` moved between snapshot and update)
marks the row inexact, and the next read recounts that one series under its row lock (`refresh`).

A gap is a step between consecutive bars longer than the bar width, except a Friday -> Sunday/Monday
step of at most 3 days + one width (the weekly close, on the labelled clock). Holidays count.
W1/MN1 have no fixed width and report no gaps.
"""

from __future__ import annotations

from typing import Any

from mt5db_core.market.tables import MARKET_DATA, SERIES_STATS
from mt5db_core.market.timeframes import DAY, ORDERED

CREATE = f"""
CREATE TABLE IF NOT EXISTS {SERIES_STATS} (
    symbol        text        NOT NULL,
    timeframe     text        NOT NULL,
    count         bigint      NOT NULL DEFAULT 0,
    first         timestamptz,
    last          timestamptz,
    last_arrival  timestamptz,
    last_update   timestamptz,
    gaps          bigint,                           -- NULL: no fixed bar width (W1, MN1)
    exact         boolean     NOT NULL DEFAULT true, -- false: gaps need a recount (a raced write)
    version       bigint      NOT NULL DEFAULT 0,    -- +1 per write: how a race is detected
    PRIMARY KEY (symbol, timeframe)
)
"""

# The fixed bar widths, from the one timeframe table (W1/MN1 are absent: no gaps).
_WIDTHS = (
    "(VALUES "
    + ", ".join(f"('{t.name}', {t.seconds})" for t in ORDERED if t.fixed)
    + ") AS w(timeframe, width)"
)


def _gap(prev: str, ts: str) -> str:
    """1 when the step prev -> ts (width in scope as `width`) is a gap, else 0; NULL ends count 0."""
    return (
        f"CASE WHEN {prev} IS NULL OR {ts} IS NULL OR extract(epoch FROM {ts} - {prev}) <= width THEN 0"
        f" WHEN extract(isodow FROM {prev} AT TIME ZONE 'UTC') = 5"
        f" AND extract(isodow FROM {ts} AT TIME ZONE 'UTC') IN (7, 1)"
        f" AND extract(epoch FROM {ts} - {prev}) <= {int(3 * DAY)} + width THEN 0 ELSE 1 END"
    )


def fold(changed: str) -> str:
    """CTEs (to follow `WITH changed AS (...)`) that fold a write into the stats. `changed` names a
    relation (symbol, timeframe, ts, inserted) of the rows the write inserted or changed, read on the
    snapshot before the write."""
    return f""",
stats_w AS (SELECT * FROM {_WIDTHS}),
stats_touched AS (
    SELECT symbol, timeframe, count(*) FILTER (WHERE inserted) AS n,
           min(ts) FILTER (WHERE inserted) AS first, max(ts) FILTER (WHERE inserted) AS last
    FROM {changed} GROUP BY 1, 2
),
stats_cur AS (
    SELECT t.*, st.last AS old_last, st.version AS old_version, stats_w.width
    FROM stats_touched t LEFT JOIN {SERIES_STATS} st USING (symbol, timeframe)
    LEFT JOIN stats_w USING (timeframe)
),
stats_nb AS (  -- each new bar with its old neighbours p < ts < q
    SELECT n.symbol, n.timeframe, c.width, n.ts,
           CASE WHEN n.ts > c.old_last THEN c.old_last ELSE
               (SELECT max(m.ts) FROM {MARKET_DATA} m
                WHERE m.symbol = n.symbol AND m.timeframe = n.timeframe AND m.ts < n.ts) END AS p,
           CASE WHEN n.ts > c.old_last THEN NULL ELSE
               (SELECT min(m.ts) FROM {MARKET_DATA} m
                WHERE m.symbol = n.symbol AND m.timeframe = n.timeframe AND m.ts > n.ts) END AS q
    FROM {changed} n JOIN stats_cur c USING (symbol, timeframe)
    WHERE n.inserted AND c.width IS NOT NULL
),
stats_chain AS (  -- new bars inside one old step, in order
    SELECT *, lag(ts) OVER s AS prev_new, lead(ts) OVER s AS next_new
    FROM stats_nb WINDOW s AS (PARTITION BY symbol, timeframe, p, q ORDER BY ts)
),
stats_dg AS (
    SELECT symbol, timeframe,
           sum({_gap("coalesce(prev_new, p)", "ts")}
               + CASE WHEN next_new IS NULL THEN {_gap("ts", "q")} ELSE 0 END
               - CASE WHEN prev_new IS NULL THEN {_gap("p", "q")} ELSE 0 END) AS gaps
    FROM stats_chain GROUP BY 1, 2
),
stats_write AS (
    INSERT INTO {SERIES_STATS} AS st
        (symbol, timeframe, count, first, last, last_arrival, last_update, gaps, exact, version)
    SELECT c.symbol, c.timeframe, c.n, c.first, c.last, CASE WHEN c.n > 0 THEN now() END, now(),
           CASE WHEN c.width IS NOT NULL THEN coalesce(dg.gaps, 0) END,
           -- no stats row yet: exact only if the series was empty (rows written before the table)
           NOT EXISTS (SELECT 1 FROM {MARKET_DATA} m WHERE m.symbol = c.symbol AND m.timeframe = c.timeframe),
           coalesce(c.old_version, 0) + 1
    FROM stats_cur c LEFT JOIN stats_dg dg USING (symbol, timeframe)
    ORDER BY 1, 2  -- a fixed lock order, as for market_data
    ON CONFLICT (symbol, timeframe) DO UPDATE SET
        count = st.count + EXCLUDED.count,
        first = LEAST(st.first, EXCLUDED.first),
        last = GREATEST(st.last, EXCLUDED.last),
        last_arrival = GREATEST(st.last_arrival, EXCLUDED.last_arrival),
        last_update = GREATEST(st.last_update, EXCLUDED.last_update),
        gaps = st.gaps + EXCLUDED.gaps,
        exact = st.exact AND st.version = EXCLUDED.version - 1,
        version = st.version + 1
)"""  # noqa: S608 - constants of this module; `changed` is a CTE name the callers fix


# The COPY path's fold: every key of the batch is new (else the COPY fails and the transaction
# with it). Runs before the COPY, in its transaction.
FOLD_NEW_KEYS_SQL = (
    "WITH changed AS (SELECT s.symbol, s.timeframe, to_timestamp(s.ts) AS ts, true AS inserted "  # noqa: S608
    "FROM unnest($1::text[], $2::text[], $3::bigint[]) AS s(symbol, timeframe, ts))"
    + fold("changed")
    + " SELECT count(*) FROM changed"
)


def _recount(where: str) -> str:
    """Stats of the series matching `where` (on market_data) by one scan: the recount and backfill."""
    return f"""
INSERT INTO {SERIES_STATS} AS st
    (symbol, timeframe, count, first, last, last_arrival, last_update, gaps, exact, version)
SELECT s.symbol, s.timeframe, count(*), min(s.ts), max(s.ts), max(s.received_at), max(s.updated_at),
       CASE WHEN max(width) IS NOT NULL THEN sum({_gap("s.prev", "s.ts")}) END, true, 1
FROM (SELECT symbol, timeframe, ts, received_at, updated_at,
             lag(ts) OVER (PARTITION BY symbol, timeframe ORDER BY ts) AS prev
      FROM {MARKET_DATA} WHERE {where}) s
LEFT JOIN {_WIDTHS} USING (timeframe)
GROUP BY 1, 2
ON CONFLICT (symbol, timeframe) DO UPDATE SET
    count = EXCLUDED.count, first = EXCLUDED.first, last = EXCLUDED.last,
    last_arrival = EXCLUDED.last_arrival, last_update = EXCLUDED.last_update,
    gaps = EXCLUDED.gaps, exact = true, version = st.version + 1
"""  # noqa: S608 - constants of this module


BACKFILL_SQL = _recount("true")  # the migration that creates the table: once, O(rows)
_RECOUNT_ONE_SQL = _recount("symbol = $1 AND timeframe = $2")


async def refresh(conn: Any, symbol: str, timeframe: str) -> None:
    """Recount one series under its stats row lock (writers of that series wait meanwhile), so no
    write can slip between the scan and the stored answer."""
    async with conn.transaction():
        await conn.execute(
            f"SELECT 1 FROM {SERIES_STATS} WHERE symbol = $1 AND timeframe = $2 FOR UPDATE",  # noqa: S608
            symbol, timeframe,
        )  # fmt: skip
        await conn.execute(_RECOUNT_ONE_SQL, symbol, timeframe)


async def read(conn: Any, *, symbol: str | None = None) -> list[Any]:
    """The stats of every stored series (of `symbol`), recounting any a raced write left inexact."""
    sql = (
        f"SELECT symbol, timeframe, count, first, last, last_arrival, last_update, gaps, exact "  # noqa: S608
        f"FROM {SERIES_STATS} WHERE ($1::text IS NULL OR symbol = $1) AND count > 0 ORDER BY symbol, timeframe"
    )
    rows = list(await conn.fetch(sql, symbol))
    inexact = [(r["symbol"], r["timeframe"]) for r in rows if not r["exact"]]
    if not inexact:
        return rows
    for series in inexact:
        await refresh(conn, *series)
    return list(await conn.fetch(sql, symbol))
