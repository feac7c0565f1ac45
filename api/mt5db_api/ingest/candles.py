"""Candles item by item (the general way): every body, with a precise reason per rejected item.

No pydantic model per item (docs/architecture.md: a model per candle costs a full core at a third
of raw COPY's rate). The body is decoded once (framing.py) and each item is checked with plain type
tests: `validate_candles` has an inline fast check for the common valid candle, and everything it
does not accept goes through `check_candle`, the authoritative checker.
"""

from __future__ import annotations

import math
from typing import Any

from mt5db_api.ingest.batch import CandleBatch
from mt5db_api.ingest.fields import ItemError, check_count, check_number, check_price, check_symbol, parse_ts
from mt5db_core.market.candles import VOLUME_MAX, symbol_ok
from mt5db_core.market.timeframes import TIMEFRAMES, canonical, floor_epoch


def check_candle(item: Any, now: float) -> tuple[int, str, str, float, float, float, float, int, Any, Any]:
    """Full per-field validation of one candle with precise reasons; raises ItemError.

    Returns the CandleBatch.add arguments: (bucket, symbol, timeframe, o, h, l, c, volume, spread,
    real_volume), the bucket floored in the labelled clock.
    """
    if type(item) is not dict:
        raise ItemError("not_an_object")
    if "ts" not in item:
        raise ItemError("missing_field", "ts")
    epoch = parse_ts(item["ts"], now)
    symbol = check_symbol(item)
    if "timeframe" not in item:
        raise ItemError("missing_field", "timeframe")
    tf = canonical(item["timeframe"])
    if tf is None:
        raise ItemError("invalid_timeframe", "timeframe")
    o = check_price(item, "open")
    h = check_price(item, "high")
    lo = check_price(item, "low")
    c = check_price(item, "close")
    if h < lo:
        raise ItemError("high_below_low")
    if h < o or h < c:
        raise ItemError("high_below_open_close")
    if lo > o or lo > c:
        raise ItemError("low_above_open_close")
    vol = check_count(item, "volume", maximum=VOLUME_MAX)
    spread = check_number(item, "spread")
    real = item.get("real_volume")
    if real is not None:
        real = check_count(item, "real_volume", "negative_value")
    return floor_epoch(int(epoch // 1), tf), symbol, tf, o, h, lo, c, vol, spread, real


def validate_candles(items: list[Any], now: float) -> CandleBatch:
    """Check every item; keep the valid ones as columns, merging same-key items monotonically.

    Hot path: the common, valid candle (float prices, int volume, string ts and timeframe) passes a
    handful of inline checks with per-batch caches (symbols, timeframes, timestamps: an EA batch
    shares one ts) and is appended inline. Anything the fast checks do not accept goes through
    `check_candle`, which is authoritative and gives the precise reason, so both paths accept and
    reject exactly the same items (property-tested).
    """
    batch = CandleBatch(received=len(items))
    index = batch.index
    symbols_ok: set[str] = set()
    timeframes: dict[str, tuple[str, int] | None] = {}  # raw -> (canonical, fixed width or 0)
    stamps: dict[str, int | None] = {}  # raw ts -> whole epoch seconds (None: invalid)
    inf = math.inf
    append_error = batch.errors.append
    b_symbol, b_tf, b_ts, b_open, b_high, b_low, b_close, b_volume, b_spread, b_real = (
        batch.symbol, batch.timeframe, batch.ts, batch.open, batch.high, batch.low, batch.close,
        batch.volume, batch.spread, batch.real_volume,
    )  # fmt: skip
    for i, item in enumerate(items):
        fast = None
        if type(item) is dict:
            get = item.get
            o, h, lo, c = get("open"), get("high"), get("low"), get("close")
            vol = get("volume", 0)
            sym = get("symbol")
            spread = get("spread")
            ts_raw = get("ts")
            tf_raw = get("timeframe")
            if (
                type(o) is float and type(h) is float and type(lo) is float and type(c) is float
                and 0.0 < lo <= o <= h < inf and lo <= c <= h
                and type(vol) is int and 0 <= vol <= VOLUME_MAX
                and type(sym) is str
                and (sym in symbols_ok or symbol_ok(sym) is not None)
                and type(ts_raw) is str
                and type(tf_raw) is str
                and (spread is None or (type(spread) is float and 0.0 <= spread < inf))
                and get("real_volume") is None
            ):  # fmt: skip
                if tf_raw in timeframes:
                    tfw = timeframes[tf_raw]
                else:
                    name = canonical(tf_raw)
                    tfw = (
                        None
                        if name is None
                        else (name, TIMEFRAMES[name].seconds if TIMEFRAMES[name].fixed else 0)
                    )
                    timeframes[tf_raw] = tfw
                if ts_raw in stamps:
                    epoch = stamps[ts_raw]
                else:
                    try:
                        epoch = int(parse_ts(ts_raw, now) // 1)
                    except ItemError:
                        epoch = None
                    stamps[ts_raw] = epoch
                if tfw is not None and epoch is not None:
                    symbols_ok.add(sym)
                    tf, width = tfw
                    bucket = epoch - epoch % width if width else floor_epoch(epoch, tf)
                    key = (sym, tf, bucket)
                    if key not in index:  # the common case, inlined: a new bar
                        index[key] = len(b_symbol)
                        b_symbol.append(sym)
                        b_tf.append(tf)
                        b_ts.append(bucket)
                        b_open.append(o)
                        b_high.append(h)
                        b_low.append(lo)
                        b_close.append(c)
                        b_volume.append(vol)
                        b_spread.append(spread)
                        b_real.append(None)
                        continue
                    fast = (bucket, sym, tf, o, h, lo, c, vol, spread, None)
        if fast is None:
            try:
                fast = check_candle(item, now)
            except ItemError as err:
                error: dict[str, Any] = {"index": i, "reason": err.reason}
                if err.field is not None:
                    error["field"] = err.field
                append_error(error)
                continue
        batch.add(*fast)
    return batch
