"""Candles column by column (the plain way): large bodies of valid, uniform candles.

An EA batch is nearly always valid and uniform: ISO "Z" timestamps, float prices, integer volumes.
For such a body msgspec decodes the items straight into typed structs (no dict per item), and each
check runs once per column (numpy) instead of once per item. The outcome is exactly
validate_candles(candle_items(decode_body(raw))): a body with any item the column checks do not
accept, invalid or merely unusual, goes the general way instead (candles.py), which gives the
per-item reasons (the two ways are property-tested for agreement).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

from mt5db_api.ingest.batch import CandleBatch
from mt5db_api.ingest.fields import ItemError, parse_ts
from mt5db_api.ingest.framing import frame
from mt5db_core.market.candles import EARLIEST_TS, INT64_MAX, MAX_FUTURE_S, VOLUME_MAX, symbol_ok
from mt5db_core.market.timeframes import DAY, TIMEFRAMES, canonical, floor_epoch

# The count rule in the struct: msgspec checks it in C while decoding (a count out of range fails
# the decode, and the body goes the general way). The symbol rule is not a msgspec pattern: that
# would call the regex once per item; plain_batch checks each distinct symbol once instead.
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Volume = Annotated[int, msgspec.Meta(ge=0, le=VOLUME_MAX)]


class PlainCandle(msgspec.Struct):
    """One candle as the plain way decodes it; unknown fields (meta) are skipped."""

    ts: str
    symbol: str
    timeframe: str | int
    open: float
    high: float
    low: float
    close: float
    volume: Volume = 0
    spread: float | None = None
    real_volume: Count | None = None


class PlainEnvelope(msgspec.Struct):
    """`{"items": [...]}`; a bare array is decoded as list[PlainCandle]."""

    items: list[PlainCandle]


_decode_envelope = msgspec.json.Decoder(PlainEnvelope).decode
_decode_array = msgspec.json.Decoder(list[PlainCandle]).decode
_ISO_Z_SEPARATOR_AT = [4, 7, 10, 13, 16, 19]
_ISO_Z_SEPARATORS = np.frombuffer(b"--T::Z", dtype=np.uint8)
_ISO_Z_DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]


def _digit_weights() -> np.ndarray[Any, np.dtype[np.int64]]:
    """The 14 digits of a stamp @ these weights = year, month, day, hour, minute, second."""
    weights = np.zeros((14, 6), dtype=np.int64)
    weights[0:4, 0] = (1000, 100, 10, 1)
    for field_no in range(1, 6):
        weights[2 + 2 * field_no : 4 + 2 * field_no, field_no] = (10, 1)
    return weights


_ISO_Z_FIELDS = _digit_weights()
_ISO_Z_LOW = np.array([1, 1, 1, 0, 0, 0])
_ISO_Z_HIGH = np.array([9999, 12, 31, 23, 59, 59])
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def iso_z_epochs(stamps: list[str]) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """Epoch seconds of "YYYY-MM-DDTHH:MM:SSZ" strings (the EAs' form), computed per column;
    None unless every string has exactly that form and names a real date and time.
    (Few, whole-column numpy operations: each costs microseconds however short the column.)"""
    if set(map(len, stamps)) != {20}:
        return None
    try:
        chars = np.frombuffer("".join(stamps).encode("ascii"), dtype=np.uint8).reshape(-1, 20)
    except UnicodeEncodeError:
        return None
    digits = chars[:, _ISO_Z_DIGIT_AT] - np.uint8(ord("0"))  # a non-digit wraps to above 9
    if not ((chars[:, _ISO_Z_SEPARATOR_AT] == _ISO_Z_SEPARATORS).all() and (digits <= 9).all()):
        return None
    fields = digits @ _ISO_Z_FIELDS
    if not ((fields >= _ISO_Z_LOW) & (fields <= _ISO_Z_HIGH)).all():
        return None
    year, month, day = fields[:, 0], fields[:, 1], fields[:, 2]
    late = day > 28
    if late.any():  # the 29th to 31st must exist in that month
        y, m = year[late], month[late]
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        if (day[late] > _MONTH_DAYS[m] + (leap & (m == 2))).any():
            return None
    # days since 1970-01-01 of a proleptic Gregorian date, the year starting in March so that
    # the leap day comes last (H. Hinnant, "days_from_civil")
    y = year - (month <= 2)
    days = y * 365 + y // 4 - y // 100 + y // 400 + (153 * ((month + 9) % 12) + 2) // 5 + day - 1 - 719468
    return days * DAY + fields[:, 3:] @ np.array([3600, 60, 1])  # type: ignore[no-any-return]


def plain_batch(raw: bytes, now: float) -> CandleBatch | None:
    """validate_candles(candle_items(decode_body(raw))) for a plain batch ({"items": [...]} or a
    bare array of valid candles), computed column by column; None for any other body."""
    raw = frame(raw)
    if not (raw.isascii() or _is_utf8(raw)):  # msgspec does not check skipped strings; orjson does
        return None
    try:
        doc = _decode_array(raw) if raw[:1] == b"[" else _decode_envelope(raw).items
    except (msgspec.MsgspecError, RecursionError):  # too deep: the general way answers invalid_json
        return None
    n = len(doc)
    if not n:
        return None
    # one struct -> tuple per item, then transposed: the ten columns as lists
    columns = zip(*map(msgspec.structs.astuple, doc), strict=True)
    ts_raw, symbol, tf_raw, o, h, lo, c, volume, spread, real = map(list, columns)
    p_open, p_high, p_low, p_close = np.array((o, h, lo, c))
    if not (
        np.isfinite(p_high).all() and (p_low > 0).all() and (p_low <= p_open).all() and (p_open <= p_high).all()
        and (p_low <= p_close).all() and (p_close <= p_high).all()
    ):  # fmt: skip
        return None
    if spread.count(None) < n:
        given = np.array([x for x in spread if x is not None])
        if not (np.isfinite(given).all() and (given >= 0).all()):
            return None
    if not all(symbol_ok(s) for s in set(symbol)):
        return None
    names: dict[str | int, str] = {}
    for raw_tf in set(tf_raw):
        name = canonical(raw_tf)
        if name is None:
            return None
        names[raw_tf] = name
    timeframe = [names[t] for t in tf_raw] if len(names) > 1 else [names[tf_raw[0]]] * n
    epochs = iso_z_epochs(ts_raw)
    if epochs is None:
        stamps = {}
        for text in set(ts_raw):
            try:
                stamps[text] = int(parse_ts(text, now) // 1)
            except ItemError:
                return None
        epochs = np.array([stamps[t] for t in ts_raw], dtype=np.int64)
    elif not ((epochs >= EARLIEST_TS).all() and (epochs <= now + MAX_FUTURE_S).all()):
        return None
    distinct = set(names.values())
    widths = {name: TIMEFRAMES[name].seconds for name in distinct if TIMEFRAMES[name].fixed}
    if len(widths) == len(distinct):
        width = np.array([widths[t] for t in timeframe]) if len(widths) > 1 else widths[timeframe[0]]
        ts = (epochs - epochs % width).tolist()
    else:  # W1, MN1: calendar buckets
        ts = [floor_epoch(e, t) for e, t in zip(epochs.tolist(), timeframe, strict=True)]
    one_series = len(distinct) == 1 and len(set(symbol)) == 1
    if (len(set(ts)) if one_series else len(set(zip(symbol, timeframe, ts, strict=True)))) == n:
        return CandleBatch(received=n, symbol=symbol, timeframe=timeframe, ts=ts, open=o, high=h, low=lo,
                           close=c, volume=volume, spread=spread, real_volume=real)  # fmt: skip
    batch = CandleBatch(received=n)  # a bar repeated inside the batch: merged in order, as always
    for row in zip(ts, symbol, timeframe, o, h, lo, c, volume, spread, real, strict=True):
        batch.add(*row)
    return batch


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
