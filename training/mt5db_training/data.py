"""Candle loading for training: MT5 history CSV exports and the `market_data` table.

Every loader returns the same frame: a tz-naive DatetimeIndex named `ts` in the declared clock
(broker server time as labelled, see docs/training.md), float columns open/high/low/close/volume
and, when the source has one, `spread` in price units. Rows are sorted, unique and validated by
`clean_candles`, which reports problems instead of silently repairing them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

OHLCV = ["open", "high", "low", "close", "volume"]

# The clock every timestamp is in. MT5 exports and the EA both label broker server time
# (EET/EEST for the shared file, docs/ml-protocol.md §9); we keep it as labelled rather than guess a
# conversion, and say so in every report.
DECLARED_CLOCK = "broker server time as labelled (EET/EEST, UTC+2/+3 for the shared file)"


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


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(candles: pd.DataFrame) -> str:
    """sha256 of the exact candle extract (index + OHLCV as float64), for extracts from a database."""
    digest = hashlib.sha256()
    digest.update(pd.DatetimeIndex(candles.index).as_unit("ns").asi8.tobytes())
    digest.update(np.ascontiguousarray(candles[OHLCV].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def symbol_timeframe_from_name(path: Path) -> tuple[str, str]:
    """`EURUSD_H1_2021-...csv` → ("EURUSD", "H1"); unknown parts become "UNKNOWN"."""
    match = re.match(r"([A-Za-z0-9]+)_(M\d+|H\d+|D1|W1|MN1)", path.name)
    if match is None:
        return "UNKNOWN", "UNKNOWN"
    return match.group(1).upper(), match.group(2).upper()


def read_mt5_csv(path: Path) -> pd.DataFrame:
    """Read an MT5 history export (`Date,Time,Open,High,Low,Close,Volume`, `2021.10.18,00:00`)."""
    raw = pd.read_csv(path)
    cols = {c.lower(): c for c in raw.columns}
    if "date" in cols and "time" in cols:
        ts = pd.to_datetime(raw[cols["date"]] + " " + raw[cols["time"]], format="%Y.%m.%d %H:%M")
    elif "date" in cols:  # ETT-style `date` column, also accepted for convenience
        ts = pd.to_datetime(raw[cols["date"]])
    elif "time" in cols:  # Dukascopy-style `Time` = `01.01.2017 22:00:00.000`
        ts = pd.to_datetime(raw[cols["time"]], format="%d.%m.%Y %H:%M:%S.%f")
    elif raw.columns[0] in ("", "Unnamed: 0"):  # a pandas-written datetime index
        ts = pd.to_datetime(raw[raw.columns[0]])
    else:
        raise ValueError(f"{path.name}: expected Date and Time columns, got {list(raw.columns)}")
    frame = pd.DataFrame(
        {name: raw[cols[name]].to_numpy(np.float64) for name in OHLCV if name in cols},
        index=pd.DatetimeIndex(ts, name="ts").as_unit("ns"),
    )
    if "spread" in cols:
        frame["spread"] = raw[cols["spread"]].to_numpy(np.float64)
    missing = [c for c in OHLCV if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name}: missing columns {missing}")
    return frame


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
    """An MT5 CSV export as a cleaned candle frame."""
    frame, _ = clean_candles(read_mt5_csv(path))
    return frame


# -- market_data (written by the API's ingest path) --------------------------------------------

_CANDLES_SQL = """
SELECT ts, open, high, low, close, volume, spread
FROM market_data
WHERE symbol = $1 AND timeframe = $2 AND ts >= $3 AND ts < $4
ORDER BY ts
"""


async def _fetch_candles(
    dsn: str, symbol: str, timeframe: str, start: datetime, end: datetime
) -> list[tuple[datetime, float, float, float, float, int, float | None]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(_CANDLES_SQL, symbol, timeframe, start, end)
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


def load_candles(dsn: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Candles of one (symbol, timeframe) with start <= ts < end from `market_data`, cleaned.

    `ts` is stored as timestamptz holding broker time labelled as UTC (the EA's `Z` convention),
    so we drop the zone after reading: the declared clock stays broker time.
    """
    rows = asyncio.run(_fetch_candles(dsn, symbol, timeframe, start, end))
    if not rows:
        raise ValueError(f"no market_data rows for {symbol} {timeframe} in [{start}, {end})")
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
