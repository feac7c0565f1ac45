"""The one feature function: scale-free TA-Lib indicators over closed candles (docs/ml-protocol.md §7).

`compute_features(candles)` is used by training and, later, by `/predict`; nothing else computes
features. Every column is a ratio or an oscillator, so one model can serve several symbols and no
raw price level leaks in. Rows inside the warm-up (the first `WARMUP_BARS` bars of each contiguous
segment; a segment restarts after a gap longer than `MAX_GAP_HOURS`) are NaN: recursive indicators
(RSI, ADX, EMA) still depend on their seed there (TA-Lib RSI14 differs by 7e-3 at 100 bars of history,
3e-12 at 400). The value at bar t uses bars <= t only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

FEATURE_SET_VERSION = "ta22-v1"
WARMUP_BARS = 400
# A normal FX weekend is ~49 h and a holiday weekend ~73 h on the broker clock; a longer gap is a
# data outage, after which indicators restart and the warm-up applies again.
MAX_GAP_HOURS = 96.0

FEATURES: tuple[str, ...] = (
    "rsi14",
    "macd_rel",
    "macdhist_rel",
    "bb_pctb",
    "bb_width",
    "atr_rel",
    "adx14",
    "di_spread",
    "stoch_k",
    "stoch_d",
    "close_ema20",
    "sma10_sma50",
    "cci20",
    "willr14",
    "roc1",
    "roc5",
    "roc10",
    "rvol20",
    "obv_chg10",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
)
VOLUME_FEATURES = ("obv_chg10",)

F64 = npt.NDArray[np.float64]


def feature_set_hash(
    version: str = FEATURE_SET_VERSION,
    names: tuple[str, ...] | list[str] = FEATURES,
    warmup: int = WARMUP_BARS,
) -> str:
    """Identity of a feature set: its version, column names in order and warm-up.

    A registered version records the hash it was trained with; serving loads it only when the
    hash equals the one this code computes (the same function, the same columns, the same order).
    """
    import hashlib
    import json

    doc = {"version": version, "names": list(names), "warmup_bars": int(warmup)}
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def _indicators(h: F64, lo: F64, c: F64, v: F64) -> dict[str, F64]:
    """TA-Lib indicators of one contiguous segment (no warm-up masking here)."""
    import talib

    out: dict[str, F64] = {}
    out["rsi14"] = talib.RSI(c, timeperiod=14)
    macd, _signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    out["macd_rel"] = macd / c
    out["macdhist_rel"] = hist / c
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)  # matype default = SMA
    band = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        # a flat window (band 0) puts the close in the middle of the band
        out["bb_pctb"] = np.where(band > 0, (c - lower) / band, np.where(np.isnan(band), np.nan, 0.5))
    out["bb_width"] = band / middle
    out["atr_rel"] = talib.ATR(h, lo, c, timeperiod=14) / c
    out["adx14"] = talib.ADX(h, lo, c, timeperiod=14)
    out["di_spread"] = talib.PLUS_DI(h, lo, c, timeperiod=14) - talib.MINUS_DI(h, lo, c, timeperiod=14)
    # slow %K and %D are SMAs (TA-Lib's default matype 0)
    k, d = talib.STOCH(h, lo, c, fastk_period=14, slowk_period=3, slowd_period=3)
    out["stoch_k"] = k
    out["stoch_d"] = d
    out["close_ema20"] = c / talib.EMA(c, timeperiod=20) - 1.0
    out["sma10_sma50"] = talib.SMA(c, timeperiod=10) / talib.SMA(c, timeperiod=50) - 1.0
    out["cci20"] = talib.CCI(h, lo, c, timeperiod=20)
    out["willr14"] = talib.WILLR(h, lo, c, timeperiod=14)
    # ROC as a fraction (TA-Lib returns percent): backward returns, known at the close of t.
    out["roc1"] = talib.ROC(c, timeperiod=1) / 100.0
    out["roc5"] = talib.ROC(c, timeperiod=5) / 100.0
    out["roc10"] = talib.ROC(c, timeperiod=10) / 100.0
    logret = np.full_like(c, np.nan)
    logret[1:] = np.diff(np.log(c))
    out["rvol20"] = talib.STDDEV(logret, timeperiod=20, nbdev=1.0)
    obv = talib.OBV(c, v)
    vol10 = talib.SUM(v, timeperiod=10)
    obv_chg = np.full_like(c, np.nan)
    obv_chg[10:] = obv[10:] - obv[:-10]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["obv_chg10"] = np.where(vol10 > 0, obv_chg / vol10, 0.0)
    out["obv_chg10"][np.isnan(obv_chg)] = np.nan
    return out


def _calendar(index: pd.DatetimeIndex) -> dict[str, F64]:
    """Hour-of-day and day-of-week on the circle, from the index as labelled (the declared clock)."""
    ns = index.as_unit("ns").asi8
    hours = (ns // 3_600_000_000_000) % 24 + ((ns // 60_000_000_000) % 60) / 60.0
    days = (ns // 86_400_000_000_000 + 3) % 7  # 1970-01-01 was a Thursday → Monday = 0
    return {
        "hour_sin": np.sin(2 * np.pi * hours / 24.0),
        "hour_cos": np.cos(2 * np.pi * hours / 24.0),
        "dow_sin": np.sin(2 * np.pi * days / 7.0),
        "dow_cos": np.cos(2 * np.pi * days / 7.0),
    }


def segment_ids(index: pd.DatetimeIndex, max_gap_hours: float = MAX_GAP_HOURS) -> npt.NDArray[np.int64]:
    """Contiguous-segment number of each bar: a new segment starts after a gap > max_gap_hours."""
    gaps = np.diff(index.as_unit("ns").asi8) / 3.6e12
    return np.concatenate([[0], np.cumsum(gaps > max_gap_hours)]).astype(np.int64)


def compute_features(
    candles: pd.DataFrame,
    *,
    warmup: int = WARMUP_BARS,
    use_volume: bool = True,
    max_gap_hours: float = MAX_GAP_HOURS,
) -> pd.DataFrame:
    """Scale-free features aligned with `candles.index`; NaN inside each segment's warm-up.

    `candles` needs float open/high/low/close (and volume when `use_volume`), sorted by a
    DatetimeIndex in the declared clock. Tick volume is broker-specific, hence optional.
    """
    if not candles.index.is_monotonic_increasing:
        raise ValueError("candles must be sorted by time")
    index = pd.DatetimeIndex(candles.index)
    cols = {name: candles[name].to_numpy(np.float64) for name in ("high", "low", "close")}
    volume = candles["volume"].to_numpy(np.float64) if use_volume else np.zeros(len(candles))
    names = [f for f in FEATURES if use_volume or f not in VOLUME_FEATURES]
    result = np.full((len(candles), len(names)), np.nan)
    seg = segment_ids(index, max_gap_hours)
    bounds = np.flatnonzero(np.diff(seg)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(candles)]])
    for s, e in zip(starts, ends, strict=True):
        if e - s <= warmup:
            continue
        ind = _indicators(cols["high"][s:e], cols["low"][s:e], cols["close"][s:e], volume[s:e])
        for j, name in enumerate(names):
            if name in ind:
                result[s + warmup : e, j] = ind[name][warmup:]
    cal = _calendar(index)
    for j, name in enumerate(names):
        if name in cal:
            result[:, j] = np.where(np.isnan(result[:, 0]), np.nan, cal[name])
    return pd.DataFrame(result, index=candles.index, columns=names)


def bench_features(n_bars: int = 1_000_000, seed: int = 0) -> float:
    """Seconds to compute the features of `n_bars` synthetic H1 candles (prints the timing)."""
    import time

    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n_bars)))
    opn = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 5e-4, n_bars))
    frame = pd.DataFrame(
        {
            "open": opn,
            "high": np.maximum(opn, close) + spread,
            "low": np.minimum(opn, close) - spread,
            "close": close,
            "volume": rng.integers(1, 5000, n_bars).astype(np.float64),
        },
        index=pd.date_range("2000-01-03", periods=n_bars, freq="h", name="ts"),
    )
    started = time.perf_counter()
    compute_features(frame)
    elapsed = time.perf_counter() - started
    print(f"features: {n_bars} bars x {len(FEATURES)} columns in {elapsed:.3f} s")
    return elapsed
