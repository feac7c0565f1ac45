"""Synthetic H1 candles with a planted, learnable pattern (tests and benchmarks only).

Each bar's open→close drift depends on its hour of day: +`drift_pips` in the first half of the
day, −`drift_pips` in the second, plus Gaussian noise of `noise_pips`. The features carry the
decision bar's hour (hour sin/cos) and the next bar's hour follows from it, so a model that
learns the pattern forecasts r_1 well above its cost; always-long and always-short earn nothing
but costs. Monday 00:00 to Friday 23:00, like an FX export on the broker clock; weekends are
49-hour gaps (no segment restart). The price level never leaks into features (they are ratios).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_candles(
    bars: int = 3000,
    *,
    drift_pips: float = 3.0,
    noise_pips: float = 4.0,
    start: str = "2022-01-03",
    end: pd.Timestamp | None = None,
    seed: int = 0,
    pip: float = 1e-4,
    weekends: bool = False,
) -> pd.DataFrame:
    """`bars` weekday H1 candles (index `ts`, tz-naive broker clock) with the hour-of-day drift,
    from `start`, or ending at the hour at or before `end` (recent bars for live tests; with
    `weekends` every day has bars, so the newest bar is always the current hour)."""
    rng = np.random.default_rng(seed)
    days = 7 if weekends else 5
    if end is not None:
        hours = pd.date_range(end=pd.Timestamp(end).floor("h"), periods=bars * 2, freq="h")
        index = hours[hours.day_of_week < days][-bars:]
    else:
        hours = pd.date_range(start, periods=bars * 2, freq="h")
        index = hours[hours.day_of_week < days][:bars]
    drift = np.where(index.hour < 12, drift_pips, -drift_pips) * pip
    moves = drift + rng.normal(0.0, noise_pips * pip, bars)
    opens = np.empty(bars)
    closes = np.empty(bars)
    price = 1.1
    for i in range(bars):
        opens[i] = price
        price = price * float(np.exp(moves[i]))
        closes[i] = price
    wick = np.abs(rng.normal(0.0, 2.0 * pip, (2, bars)))
    return pd.DataFrame(
        {
            "open": np.round(opens, 5),
            "high": np.round(np.maximum(opens, closes) + wick[0], 5),
            "low": np.round(np.minimum(opens, closes) - wick[1], 5),
            "close": np.round(closes, 5),
            "volume": rng.integers(500, 5000, bars).astype(np.float64),
        },
        index=pd.DatetimeIndex(index, name="ts"),
    )


def write_mt5_export(candles: pd.DataFrame, path: str) -> str:
    """The candles as an MT5 history export (`Date,Time,Open,High,Low,Close,Volume`)."""
    index = pd.DatetimeIndex(candles.index)
    frame = pd.DataFrame(
        {
            "Date": index.strftime("%Y.%m.%d"),
            "Time": index.strftime("%H:%M"),
            "Open": candles["open"].map("{:.5f}".format),
            "High": candles["high"].map("{:.5f}".format),
            "Low": candles["low"].map("{:.5f}".format),
            "Close": candles["close"].map("{:.5f}".format),
            "Volume": candles["volume"].astype(np.int64),
        }
    )
    frame.to_csv(path, index=False)
    return path
