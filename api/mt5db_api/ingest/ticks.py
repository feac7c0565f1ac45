"""Ticks item by item: every valid tick kept, in arrival order (no dedupe on symbol + second).

docs/ea-contract.md §4: two ticks in the same second are both real, and a resent flush is kept too
(raw storage keeps arrival order; the tick -> M1 derivation in db/ticks.py is idempotent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from mt5db_api.ingest.fields import ItemError, check_count, check_number, check_price, check_symbol, parse_ts
from mt5db_core.market.candles import FLAGS_MAX


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


def meta_json(meta: dict[str, Any]) -> str:
    """`meta` as the JSON text jsonb stores, or ItemError invalid_meta for what it cannot hold:
    nesting over 254 levels or an integer over 64 bits (the encoder refuses both), a NUL character
    anywhere (jsonb refuses it; the encoder writes it as \\u0000, an escaped backslash as \\\\)."""
    try:
        text = orjson.dumps(meta)
    except orjson.JSONEncodeError:
        raise ItemError("invalid_meta", "meta") from None
    if b"\\u0000" in text and _NUL_ESCAPE.search(text):
        raise ItemError("invalid_meta", "meta")
    return text.decode()


# \u0000 preceded by an even number of backslashes: an escaped NUL, not a backslash and "u0000"
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


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
            symbol = check_symbol(item)
            bid = check_price(item, "bid")
            ask = check_price(item, "ask")
            if ask < bid:
                raise ItemError("ask_below_bid")
            last = check_number(item, "last") or 0.0
            vol = check_count(item, "volume")
            flags = check_count(item, "flags", "negative_value", FLAGS_MAX)
            digits = item.get("digits")
            if digits is not None and (type(digits) is not int or not 0 <= digits <= 12):
                raise ItemError("invalid_type", "digits")
            spread = check_number(item, "spread")
            meta = item.get("meta")
            if meta is not None and type(meta) is not dict:
                raise ItemError("invalid_type", "meta")
            meta_text = None if meta is None else meta_json(meta)
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
        batch.meta.append(meta_text)
    return batch
