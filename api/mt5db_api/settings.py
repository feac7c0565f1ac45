"""Settings for the data plane: one pydantic-settings class, environment prefix `MT5DB_`.

Built by the lru_cached `get_settings()` (never at import time), injected as `SettingsDep`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the API; each one is also an `MT5DB_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="MT5DB_", extra="ignore")

    database_url: SecretStr = Field(description="postgresql://user:password@host:port/db")
    host: str = "127.0.0.1"
    port: int = Field(default=18001, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "info"

    # asyncpg pool. Short timeouts so that a dead database turns into a 503 within ~1 s
    # instead of a hung EA request (the EA times out after 5-6 s and loses the body).
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    db_connect_timeout_s: float = Field(default=0.5, gt=0)
    db_acquire_timeout_s: float = Field(default=0.5, gt=0)
    db_command_timeout_s: float = Field(default=3.0, gt=0)

    # Request limits: above them /ingest answers 413 (both EAs split a batch on 413).
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_items: int = Field(default=5000, ge=1)
    max_errors_listed: int = Field(default=100, ge=1)
    candles_max_limit: int = Field(default=10000, ge=1)

    # Bounds of a request before the app sees it (protocol.py): head size and header count (431),
    # a head complete this long after the connection opens or its first byte (also an idle new
    # connection), a body complete this long after its head (408). The EAs send < 2 KB heads.
    max_head_bytes: int = Field(default=16384, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    head_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)

    # Auth: key lookups are cached in-process this long; a revoked key stops working within it.
    auth_cache_ttl_s: float = Field(default=5.0, ge=0)
    # Lookups of key ids this process does not know (each costs a database read), per client
    # address: this many per second up to the burst, then 429. Known keys are never limited here.
    unknown_key_lookups_per_s: float = Field(default=5.0, ge=0)
    unknown_key_lookups_burst: float = Field(default=20.0, ge=1)

    # Per-key token bucket. A normal EA makes ~1 candle POST/min + ~1 tick POST/s; the defaults
    # allow 50x that sustained. 0 disables the limiter.
    rate_limit_per_s: float = Field(default=50.0, ge=0)
    rate_limit_burst: float = Field(default=200.0, ge=1)

    # Batches of at least this many distinct candles are first written with binary COPY (replays
    # and back-fills are almost all new bars; the cheapest write there is); a unique violation
    # falls back to the merge and pauses the optimistic try for the next 100 large batches.
    # 0 = always merge directly.
    optimistic_insert_min_items: int = Field(default=64, ge=0)

    # Group commit: requests with at most this many distinct candles share upsert statements with
    # the requests arriving meanwhile (at most `coalesce_max_inflight` statements at a time; an
    # idle server flushes at once). 0 = every request runs its own statement.
    coalesce_max_items: int = Field(default=64, ge=0)
    coalesce_max_inflight: int = Field(default=1, ge=1)

    # The per-symbol freshness gauge (prometheus.SymbolFreshness): at most this many symbol
    # series per replica, and a symbol silent this long is forgotten (3 days outlast a weekend).
    metrics_max_symbols: int = Field(default=500, ge=1, le=10000)
    metrics_symbol_ttl_s: float = Field(default=3 * 86400, gt=0)

    # Ticks: recompute the M1 candle of every touched minute from all its ticks.
    derive_m1_from_ticks: bool = False

    # Signals: how often the sweeper marks expired signals and recounts deliveries left unacked,
    # and after how long a delivery without an ack counts as unacked.
    signal_sweep_interval_s: float = Field(default=5.0, gt=0)
    signal_unacked_after_s: float = Field(default=300.0, gt=0)

    # Benchmark-only route (/bench/noop) measuring the framework's own limit. Off in production.
    bench_endpoints: bool = False

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_url(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a database URL is required: pass --database-url or set MT5DB_DATABASE_URL")
        if not text.startswith(("postgresql://", "postgres://")):
            raise ValueError("the database URL must start with postgresql:// (or postgres://)")
        return value

    def dsn(self) -> str:
        """The database URL as plain text (only for the driver; never log it)."""
        return self.database_url.get_secret_value()


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, built once per process on first use."""
    return Settings()  # type: ignore[call-arg]  # database_url comes from MT5DB_DATABASE_URL


class SettingsError(Exception):
    """Raised with a readable message when the settings cannot be built."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus explicit overrides, with a one-line error message."""
    from pydantic import ValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = err["msg"]
            if err["type"] == "missing" and field == "database_url":
                msg = "a database URL is required: pass --database-url or set MT5DB_DATABASE_URL"
            lines.append(f"{field}: {msg}")
        raise SettingsError("; ".join(lines)) from None
