"""Versioned, idempotent schema migrations; the only source of the data plane's schema.

`migrate()` holds a PostgreSQL advisory lock for its whole run, so several API replicas (or
`mt5db migrate` jobs) may call it at once: one applies, the others wait and then find nothing to do.
TimescaleDB statements run only when the extension is usable: available (pg_available_extensions)
and either preloaded (shared_preload_libraries) or already installed. An extension that is only
available makes `CREATE EXTENSION` end the session with FATAL "must be preloaded", so that case is
decided before, from the settings. Otherwise the Timescale layer is skipped with a stated reason and
plain PostgreSQL serves identical query results (candles are resampled on the fly instead of read
from continuous aggregates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from mt5db_api.db import series_stats

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock key of "mt5db schema migrations".
MIGRATION_LOCK_KEY = 0x6D743564_62_01

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "market_data, ticks, api_keys",
        [
            """
            CREATE TABLE IF NOT EXISTS market_data (
                symbol       text             NOT NULL,
                timeframe    text             NOT NULL,
                ts           timestamptz      NOT NULL,  -- bucket start, in the labelled (broker) clock
                open         double precision NOT NULL,
                high         double precision NOT NULL,
                low          double precision NOT NULL,
                close        double precision NOT NULL,
                volume       bigint           NOT NULL DEFAULT 0,  -- tick volume
                spread       double precision,                     -- ask - bid in price units
                real_volume  bigint,
                source       text             NOT NULL DEFAULT 'api',
                received_at  timestamptz      NOT NULL DEFAULT now(),  -- first arrival
                updated_at   timestamptz      NOT NULL DEFAULT now(),  -- last change
                PRIMARY KEY (symbol, timeframe, ts),
                CHECK (high >= low)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS ticks (
                symbol       text             NOT NULL,
                ts           timestamptz      NOT NULL,
                seq          bigint           GENERATED ALWAYS AS IDENTITY,  -- arrival order
                bid          double precision NOT NULL,
                ask          double precision NOT NULL,
                last         double precision NOT NULL DEFAULT 0,
                volume       bigint           NOT NULL DEFAULT 0,
                flags        integer          NOT NULL DEFAULT 0,
                digits       smallint,
                spread       double precision,
                meta         jsonb,
                received_at  timestamptz      NOT NULL DEFAULT now(),
                PRIMARY KEY (symbol, ts, seq)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS api_keys (
                key_id      text        PRIMARY KEY,
                name        text        NOT NULL UNIQUE,
                key_hash    text        NOT NULL,
                scopes      text[]      NOT NULL,
                created_at  timestamptz NOT NULL DEFAULT now(),
                revoked_at  timestamptz
            )
            """,
        ],
    ),
    (
        2,
        "model_versions (the model registry; created at run time by training before)",
        [
            """
            CREATE TABLE IF NOT EXISTS model_versions (
                id                  bigserial PRIMARY KEY,
                name                text NOT NULL,
                version             integer NOT NULL,
                created_at          timestamptz NOT NULL DEFAULT now(),
                status              text NOT NULL DEFAULT 'candidate',
                algo                text NOT NULL,
                task                text NOT NULL,
                symbol              text NOT NULL,
                timeframe           text NOT NULL,
                horizon             integer NOT NULL,
                feature_set_version text NOT NULL,
                train_range         text NOT NULL,
                data_sha256         text NOT NULL,
                code_git_sha        text NOT NULL,
                params              jsonb NOT NULL DEFAULT '{}'::jsonb,
                metrics             jsonb NOT NULL DEFAULT '{}'::jsonb,
                threshold           double precision,
                artifact_uri        text NOT NULL,
                artifact_sha256     text NOT NULL,
                run_name            text NOT NULL,
                UNIQUE (name, version)
            )
            """,
            "CREATE INDEX IF NOT EXISTS model_versions_name_idx ON model_versions (name, version DESC)",
        ],
    ),
    (
        3,
        "the registry: content-addressed artifacts, immutable versions, aliases and their history",
        [
            # Artifacts live in the database so that any serving pod can load a version without a
            # shared filesystem; the key is the sha256 of the bytes (checked again on every load).
            """
            CREATE TABLE IF NOT EXISTS model_artifacts (
                sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
                bytes       bytea NOT NULL,
                size        bigint NOT NULL CHECK (size >= 0),
                media_type  text NOT NULL,
                created_at  timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            ALTER TABLE model_versions
                ADD COLUMN IF NOT EXISTS model_kind       text,
                ADD COLUMN IF NOT EXISTS feature_set_hash text,
                ADD COLUMN IF NOT EXISTS features         jsonb,
                ADD COLUMN IF NOT EXISTS warmup_bars      integer,
                ADD COLUMN IF NOT EXISTS train_start      timestamptz,
                ADD COLUMN IF NOT EXISTS train_end        timestamptz,
                ADD COLUMN IF NOT EXISTS horizons         integer[],
                ADD COLUMN IF NOT EXISTS verdict          text,
                ADD COLUMN IF NOT EXISTS beats_baselines  boolean,
                ADD COLUMN IF NOT EXISTS model_card       jsonb
            """,
            # NOT VALID: rows registered before artifacts moved into the database keep their file
            # URIs; every new row must name stored bytes.
            """
            ALTER TABLE model_versions ADD CONSTRAINT model_versions_artifact_fk
                FOREIGN KEY (artifact_sha256) REFERENCES model_artifacts (sha256) NOT VALID
            """,
            """
            CREATE OR REPLACE FUNCTION mt5db_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% rows are immutable: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """,
            "DROP TRIGGER IF EXISTS model_versions_immutable ON model_versions",
            "CREATE TRIGGER model_versions_immutable BEFORE UPDATE OR DELETE ON model_versions "
            "FOR EACH ROW EXECUTE FUNCTION mt5db_refuse_change()",
            "DROP TRIGGER IF EXISTS model_artifacts_immutable ON model_artifacts",
            "CREATE TRIGGER model_artifacts_immutable BEFORE UPDATE OR DELETE ON model_artifacts "
            "FOR EACH ROW EXECUTE FUNCTION mt5db_refuse_change()",
            """
            CREATE TABLE IF NOT EXISTS model_aliases (
                symbol      text NOT NULL,
                timeframe   text NOT NULL,
                model_kind  text NOT NULL,
                alias       text NOT NULL CHECK (alias IN ('champion', 'challenger')),
                version_id  bigint NOT NULL REFERENCES model_versions (id),
                updated_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (symbol, timeframe, model_kind, alias)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS model_alias_history (
                id                   bigserial PRIMARY KEY,
                symbol               text NOT NULL,
                timeframe            text NOT NULL,
                model_kind           text NOT NULL,
                alias                text NOT NULL,
                version_id           bigint REFERENCES model_versions (id),
                previous_version_id  bigint REFERENCES model_versions (id),
                action               text NOT NULL,
                actor                text NOT NULL,
                reason               text NOT NULL,
                gate                 jsonb NOT NULL DEFAULT '{}'::jsonb,
                changed_at           timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX IF NOT EXISTS model_alias_history_series_idx "
            "ON model_alias_history (symbol, timeframe, model_kind, alias, id DESC)",
            # Every serving process LISTENs here and reloads (polling is the fallback).
            """
            CREATE OR REPLACE FUNCTION mt5db_notify_model_alias() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                r model_aliases;
            BEGIN
                IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
                PERFORM pg_notify('mt5db_model_alias', json_build_object(
                    'symbol', r.symbol, 'timeframe', r.timeframe, 'model_kind', r.model_kind,
                    'alias', r.alias, 'version_id', r.version_id, 'op', TG_OP)::text);
                RETURN NULL;
            END
            $$
            """,
            "DROP TRIGGER IF EXISTS model_aliases_notify ON model_aliases",
            "CREATE TRIGGER model_aliases_notify AFTER INSERT OR UPDATE OR DELETE ON model_aliases "
            "FOR EACH ROW EXECUTE FUNCTION mt5db_notify_model_alias()",
        ],
    ),
    (
        4,
        "signals for the executor EA: signals, deliveries, acks, order feedback",
        [
            # ts and expires_at are the server's clock (the TTL is never measured on broker time).
            """
            CREATE TABLE IF NOT EXISTS signals (
                id                uuid PRIMARY KEY,
                symbol            text NOT NULL,
                timeframe         text NOT NULL,
                side              text NOT NULL CHECK (side IN ('BUY', 'SELL', 'CLOSE', 'NONE')),
                confidence        double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
                ttl_sec           integer NOT NULL CHECK (ttl_sec > 0),
                sl_pips           integer,
                tp_pips           integer,
                meta              jsonb NOT NULL DEFAULT '{}'::jsonb,
                account_id        text,
                ts                timestamptz NOT NULL DEFAULT now(),
                expires_at        timestamptz NOT NULL,
                state             text NOT NULL DEFAULT 'PENDING'
                                  CHECK (state IN ('PENDING', 'SENT', 'ACKED', 'EXPIRED')),
                delivery          text NOT NULL CHECK (delivery IN ('live', 'shadow')),
                source            text NOT NULL CHECK (source IN ('model', 'manual')),
                shadow_reason     text,
                model_version_id  bigint REFERENCES model_versions (id),
                bar_ts            timestamptz,
                sent_at           timestamptz,
                acked_at          timestamptz,
                expired_at        timestamptz
            )
            """,
            # One model signal per (version, series, bar), however many serving replicas derive it.
            "CREATE UNIQUE INDEX IF NOT EXISTS signals_one_per_bar ON signals "
            "(model_version_id, symbol, timeframe, bar_ts) WHERE source = 'model'",
            "CREATE INDEX IF NOT EXISTS signals_pending_idx ON signals (symbol, timeframe, ts DESC) "
            "WHERE state = 'PENDING' AND delivery = 'live'",
            "CREATE INDEX IF NOT EXISTS signals_latest_idx ON signals (symbol, ts DESC)",
            "CREATE INDEX IF NOT EXISTS signals_expiry_idx ON signals (expires_at) WHERE state IN ('PENDING', 'SENT')",
            # The lease: at most one delivery per (signal, account); '' is a poller without an account.
            """
            CREATE TABLE IF NOT EXISTS signal_deliveries (
                signal_id     uuid NOT NULL REFERENCES signals (id),
                account_id    text NOT NULL,
                delivered_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (signal_id, account_id)
            )
            """,
            "CREATE INDEX IF NOT EXISTS signal_deliveries_time_idx ON signal_deliveries (delivered_at)",
            """
            CREATE TABLE IF NOT EXISTS signal_acks (
                id           bigserial PRIMARY KEY,
                signal_id    uuid NOT NULL REFERENCES signals (id),
                status       text NOT NULL,
                symbol       text,
                side         text,
                mt5_ticket   bigint,
                price        double precision,
                ts_exec      text,
                account_id   text,
                body         jsonb NOT NULL,
                received_at  timestamptz NOT NULL DEFAULT now()
            )
            """,
            # A repeated (id, status) from the same account changes nothing.
            "CREATE UNIQUE INDEX IF NOT EXISTS signal_acks_once ON signal_acks "
            "(signal_id, status, coalesce(account_id, ''))",
            """
            CREATE TABLE IF NOT EXISTS order_feedback (
                id           bigserial PRIMARY KEY,
                body         jsonb NOT NULL,
                received_at  timestamptz NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    (
        5,
        "series_stats: per-series statistics kept by every write (GET /metrics in O(series))",
        [series_stats.CREATE, series_stats.BACKFILL_SQL],
    ),
]

CURRENT_VERSION = MIGRATIONS[-1][0]

# Continuous aggregates built from M1 when TimescaleDB is present (name, bucket width).
AGGREGATES = [("M5", "5 minutes"), ("M15", "15 minutes"), ("M30", "30 minutes"),
              ("H1", "1 hour"), ("H4", "4 hours"), ("D1", "1 day")]  # fmt: skip


def refresh_every(width: str) -> str:
    """A view's refresh schedule: its bucket width, at most an hour. Answers do not wait for it
    (stale windows are read raw, market_data.view_is_current); it only keeps the fast path warm,
    and fewer refreshes keep the background workers free (docs/operator.md)."""
    return width if width.endswith(("minutes", "minute")) else "1 hour"


@dataclass
class MigrationReport:
    """What one migrate() run did."""

    applied: list[int] = field(default_factory=list)
    version: int = 0
    timescale: bool = False
    skipped: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)


async def timescale_available(conn: Any) -> bool:
    """True when the timescaledb extension is installable on this server."""
    row = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    return bool(row)


NOT_AVAILABLE = (
    "timescaledb is not in pg_available_extensions: plain PostgreSQL tables, no hypertables, "
    "compression, retention policies or continuous aggregates; /candles resamples on the fly"
)
NOT_PRELOADED = (
    "timescaledb is available but not in shared_preload_libraries (CREATE EXTENSION would end the "
    "session with FATAL): plain PostgreSQL tables; preload it (docs/api.md) and migrate again"
)


def timescale_unusable(*, available: bool, preloaded: bool, installed: bool) -> str | None:
    """Why the Timescale layer cannot run on a server with these facts, or None when it can.

    Installed counts as usable: the extension got created, so the server loads it (embedded
    engines link it in without shared_preload_libraries).
    """
    if not available:
        return NOT_AVAILABLE
    if not (preloaded or installed):
        return NOT_PRELOADED
    return None


async def timescale_facts(conn: Any) -> dict[str, bool]:
    """available / preloaded / installed, in one round trip and without loading anything."""
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available, "
        "'timescaledb' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) "
        "AS preloaded, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed"
    )
    return {k: bool(row[k]) for k in ("available", "preloaded", "installed")}


# Chunk sizing (the default 7 days made 3 years of H1 into ~167 tiny chunks): about this many rows
# per chunk, so that a chunk's indexes fit in memory while a replay or a training read touches few
# chunks. Density comes from the stored data; for an empty table from what one stack usually holds
# (about 20 symbols: M1 plus coarser bars; a few ticks a second each).
CHUNK_TARGET_ROWS = 5_000_000
ASSUMED_ROWS_PER_DAY = {"market_data": 30_000.0, "ticks": 1_000_000.0}
MAX_CHUNK_DAYS = 90  # retention and compression act on whole chunks: keep their step bounded


def chunk_interval_days(rows_per_day: float) -> int:
    """Whole days holding about CHUNK_TARGET_ROWS rows at this density, within [1, MAX_CHUNK_DAYS]."""
    if rows_per_day <= 0:
        return MAX_CHUNK_DAYS
    return max(1, min(MAX_CHUNK_DAYS, int(CHUNK_TARGET_ROWS / rows_per_day)))


async def rows_per_day(conn: Any, table: str) -> float | None:
    """Stored rows per day of `table` over its stored span; None when it holds under a day.

    A hypertable is counted by TimescaleDB's estimate and its ts index (cheap on every migration);
    a plain table is counted exactly, once: at its conversion.
    """
    hyper = await conn.fetchval(
        "SELECT count(*) > 0 FROM timescaledb_information.hypertables WHERE hypertable_name = $1", table
    )
    count = f"approximate_row_count('{table}')" if hyper else "count(*)"
    row = await conn.fetchrow(
        f"SELECT {count} AS n, extract(epoch FROM max(ts) - min(ts)) / 86400 AS days FROM {table}"  # noqa: S608 - constant names
    )
    if row["days"] is None or row["days"] < 1:
        return None
    return float(row["n"]) / float(row["days"])


async def schema_version(conn: Any) -> int:
    """The applied schema version (0 when never migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(
    conn: Any,
    *,
    retention_days: int | None = None,
    compress_after_days: int | None = None,
    use_timescale: bool | None = None,
) -> MigrationReport:
    """Apply pending migrations under an advisory lock, then the Timescale layer when available.

    retention_days: drop raw market_data/ticks chunks older than this (None = keep forever, the
    default: training reads years of history). compress_after_days: compress chunks older than
    this (None = no compression); keep it longer than the window in which late snapshots and
    replays still merge into bars. Both come from the TradingStack spec.
    """
    if retention_days is not None and retention_days < 1:
        raise ValueError("retention_days must be >= 1 or None (off)")
    if compress_after_days is not None and compress_after_days < 1:
        raise ValueError("compress_after_days must be >= 1 or None (off)")
    report = MigrationReport()
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                for sql in statements:
                    await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            report.applied.append(version)
            log.info("applied migration %s (%s)", version, name)
        report.version = await schema_version(conn)
        await _timescale_layer(conn, report, retention_days, compress_after_days, use_timescale)
    finally:
        # A session that ended (terminated, FATAL) released its advisory lock with it; unlocking
        # would raise InterfaceError and hide the error that ended it.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return report


async def _timescale_layer(
    conn: Any,
    report: MigrationReport,
    retention_days: int | None,
    compress_after_days: int | None,
    use_timescale: bool | None,
) -> None:
    """Hypertables, compression, retention and back-filled continuous aggregates (idempotent)."""
    if use_timescale is False:
        report.skipped.append("timescaledb disabled by the caller")
        return
    reason = timescale_unusable(**await timescale_facts(conn))
    if reason is not None:
        report.skipped.append(reason)
        return
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:  # e.g. no CREATE right on the database
        if conn.is_closed():  # FATAL: nothing to fall back on in a session that is gone
            raise
        report.skipped.append(
            f"timescaledb usable but CREATE EXTENSION failed ({exc.sqlstate}); plain tables"
        )
        return
    report.timescale = True
    for table in ("market_data", "ticks"):
        days = chunk_interval_days(await rows_per_day(conn, table) or ASSUMED_ROWS_PER_DAY[table])
        interval = f"INTERVAL '{days} days'"
        await conn.execute(
            f"SELECT create_hypertable('{table}', 'ts', chunk_time_interval => {interval}, "
            "if_not_exists => TRUE, migrate_data => TRUE)"
        )
        await conn.execute(f"SELECT set_chunk_time_interval('{table}', {interval})")  # new chunks
        report.policies.append(f"{table}: chunks of {days} days")
    if compress_after_days is not None:
        await conn.execute(
            "ALTER TABLE market_data SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'symbol, timeframe', timescaledb.compress_orderby = 'ts')"
        )
        await conn.execute(
            f"SELECT add_compression_policy('market_data', INTERVAL '{int(compress_after_days)} days', "
            "if_not_exists => TRUE)"
        )
        report.policies.append(f"compress market_data after {compress_after_days} days")
    if retention_days is not None:
        for table in ("market_data", "ticks"):
            await conn.execute(
                f"SELECT add_retention_policy('{table}', INTERVAL '{int(retention_days)} days', "
                "if_not_exists => TRUE)"
            )
        report.policies.append(f"retention {retention_days} days on market_data and ticks")
    else:
        for table in ("market_data", "ticks"):
            await conn.execute(f"SELECT remove_retention_policy('{table}', if_exists => TRUE)")
    for name, width in AGGREGATES:
        view = f"candles_{name.lower()}"
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view)
        if not exists:
            await conn.execute(
                f"CREATE MATERIALIZED VIEW {view} WITH (timescaledb.continuous) AS "  # noqa: S608 - constants only; values are bound
                f"SELECT symbol, time_bucket(INTERVAL '{width}', ts) AS ts, first(open, ts) AS open, "
                "max(high) AS high, min(low) AS low, last(close, ts) AS close, sum(volume)::bigint AS volume "
                "FROM market_data WHERE timeframe = 'M1' "
                f"GROUP BY symbol, time_bucket(INTERVAL '{width}', ts) WITH NO DATA"
            )
            # Real-time aggregation on (off by default since 2.13): recent M1 rows show up at once.
            await conn.execute(f"ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = false)")
            await conn.execute(
                f"SELECT add_continuous_aggregate_policy('{view}', start_offset => NULL, "
                f"end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '{refresh_every(width)}', "
                "if_not_exists => TRUE)"
            )
        # Back-fill: the original server (docs/ea-contract.md §0) created its aggregates WITH NO DATA
        # and never refreshed them.
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        if retention_days is not None:
            await conn.execute(
                f"SELECT add_retention_policy('{view}', INTERVAL '{int(retention_days)} days', "
                "if_not_exists => TRUE)"
            )
