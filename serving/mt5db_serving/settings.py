"""Serving settings: the API's (database URL, pool, timeouts, auth cache, rate limit; all `MT5DB_*`)
plus what serving adds. Built once per process; `mt5db serve` flags override the environment."""

from __future__ import annotations

from pydantic import Field

from mt5db_api.settings import Settings
from mt5db_training.features import WARMUP_BARS

DAY = 86400.0


class ServingSettings(Settings):
    """Every knob of `mt5db serve`; each one is also an `MT5DB_<NAME>` environment variable."""

    port: int = Field(default=18002, ge=1, le=65535)

    # Hot reload: NOTIFY on alias change, and this poll as the fallback when notifications are lost.
    reload_poll_s: float = Field(default=5.0, gt=0)
    # Bars read per prediction: the warm-up (400) plus margin, so recursive indicators have settled.
    history_bars: int = Field(default=600, ge=WARMUP_BARS + 1, le=20000)
    # A bar is closed when a later bar exists, or when it ended longer ago than this (broker clocks
    # run up to ~3 h ahead of UTC: the newest bar of a quiet market must not count as forming forever).
    closed_after_s: float = Field(default=3.25 * 3600, ge=0)
    # The signal loop: every `signal_interval_s`, one signal per newly closed bar of each loaded version.
    signal_loop: bool = True
    signal_interval_s: float = Field(default=10.0, gt=0)
    signal_ttl_s: int = Field(default=90, ge=1, le=86400)
    # Only a bar that closed within this long may trade (older bars are recorded in shadow).
    signal_max_bar_age_s: float = Field(default=2 * 3600.0, gt=0)
    # Stops from volatility: sl = sl_atr × ATR14, tp = tp_atr × ATR14 (in pips).
    sl_atr: float = Field(default=1.5, gt=0)
    tp_atr: float = Field(default=3.0, gt=0)
    # A champion trained longer ago than this keeps answering /predict (flagged stale) but trades no more.
    max_model_age_s: float = Field(default=90 * DAY, gt=0)
    # POST /predict: candles per body.
    predict_max_candles: int = Field(default=5000, ge=WARMUP_BARS + 1)
    # Predictions kept per (version, series, bar).
    cache_entries: int = Field(default=4096, ge=16)


def load_serving_settings(**overrides: object) -> ServingSettings:
    """Settings from the environment plus explicit overrides (None = not given)."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return ServingSettings(**clean)  # type: ignore[arg-type]
