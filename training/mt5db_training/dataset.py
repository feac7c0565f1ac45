"""From cleaned candles to the development set: features, labels, costs, lockbox, data identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5db_core.digest import file_sha256
from mt5db_core.market.mt5files import series_from_name
from mt5db_training.config import DataConfig
from mt5db_training.features import FEATURE_SET_VERSION, WARMUP_BARS, compute_features
from mt5db_training.sources import (
    DECLARED_CLOCK,
    CandleQuality,
    clean_candles,
    frame_sha256,
    load_candles,
    read_candle_file,
)
from mt5db_training.splits import lockbox_mask
from mt5db_training.targets import CostModel, gross_move, make_targets

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass
class DataSource:
    """Where the candles came from and their identity (sha256 of the file or of the extract)."""

    kind: str  # "csv" or "market_data"
    name: str
    symbol: str
    timeframe: str
    sha256: str


@dataclass
class Dataset:
    """Development rows (lockbox and warm-up removed) with everything evaluation needs."""

    source: DataSource
    quality: CandleQuality
    features: pd.DataFrame  # dev rows × feature columns
    targets: pd.DataFrame  # ret_fwd_h, up_net_h
    gross_pips: dict[int, F64]  # close[t+h] − open[t+1] in pips
    persistence: dict[int, F64]  # ln(close[t] / close[t−h]): the last h-bar return
    cost_pips: F64
    positions: I64  # row number of each dev row in the full candle series
    cost: CostModel
    horizons: tuple[int, ...]
    bars_per_day: int
    lockbox_range: tuple[str, str, int]  # (start, end, rows); never evaluated by default
    full_range: tuple[str, str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> pd.DatetimeIndex:
        """Timestamps of the development rows."""
        return pd.DatetimeIndex(self.features.index)

    @property
    def bars_per_year(self) -> float:
        """Bar count used to annualise Sharpe: bars per day × 260 trading days."""
        return float(self.bars_per_day * 260)


def infer_bars_per_day(index: pd.DatetimeIndex) -> int:
    """Bars per 24 h from the median bar spacing (H1 → 24, M5 → 288, D1 → 1)."""
    step = float(np.median(np.diff(pd.DatetimeIndex(index).as_unit("ns").asi8))) / 3.6e12
    return max(1, round(24.0 / step))


def prepare(
    candles: pd.DataFrame,
    source: DataSource,
    *,
    cost: CostModel,
    horizons: tuple[int, ...] = (1, 5, 10),
    lockbox_start: pd.Timestamp | None = None,
    lockbox_fraction: float = 0.15,
    warmup: int = WARMUP_BARS,
    use_volume: bool = True,
) -> Dataset:
    """Features and labels on the full series, then keep dev rows whose label window ends before the lockbox."""
    frame, quality = clean_candles(candles)
    feats = compute_features(frame, warmup=warmup, use_volume=use_volume)
    targets = make_targets(frame, cost, horizons)
    n = len(frame)
    index = pd.DatetimeIndex(frame.index)
    in_lockbox = lockbox_mask(index, lockbox_start, lockbox_fraction)
    first_lock = int(np.argmax(in_lockbox)) if in_lockbox.any() else n
    pos = np.arange(n, dtype=np.int64)
    keep = (
        feats.notna().all(axis=1).to_numpy()
        & targets.notna().all(axis=1).to_numpy()
        # purge: a dev label (t+1 .. t+max h) must not reach into the lockbox
        & (pos + max(horizons) < first_lock)
    )
    close = frame["close"].to_numpy(np.float64)
    persistence: dict[int, F64] = {}
    gross: dict[int, F64] = {}
    for h in horizons:
        back = np.full(n, np.nan)
        back[h:] = np.log(close[h:] / close[:-h])
        persistence[h] = back[keep]
        gross[h] = gross_move(frame, h)[keep] / cost.pip
    lock_idx = index[in_lockbox]
    return Dataset(
        source=source,
        quality=quality,
        features=feats[keep],
        targets=targets[keep],
        gross_pips=gross,
        persistence=persistence,
        cost_pips=cost.per_bar(frame)[keep] / cost.pip,
        positions=pos[keep],
        cost=cost,
        horizons=horizons,
        bars_per_day=infer_bars_per_day(index),
        lockbox_range=(
            str(lock_idx[0]) if len(lock_idx) else "",
            str(lock_idx[-1]) if len(lock_idx) else "",
            len(lock_idx),
        ),
        full_range=(str(index[0]), str(index[-1]), n),
        extra={
            "has_spread": "spread" in frame.columns,
            "clock": DECLARED_CLOCK,
            "feature_set_version": FEATURE_SET_VERSION,
            "warmup_bars": warmup,
        },
    )


def load_source(data: DataConfig) -> tuple[pd.DataFrame, DataSource]:
    """Candles from the CSV file, or from market_data (database_url, symbol and timeframe).

    A file's symbol and timeframe come from its name (`EURUSD_H1_….csv`) unless given; "UNKNOWN"
    when neither says.
    """
    if data.csv is not None:
        named_symbol, named_timeframe = series_from_name(data.csv)
        return read_candle_file(data.csv), DataSource(
            "csv",
            data.csv.name,
            data.symbol or named_symbol or "UNKNOWN",
            data.timeframe or named_timeframe or "UNKNOWN",
            file_sha256(data.csv),
        )
    if not (data.database_url and data.symbol and data.timeframe):
        raise SystemExit("give --csv PATH, or --database-url with --symbol and --timeframe")
    candles = load_candles(data.database_url, data.symbol, data.timeframe, data.start, data.end)
    return candles, DataSource(
        "market_data",
        f"market_data {data.symbol} {data.timeframe}",
        data.symbol,
        data.timeframe,
        frame_sha256(candles),
    )


def load_dataset(data: DataConfig, horizons: tuple[int, ...]) -> Dataset:
    """Candles of the configured source → development set with the declared cost model and lockbox."""
    candles, source = load_source(data)
    cost = CostModel(cost_pips=data.cost_pips, pip=data.pip_size, slippage_pips=data.slippage_pips)
    lockbox = pd.Timestamp(data.lockbox_start) if data.lockbox_start is not None else None
    return prepare(
        candles,
        source,
        cost=cost,
        horizons=horizons,
        lockbox_start=lockbox,
        lockbox_fraction=data.lockbox_fraction,
    )


def series_of(data: DataConfig) -> tuple[str, str]:
    """(symbol, timeframe) a run's data is about, without reading it (what load_source will say)."""
    if data.csv is not None:
        named_symbol, named_timeframe = series_from_name(data.csv)
        return data.symbol or named_symbol or "UNKNOWN", data.timeframe or named_timeframe or "UNKNOWN"
    return data.symbol or "UNKNOWN", data.timeframe or "UNKNOWN"
