"""Names of the tables the platform owns. `mt5db migrate` (mt5db_api.db.migrations) creates every
one of them; other components refer to them by these names and never create tables themselves."""

from __future__ import annotations

MARKET_DATA = "market_data"  # candles: (symbol, timeframe, ts) -> OHLCV, the merge target of /ingest
SERIES_STATS = "series_stats"  # per-series count, ends and gaps, kept by every market_data write
TICKS = "ticks"  # raw ticks in arrival order
API_KEYS = "api_keys"  # hashed API keys and their scopes
MODEL_VERSIONS = "model_versions"  # the model registry: immutable versions and their model cards
MODEL_ARTIFACTS = "model_artifacts"  # artifact bytes by sha256 (content-addressed, immutable)
MODEL_ALIASES = "model_aliases"  # (symbol, timeframe, model kind, champion|challenger) -> version
MODEL_ALIAS_HISTORY = "model_alias_history"  # every alias change: who/what, when, why, the gate's numbers
SIGNALS = "signals"  # trading signals for the executor EA (live or shadow)
SIGNAL_DELIVERIES = "signal_deliveries"  # at most one delivery per (signal, account)
SIGNAL_ACKS = "signal_acks"  # what the executor did with a signal
ORDER_FEEDBACK = "order_feedback"  # the legacy /orders/feedback sink, stored as sent
SCHEMA_MIGRATIONS = "schema_migrations"  # which migrations ran

# The data a backup's row counts are compared on after a restore (the platform's own data).
COUNTED = (MARKET_DATA, TICKS, MODEL_VERSIONS)

SERIES_COLUMNS = "ts, open, high, low, close, volume, spread"


def select_series(*, newest_first: bool = False) -> str:
    """The one read of a stored series, used by the API's /candles and by training's loader.

    Parameters: $1 symbol, $2 timeframe, $3/$4 the ts range [start, end) (NULL = open), $5 the row
    limit (NULL = all). Rows are ordered by ts, newest first when asked.
    """
    order = "DESC" if newest_first else "ASC"
    return (
        f"SELECT {SERIES_COLUMNS} FROM {MARKET_DATA} WHERE symbol = $1 AND timeframe = $2 "  # noqa: S608 - constants only; values are bound
        "AND ($3::timestamptz IS NULL OR ts >= $3) AND ($4::timestamptz IS NULL OR ts < $4) "
        f"ORDER BY ts {order} LIMIT $5"
    )
