"""Which bar a prediction is about, and the candles it is computed from (pure).

A decision is taken at the close of bar t (docs/ml-protocol.md §6.1). The newest stored bar is
usually still forming (the collector EAs send snapshots of the open bar, docs/ea-contract.md §3.3),
so a bar counts as closed when a later bar exists, or when it ended longer ago than a bound (a
quiet market, the weekend, the end of a history file). Stored `ts` is the broker clock labelled as
UTC; the bound absorbs the broker's lead over UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mt5db_core.market.timeframes import TIMEFRAMES
from mt5db_training.sources import OHLCV, clean_candles


def bar_width(timeframe: str) -> timedelta:
    return timedelta(seconds=TIMEFRAMES[timeframe].seconds)


def closed_bar(
    newest: Sequence[datetime], timeframe: str, now: datetime, closed_after_s: float
) -> datetime | None:
    """The newest closed bar, from the newest two stored bar times (newest first)."""
    if not newest:
        return None
    last = newest[0]
    if now - (last + bar_width(timeframe)) > timedelta(seconds=closed_after_s):
        return last  # nothing after it for long enough: it is over
    return newest[1] if len(newest) > 1 else None  # a later bar exists: the one before it is closed


def bar_age_s(bar_ts: datetime, timeframe: str, now: datetime) -> float:
    """Seconds since the bar ended (on the labelled clock read as UTC: at most a few hours early)."""
    return (now - (bar_ts + bar_width(timeframe))).total_seconds()


def frame_from_rows(rows: Sequence[Any]) -> pd.DataFrame:
    """Candles from `select_series` rows (ts, open, high, low, close, volume, spread; any order) as
    training's loaders build them: a tz-naive index in the labelled clock, float columns, cleaned."""
    ordered = sorted(rows, key=lambda r: r[0])
    ts = pd.DatetimeIndex([r[0] for r in ordered], name="ts")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {name: np.array([r[i + 1] for r in ordered], dtype=np.float64) for i, name in enumerate(OHLCV)},
        index=ts.as_unit("ns"),
    )
    cleaned, _ = clean_candles(frame)
    return cleaned
