"""The ingest hot path before the database: lenient framing, envelope detection, per-item checks.

No pydantic model per item (ARCHITECTURE: a model per candle costs a full core at a third of raw
COPY's rate). Two ways, one outcome (parse_candles picks):

- the general way: the body is parsed once with orjson (falling back to the standard library for
  the NaN/Infinity tokens orjson refuses) and every item is checked with plain type tests, giving
  per-item reasons;
- the plain way, for large bodies of valid, uniform candles: msgspec structs and checks once per
  column (plain_batch); anything else it leaves to the general way.

Valid items land in column lists (CandleBatch) for the database. Items sharing a key inside one
batch are merged here with the same monotone rule the SQL applies.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import orjson

from mt5db_core.market.timeframes import TIMEFRAMES, canonical, floor_epoch

EPOCH_1990 = 631152000
DAY = 86400
INT64_MAX = 2**63 - 1

# Stable, bounded reason codes: they are API (per-item errors) and Prometheus label values.
REASONS = (
    "not_an_object", "missing_field", "invalid_type", "not_finite", "not_positive", "negative_value",
    "invalid_symbol", "invalid_timeframe", "invalid_ts", "ts_out_of_range", "high_below_low",
    "high_below_open_close", "low_above_open_close", "negative_volume", "invalid_volume", "ask_below_bid",
)  # fmt: skip

_symbol_ok = re.compile(r"[A-Za-z0-9._#+\-]{1,32}").fullmatch
# Lower-case nan/inf tokens from faulty builds; only where a JSON value starts (after : , [).
_lower_tokens = re.compile(rb"([:,\[]\s*)(-?)(nan|inf|infinity)(?=\s*[,\]}])", re.IGNORECASE)


class BodyError(Exception):
    """The body as a whole cannot be used: 400 (or 413) with a compact reason."""

    def __init__(self, reason: str, status: int = 400, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.extra = extra


def _constant(token: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[token]


def _framed(raw: bytes) -> bytes:
    """The body without a UTF-8 BOM and trailing NUL/whitespace (MQL5 buffers carry both)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.rstrip(b"\x00 \t\r\n")


def decode_body(raw: bytes) -> Any:
    """Parse a request body leniently: strip a UTF-8 BOM and trailing NUL/whitespace, accept
    NaN/Infinity tokens (they become non-finite floats that per-item checks reject)."""
    raw = _framed(raw)
    if not raw:
        raise BodyError("empty_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("invalid_json") from None
    try:
        return json.loads(text, parse_constant=_constant)
    except (ValueError, RecursionError):
        pass
    fixed = _lower_tokens.sub(_fix_token, raw)
    try:
        return json.loads(fixed.decode("utf-8"), parse_constant=_constant)
    except (ValueError, RecursionError):
        raise BodyError("invalid_json") from None


def _fix_token(m: re.Match[bytes]) -> bytes:
    word = b"NaN" if m.group(3).lower() == b"nan" else b"Infinity"
    sign = m.group(2) if word == b"Infinity" else b""
    return m.group(1) + sign + word


def candle_items(doc: Any) -> list[Any]:
    """Envelope detection for candles: {"items":[...]} / bare array -> batch; other object -> one."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                raise BodyError("items_not_an_array")
            return items
        return [doc]
    raise BodyError("wrong_top_level_type")


def tick_items(doc: Any) -> list[Any]:
    """Envelope detection for ticks: {"ticks":[...]} / bare array -> batch; other object -> one."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "ticks" in doc:
            ticks = doc["ticks"]
            if not isinstance(ticks, list):
                raise BodyError("ticks_not_an_array")
            return ticks
        return [doc]
    raise BodyError("wrong_top_level_type")


class ItemError(Exception):
    """One item is invalid; carries the stable reason code and the field."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def parse_ts(value: Any, now: float) -> float:
    """Epoch seconds of an ISO-8601 string (Z, offset, fraction; zone-less = Z) or epoch ms integer.

    Offsets are honoured (the instant is moved onto the `Z` timeline) so one instant always lands in
    one bucket; the `Z` label itself is taken as written (broker clock, never converted).
    """
    if isinstance(value, str):
        if len(value) < 10 or value[4] != "-":
            raise ItemError("invalid_ts", "ts")  # rejects 2025.03.12 14:00 and friends early
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ItemError("invalid_ts", "ts") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        epoch = parsed.timestamp()
    elif type(value) is int or (type(value) is float and value.is_integer()):
        if not -(2**62) < value < 2**62:  # also keeps huge JSON integers away from float()
            raise ItemError("ts_out_of_range", "ts")
        epoch = value / 1000.0
    else:
        raise ItemError("invalid_ts", "ts")
    if not EPOCH_1990 <= epoch <= now + DAY:
        raise ItemError("ts_out_of_range", "ts")
    return epoch


def _price(item: dict[str, Any], name: str) -> float:
    value = item.get(name)
    t = type(value)
    if t is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise ItemError("not_finite", name)
    elif t is int:
        if not -(2**1000) < value < 2**1000:  # type: ignore[operator]
            raise ItemError("not_finite", name)  # float() would overflow
        value = float(value)  # type: ignore[arg-type]
    elif value is None and name not in item:
        raise ItemError("missing_field", name)
    else:
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ItemError("not_finite", name)
        raise ItemError("invalid_type", name)
    if value <= 0:  # type: ignore[operator]
        raise ItemError("not_positive", name)
    return value  # type: ignore[return-value]


def _optional_number(item: dict[str, Any], name: str, minimum: float = 0.0) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    t = type(value)
    if t is not float and t is not int:
        raise ItemError("invalid_type", name)
    if t is int and not -(2**1000) < value < 2**1000:
        raise ItemError("not_finite", name)
    value = float(value)
    if not math.isfinite(value):
        raise ItemError("not_finite", name)
    if value < minimum:
        raise ItemError("negative_value", name)
    return value


def _count(item: dict[str, Any], name: str, reason_negative: str = "negative_volume") -> int:
    value = item.get(name)
    if value is None:
        return 0
    t = type(value)
    if t is int:
        pass
    elif t is float and math.isfinite(value) and value.is_integer():
        value = int(value)
    else:
        raise ItemError("invalid_volume" if name == "volume" else "invalid_type", name)
    if value < 0:
        raise ItemError(reason_negative, name)
    if value > INT64_MAX:
        raise ItemError("invalid_volume" if name == "volume" else "invalid_type", name)
    return value


def _symbol(item: dict[str, Any]) -> str:
    value = item.get("symbol")
    if value is None:
        raise ItemError("missing_field", "symbol")
    if not isinstance(value, str) or not _symbol_ok(value):
        raise ItemError("invalid_symbol", "symbol")
    return value


@dataclass
class CandleBatch:
    """Validated candles as columns (one entry per distinct key) plus per-item outcomes."""

    received: int = 0
    symbol: list[str] = field(default_factory=list)
    timeframe: list[str] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    volume: list[int] = field(default_factory=list)
    spread: list[float | None] = field(default_factory=list)
    real_volume: list[int | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # items folded into an earlier item of the same key inside this batch (counted by add())
    merged_duplicates: int = 0
    merged_updates: int = 0
    # key -> row, kept by add(); a batch built column-wise (plain_batch) has distinct keys and none
    index: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.symbol)

    def add(
        self, bucket: int, symbol: str, tf: str, o: float, h: float, lo: float, c: float, vol: int,
        spread: float | None, real: int | None,
    ) -> int:  # fmt: skip
        """Append a candle, or merge it into the earlier one with the same key (the later one is
        the newer snapshot; the same rule as the SQL). Returns 0 new, 1 merged-changed, 2 merged-same."""
        key = (symbol, tf, bucket)
        j = self.index.get(key)
        if j is None:
            self.index[key] = len(self.symbol)
            self.symbol.append(symbol)
            self.timeframe.append(tf)
            self.ts.append(bucket)
            self.open.append(o)
            self.high.append(h)
            self.low.append(lo)
            self.close.append(c)
            self.volume.append(vol)
            self.spread.append(spread)
            self.real_volume.append(real)
            return 0
        before = (self.open[j], self.high[j], self.low[j], self.close[j], self.volume[j])
        if vol >= self.volume[j]:
            self.open[j], self.close[j] = o, c
            if spread is not None:
                self.spread[j] = spread
        self.high[j] = max(self.high[j], h)
        self.low[j] = min(self.low[j], lo)
        self.volume[j] = max(self.volume[j], vol)
        if real is not None:
            self.real_volume[j] = max(self.real_volume[j] or 0, real)
        after = (self.open[j], self.high[j], self.low[j], self.close[j], self.volume[j])
        if after == before:
            self.merged_duplicates += 1
            return 2
        self.merged_updates += 1
        return 1


def _slow_candle(item: Any, now: float) -> tuple[int, str, str, float, float, float, float, int, Any, Any]:
    """Full per-field validation of one candle with precise reasons; raises ItemError."""
    if type(item) is not dict:
        raise ItemError("not_an_object")
    if "ts" not in item:
        raise ItemError("missing_field", "ts")
    epoch = parse_ts(item["ts"], now)
    symbol = _symbol(item)
    if "timeframe" not in item:
        raise ItemError("missing_field", "timeframe")
    tf = canonical(item["timeframe"])
    if tf is None:
        raise ItemError("invalid_timeframe", "timeframe")
    o = _price(item, "open")
    h = _price(item, "high")
    lo = _price(item, "low")
    c = _price(item, "close")
    if h < lo:
        raise ItemError("high_below_low")
    if h < o or h < c:
        raise ItemError("high_below_open_close")
    if lo > o or lo > c:
        raise ItemError("low_above_open_close")
    vol = _count(item, "volume")
    spread = _optional_number(item, "spread")
    real = item.get("real_volume")
    if real is not None:
        real = _count(item, "real_volume", "negative_value")
    return floor_epoch(int(epoch // 1), tf), symbol, tf, o, h, lo, c, vol, spread, real


def validate_candles(items: list[Any], now: float) -> CandleBatch:
    """Check every item; keep the valid ones as columns, merging same-key items monotonically.

    Hot path: the common, valid candle (float prices, int volume, string ts and timeframe) passes a
    handful of inline checks with per-batch caches (symbols, timeframes, timestamps: an EA batch
    shares one ts) and is appended inline. Anything the fast checks do not accept goes through
    `_slow_candle`, which is authoritative and gives the precise reason, so both paths accept and
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
                and type(vol) is int and 0 <= vol <= INT64_MAX
                and type(sym) is str
                and (sym in symbols_ok or _symbol_ok(sym) is not None)
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
                fast = _slow_candle(item, now)
            except ItemError as err:
                error: dict[str, Any] = {"index": i, "reason": err.reason}
                if err.field is not None:
                    error["field"] = err.field
                append_error(error)
                continue
        batch.add(*fast)
    return batch


# The plain batch, column-wise. An EA batch is nearly always valid and uniform: ISO "Z" timestamps,
# float prices, integer volumes. For such a body msgspec decodes the items straight into typed
# structs (no dict per item), and each check runs once per column (numpy) instead of once per item.
# The outcome is exactly validate_candles(candle_items(decode_body(raw))): a body with any item the
# column checks do not accept, invalid or merely unusual, goes the general way instead, which gives
# the per-item reasons (the two ways are property-tested for agreement).


class _PlainCandle(msgspec.Struct):
    ts: str
    symbol: str
    timeframe: str | int
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    spread: float | None = None
    real_volume: int | None = None


class _PlainEnvelope(msgspec.Struct):
    items: list[_PlainCandle]


_decode_envelope = msgspec.json.Decoder(_PlainEnvelope).decode
_decode_array = msgspec.json.Decoder(list[_PlainCandle]).decode
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
    raw = _framed(raw)
    if not (raw.isascii() or _is_utf8(raw)):  # msgspec does not check skipped strings; orjson does
        return None
    try:
        doc = _decode_array(raw) if raw[:1] == b"[" else _decode_envelope(raw).items
    except msgspec.MsgspecError:
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
        and min(volume) >= 0 and max(volume) <= INT64_MAX
    ):  # fmt: skip
        return None
    if spread.count(None) < n:
        given = np.array([x for x in spread if x is not None])
        if not (np.isfinite(given).all() and (given >= 0).all()):
            return None
    if real.count(None) < n:
        given_real = [x for x in real if x is not None]
        if min(given_real) < 0 or max(given_real) > INT64_MAX:
            return None
    if not all(_symbol_ok(s) for s in set(symbol)):
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
    elif not ((epochs >= EPOCH_1990).all() and (epochs <= now + DAY).all()):
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


@dataclass
class TickBatch:
    """Validated ticks as columns, in arrival order (every tick is kept, no dedupe)."""

    received: int = 0
    symbol: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    bid: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    volume: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    digits: list[int | None] = field(default_factory=list)
    spread: list[float | None] = field(default_factory=list)
    meta: list[str | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.symbol)


def validate_ticks(items: list[Any], now: float) -> TickBatch:
    """Check every tick; keep the valid ones as columns in arrival order."""
    batch = TickBatch(received=len(items))
    for i, item in enumerate(items):
        try:
            if type(item) is not dict:
                raise ItemError("not_an_object")
            if "ts" not in item:
                raise ItemError("missing_field", "ts")
            epoch = parse_ts(item["ts"], now)
            symbol = _symbol(item)
            bid = _price(item, "bid")
            ask = _price(item, "ask")
            if ask < bid:
                raise ItemError("ask_below_bid")
            last = _optional_number(item, "last") or 0.0
            vol = _count(item, "volume")
            flags = _count(item, "flags", "negative_value")
            digits = item.get("digits")
            if digits is not None and (type(digits) is not int or not 0 <= digits <= 12):
                raise ItemError("invalid_type", "digits")
            spread = _optional_number(item, "spread")
            meta = item.get("meta")
            if meta is not None and type(meta) is not dict:
                raise ItemError("invalid_type", "meta")
        except ItemError as err:
            error: dict[str, Any] = {"index": i, "reason": err.reason}
            if err.field is not None:
                error["field"] = err.field
            batch.errors.append(error)
            continue
        batch.symbol.append(symbol)
        batch.ts.append(epoch)
        batch.bid.append(bid)
        batch.ask.append(ask)
        batch.last.append(last)
        batch.volume.append(vol)
        batch.flags.append(flags)
        batch.digits.append(digits)
        batch.spread.append(spread)
        batch.meta.append(None if meta is None else orjson.dumps(meta).decode())
    return batch


# Below this size (a dozen candles) a body's fixed costs dominate: the general way is as fast.
PLAIN_MIN_BYTES = 2048


def _within(count: int, max_items: int) -> None:
    if count > max_items:
        raise BodyError("too_many_items", 413, limit_items=max_items)


def parse_candles(raw: bytes, now: float, max_items: int) -> CandleBatch:
    """A body's candles, validated: column-wise when it is a plain batch, item by item otherwise.
    Raises BodyError when the body as a whole cannot be used."""
    batch = plain_batch(raw, now) if len(raw) >= PLAIN_MIN_BYTES else None
    if batch is None:
        items = candle_items(decode_body(raw))
        _within(len(items), max_items)
        return validate_candles(items, now)
    _within(batch.received, max_items)
    return batch


def parse_ticks(raw: bytes, now: float, max_items: int) -> TickBatch:
    """A body's ticks, validated item by item. Raises BodyError when the body cannot be used."""
    items = tick_items(decode_body(raw))
    _within(len(items), max_items)
    return validate_ticks(items, now)
