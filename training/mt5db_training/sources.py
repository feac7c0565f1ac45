"""Where training's candles come from: MT5 history exports, generic dated CSVs, the `market_data` table.

Every loader returns the same frame: a tz-naive DatetimeIndex named `ts` in the declared clock
(broker server time as labelled, see docs/training.md), float columns open/high/low/close/volume
and, when the source has one, `spread`. Rows are sorted, unique and validated by `clean_candles`,
which reports problems instead of silently repairing them.

The formats are not ours to define: MT5 history exports are parsed by the platform's one parser
(`mt5db_core.market.mt5files.read_bars`) and the table is read with the platform's one series query
(`mt5db_core.market.tables.select_series`). `read_dated_csv` is the small loader for series that are
*not* MT5 exports (the test data sets: Dukascopy `Time`, a pandas-written datetime index, ETTh1's
`date`).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mt5db_core.market.mt5files import read_bars
from mt5db_core.market.tables import select_series

OHLCV = ["open", "high", "low", "close", "volume"]

# The clock every timestamp is in. MT5 exports and the EA both label broker server time
# (EET/EEST for the shared file, docs/ml-protocol.md §9); we keep it as labelled rather than guess a
# conversion, and say so in every report.
DECLARED_CLOCK = "broker server time as labelled (EET/EEST, UTC+2/+3 for the shared file)"

# Timestamp columns of the generic layouts read_dated_csv knows (lower-cased column name → format).
DUKASCOPY_TIME = "%d.%m.%Y %H:%M:%S.%f"  # `Time` = `01.01.2017 22:00:00.000`
PANDAS_INDEX_COLUMNS = ("", "Unnamed: 0")  # the first column of a pandas-written datetime index


@dataclass
class CandleQuality:
    """What `clean_candles` found; reported, never silently fixed."""

    rows: int
    duplicates_dropped: int
    ohlc_violations: int
    gaps_over_weekend: int
    start: str
    end: str
    notes: list[str] = field(default_factory=list)


def frame_sha256(candles: pd.DataFrame) -> str:
    """sha256 of the exact candle extract (index + OHLCV as float64), for extracts from a database."""
    digest = hashlib.sha256()
    digest.update(pd.DatetimeIndex(candles.index).as_unit("ns").asi8.tobytes())
    digest.update(np.ascontiguousarray(candles[OHLCV].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


# -- files -------------------------------------------------------------------------------------


def _timestamp_column(columns: list[str]) -> tuple[str, str | None] | None:
    """(column, strptime format or None) of a generic dated layout, or None when it is none of them."""
    lower = {c.lower(): c for c in columns}
    if "date" in lower and "time" not in lower:  # ETT-style `date`
        return lower["date"], None
    if "time" in lower and "date" not in lower:  # Dukascopy-style `Time`
        return lower["time"], DUKASCOPY_TIME
    if columns and columns[0] in PANDAS_INDEX_COLUMNS:  # a pandas-written datetime index
        return columns[0], None
    return None


def read_dated_csv(path: Path) -> pd.DataFrame:
    """A CSV that is not an MT5 export: one timestamp column (`date`, Dukascopy `Time`, or a pandas
    index) becomes the DatetimeIndex `ts`; every other column is returned as it is."""
    raw = pd.read_csv(path)
    found = _timestamp_column(list(raw.columns))
    if found is None:
        raise ValueError(f"{path.name}: expected a date, Time or index column, got {list(raw.columns)}")
    column, fmt = found
    index = pd.DatetimeIndex(pd.to_datetime(raw[column], format=fmt), name="ts").as_unit("ns")
    return raw.drop(columns=column).set_axis(index, axis=0)


def _candles_of(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """OHLCV (+ spread) as float columns, whatever the case of the source's column names."""
    cols = {c.lower(): c for c in frame.columns}
    missing = [c for c in OHLCV if c not in cols]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")
    out = pd.DataFrame({c: frame[cols[c]].to_numpy(np.float64) for c in OHLCV}, index=frame.index)
    if "spread" in cols:
        out["spread"] = frame[cols["spread"]].to_numpy(np.float64)
    return out


def read_candle_file(path: Path) -> pd.DataFrame:
    """Candles of a file: an MT5 history export, or one of read_dated_csv's generic layouts.

    A file whose header is one of the generic layouts goes to read_dated_csv; anything else is read
    as an MT5 export, whose parser raises HistoryFormatError (a ValueError) naming what it expected.
    """
    header = list(pd.read_csv(path, nrows=0).columns)
    if _timestamp_column(header) is not None:
        return _candles_of(read_dated_csv(path), path.name)
    bars = list(read_bars(path))
    index = pd.DatetimeIndex(pd.to_datetime([b.ts for b in bars], unit="s"), name="ts").as_unit("ns")
    return pd.DataFrame(
        {name: np.array([getattr(b, name) for b in bars], dtype=np.float64) for name in OHLCV},
        index=index,
    )


def clean_candles(candles: pd.DataFrame) -> tuple[pd.DataFrame, CandleQuality]:
    """Sort, drop exact duplicate timestamps (keep the last), and count OHLC violations and gaps."""
    frame = candles.sort_index()
    dup = frame.index.duplicated(keep="last")
    frame = frame[~dup]
    bad = (
        (frame["high"] < frame[["open", "close"]].max(axis=1))
        | (frame["low"] > frame[["open", "close"]].min(axis=1))
        | (frame["high"] < frame["low"])
    )
    gaps = np.diff(pd.DatetimeIndex(frame.index).as_unit("ns").asi8) / 3.6e12  # hours
    quality = CandleQuality(
        rows=len(frame),
        duplicates_dropped=int(dup.sum()),
        ohlc_violations=int(bad.sum()),
        gaps_over_weekend=int((gaps > 72.0).sum()),
        start=str(frame.index[0]) if len(frame) else "",
        end=str(frame.index[-1]) if len(frame) else "",
    )
    if quality.ohlc_violations:
        quality.notes.append(f"{quality.ohlc_violations} OHLC violations kept (flagged, not repaired)")
    return frame, quality


def load_csv(path: Path) -> pd.DataFrame:
    """A candle file (see read_candle_file) as a cleaned candle frame."""
    frame, _ = clean_candles(read_candle_file(path))
    return frame


# -- market_data (written by the API's ingest path) --------------------------------------------


async def _fetch_candles(
    dsn: str, symbol: str, timeframe: str, start: datetime | None, end: datetime | None
) -> list[tuple[datetime, float, float, float, float, int, float | None]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(select_series(), symbol, timeframe, start, end, None)  # no row limit
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


class NoCandles(ValueError):
    """The database holds no candles of the asked series in the asked range (a config error)."""


def load_candles(
    dsn: str, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Candles of one (symbol, timeframe) with start <= ts < end from `market_data`, cleaned.

    None leaves that end of the range open. `ts` is stored as timestamptz holding broker time
    labelled as UTC (the EA's `Z` convention), so we drop the zone after reading: the declared
    clock stays broker time.
    """
    rows = asyncio.run(_fetch_candles(dsn, symbol, timeframe, start, end))
    if not rows:
        raise NoCandles(f"no market_data rows for {symbol} {timeframe} in [{start}, {end})")
    ts = pd.DatetimeIndex([r[0] for r in rows], name="ts")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {name: np.array([r[i + 1] for r in rows], dtype=np.float64) for i, name in enumerate(OHLCV)},
        index=ts.as_unit("ns"),
    )
    spreads = [r[6] for r in rows]
    if any(s is not None for s in spreads):
        frame["spread"] = np.array([np.nan if s is None else s for s in spreads], dtype=np.float64)
    cleaned, _ = clean_candles(frame)
    return cleaned
