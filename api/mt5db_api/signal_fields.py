"""The signal routes' inputs, read and checked (docs/ea-contract.md §11): pure, no web framework.

Each reader returns a typed value or raises FieldError with a short reason and the field it
concerns, which the routes answer as 400 `{"detail": reason, "field": name}`. Input values of
`side` and `status` are matched case-insensitively; what is stored and sent is upper case.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mt5db_core.market.candles import INT64_MAX, symbol_ok
from mt5db_core.market.timeframes import canonical

SIDES = ("BUY", "SELL", "CLOSE", "NONE")
ACK_STATUSES = ("FILLED", "REJECTED")
MAX_SYMBOLS = 64
MAX_ACCOUNT_LEN = 64
MAX_TTL_SEC = 86400
MAX_PIPS = 100_000
MAX_META_BYTES = 8192
MAX_KEYS = 1000
_account_ok = re.compile(r"[A-Za-z0-9._:@-]{1,64}").fullmatch
DEFAULT_TIMEFRAME = "M1"  # §11.3: without `timeframe`, M1 is assumed
DEFAULT_TTL_SEC = 90  # §11


class FieldError(ValueError):
    """A value the route cannot use: 400 with `reason` (and `field`)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detail": self.reason}
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True)
class Poll:
    symbols: list[str]
    timeframe: str
    account_id: str | None


@dataclass(frozen=True)
class Ack:
    signal_id: uuid.UUID | None  # None: not an id we could ever have issued (→ known:false)
    status: str
    symbol: str
    side: str
    mt5_ticket: int | None
    price: float | None
    ts_exec: str | None
    account_id: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class LegacyAck:
    """`{"keys":[...]}`: each known id is acknowledged; the answer counts them."""

    ids: list[uuid.UUID]
    unknown: int


@dataclass(frozen=True)
class NewSignal:
    symbol: str
    timeframe: str
    side: str
    confidence: float
    ttl_sec: int
    sl_pips: int
    tp_pips: int
    meta: dict[str, Any] = field(default_factory=dict)
    account_id: str | None = None
    signal_id: uuid.UUID | None = None


def _account(value: Any, name: str = "account_id") -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # MT5 logins are numbers; the contract sends them as strings
    if not isinstance(value, str) or not _account_ok(value):
        raise FieldError("invalid_account_id", name)
    return value


def _symbol(value: Any, name: str = "symbol") -> str:
    if not isinstance(value, str) or not symbol_ok(value):
        raise FieldError("invalid_symbol", name)
    return value


def _timeframe(value: Any, name: str = "timeframe") -> str:
    tf = canonical(value)
    if tf is None:
        raise FieldError("invalid_timeframe", name)
    return tf


def parse_poll(query: Mapping[str, str]) -> Poll:
    """`GET /signals/next` query: symbols= (CSV) or the legacy symbol=, timeframe (default M1),
    account_id (absent: broadcast signals only)."""
    raw = query.get("symbols")
    name = "symbols"
    if raw is None:
        raw, name = query.get("symbol"), "symbol"
    if raw is None or not raw.strip():
        raise FieldError("missing_symbols", "symbols")
    symbols = [s.strip() for s in raw.split(",") if s.strip()]
    if not symbols or len(symbols) > MAX_SYMBOLS:
        raise FieldError("invalid_symbols", name)
    for s in symbols:
        _symbol(s, name)
    tf_raw = query.get("timeframe")
    timeframe = _timeframe(tf_raw) if tf_raw not in (None, "") else DEFAULT_TIMEFRAME
    return Poll(
        symbols=sorted(set(symbols)), timeframe=timeframe, account_id=_account(query.get("account_id"))
    )


def _object(raw: bytes) -> dict[str, Any]:
    text = raw.strip().lstrip(b"\xef\xbb\xbf").rstrip(b"\x00 \r\n\t")
    if not text:
        raise FieldError("empty_body")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FieldError("invalid_json") from None
    if not isinstance(doc, dict):
        raise FieldError("not_an_object")
    return doc


def _upper(doc: Mapping[str, Any], name: str, allowed: tuple[str, ...], required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise FieldError("missing_field", name)
        return None
    if not isinstance(value, str) or value.strip().upper() not in allowed:
        raise FieldError(f"invalid_{name}", name)
    return value.strip().upper()


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _int(doc: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None) -> int | None:
    value = doc.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FieldError(f"invalid_{name}", name)
    return value


def _number(doc: Mapping[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(f"invalid_{name}", name)
    return float(value)


def parse_ack(raw: bytes) -> Ack | LegacyAck:
    """`POST /signals/ack`: one §11.2 object, or the legacy `{"keys":[...]}`."""
    doc = _object(raw)
    if "keys" in doc and "id" not in doc:
        keys = doc["keys"]
        if not isinstance(keys, list) or len(keys) > MAX_KEYS or not all(isinstance(k, str) for k in keys):
            raise FieldError("invalid_keys", "keys")
        ids = [u for u in (_uuid(k) for k in keys) if u is not None]
        return LegacyAck(ids=list(dict.fromkeys(ids)), unknown=len(keys) - len(ids))
    raw_id = doc.get("id")
    if raw_id is None:
        raise FieldError("missing_field", "id")
    if not isinstance(raw_id, str) or not raw_id or len(raw_id) > 64:
        raise FieldError("invalid_id", "id")
    status = _upper(doc, "status", ACK_STATUSES)
    if doc.get("symbol") is None:
        raise FieldError("missing_field", "symbol")
    symbol = _symbol(doc["symbol"])
    side = _upper(doc, "side", SIDES)
    ts_exec = doc.get("ts_exec")
    if ts_exec is not None and (not isinstance(ts_exec, str) or len(ts_exec) > 40):
        raise FieldError("invalid_ts_exec", "ts_exec")
    assert status is not None and side is not None
    return Ack(
        signal_id=_uuid(raw_id),
        status=status,
        symbol=symbol,
        side=side,
        mt5_ticket=_int(doc, "mt5_ticket", 0, INT64_MAX),
        price=_number(doc, "price"),
        ts_exec=ts_exec,
        account_id=_account(doc.get("account_id")),
        body=doc,
    )


def parse_new_signal(raw: bytes) -> NewSignal:
    """`POST /signals` (admin): a manual signal with the fields an EA receives."""
    doc = _object(raw)
    for name in ("symbol", "side", "confidence"):
        if doc.get(name) is None:
            raise FieldError("missing_field", name)
    symbol = _symbol(doc["symbol"])
    timeframe = _timeframe(doc["timeframe"]) if doc.get("timeframe") is not None else DEFAULT_TIMEFRAME
    side = _upper(doc, "side", SIDES)
    confidence = _number(doc, "confidence")
    if confidence is None or not 0.0 <= confidence <= 1.0:
        raise FieldError("invalid_confidence", "confidence")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict) or len(orjson.dumps(meta)) > MAX_META_BYTES:
        raise FieldError("invalid_meta", "meta")
    signal_id = None
    if doc.get("id") is not None:
        signal_id = _uuid(doc["id"]) if isinstance(doc["id"], str) else None
        if signal_id is None:
            raise FieldError("invalid_id", "id")
    assert side is not None
    return NewSignal(
        symbol=symbol,
        timeframe=timeframe,
        side=side,
        confidence=confidence,
        ttl_sec=_int(doc, "ttl_sec", 1, MAX_TTL_SEC, DEFAULT_TTL_SEC) or DEFAULT_TTL_SEC,
        sl_pips=_int(doc, "sl_pips", 0, MAX_PIPS, 0) or 0,
        tp_pips=_int(doc, "tp_pips", 0, MAX_PIPS, 0) or 0,
        meta=meta,
        account_id=_account(doc.get("account_id")),
        signal_id=signal_id,
    )


def parse_feedback(raw: bytes) -> dict[str, Any]:
    """`POST /orders/feedback`: any JSON object, kept as sent."""
    return _object(raw)
