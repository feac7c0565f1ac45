"""Factories and comparisons shared by the api unit tests (candles as EAs send them)."""

from __future__ import annotations

import random
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import orjson

from mt5db_api.ingest.batch import CandleBatch
from mt5db_api.ingest.candles import validate_candles
from mt5db_api.ingest.envelopes import candle_items
from mt5db_api.ingest.framing import decode_body
from mt5db_core.market.candles import VOLUME_MAX

NOW = time.time()
GOOD = {"ts": "2025-03-12T14:07:00Z", "symbol": "AUDUSD", "timeframe": "M1", "open": 0.63012,
        "high": 0.63025, "low": 0.63004, "close": 0.63019, "volume": 41}  # fmt: skip
FLOAT_COLUMNS = ("open", "high", "low", "close", "spread")


def general(raw: bytes) -> CandleBatch:
    return validate_candles(candle_items(decode_body(raw)), NOW)


def assert_same(got: CandleBatch, expected: CandleBatch) -> None:
    for f in fields(CandleBatch):
        if f.name == "index":  # bookkeeping of add(), not an outcome
            continue
        a, b = getattr(got, f.name), getattr(expected, f.name)
        if f.name in FLOAT_COLUMNS:  # repr: bit-exact, and 1 (int) is not 1.0
            a, b = [repr(x) for x in a], [repr(x) for x in b]
        elif f.name != "errors" and isinstance(a, list):  # the same values of the same types
            a, b = [(type(x), x) for x in a], [(type(x), x) for x in b]
        assert a == b, f.name


def candle(rng: random.Random, i: int) -> dict[str, object]:
    """A valid candle as EAs send it, with the variety they send: several symbols and timeframes,
    numeric codes, calendar timeframes, extras, unknown fields, int prices, other ts forms."""
    base = datetime(2025, 3, 12, tzinfo=UTC) - timedelta(minutes=rng.randrange(0, 10**6))
    ts: object = base.strftime("%Y-%m-%dT%H:%M:%SZ")
    if rng.random() < 0.05:
        ts = rng.choice(
            [base.isoformat(), base.strftime("%Y-%m-%dT%H:%M:%S"), base.strftime("%Y-%m-%d %H:%M:%S+00:00")]
        )
    low = rng.uniform(0.5, 200)
    o, c = low + rng.random(), low + rng.random()
    doc: dict[str, object] = {
        "ts": ts, "symbol": rng.choice(["EURUSD", "US500.cash", "XAUUSD", "BTC#", "A"]),
        "timeframe": rng.choice(["M1", "M5", "H1", "16385", "H4", "D1", "W1", "MN1", "m15"]),
        "open": o, "high": max(o, c) + rng.random(), "low": low, "close": c, "volume": rng.randrange(0, 10**6),
    }  # fmt: skip
    if rng.random() < 0.3:
        doc["spread"] = rng.choice([0.00017, 0, 2, -0.0])
    if rng.random() < 0.1:
        doc["real_volume"] = rng.randrange(0, 2**63)
    if rng.random() < 0.1:
        doc["meta"] = {"ea": "PDC", "ver": "1.65", "n": [i, None, {"x": "é"}]}
    if rng.random() < 0.05:
        doc["open"] = doc["high"] = doc["close"] = int(low) + 1
        doc["low"] = int(low) + 1
    if rng.random() < 0.05:
        doc["volume"] = 0 if rng.random() < 0.5 else VOLUME_MAX  # the largest accepted
    return doc


def body(docs: list[dict[str, object]], rng: random.Random) -> bytes:
    raw = orjson.dumps({"items": docs} if rng.random() < 0.7 else docs)
    if rng.random() < 0.1:
        raw = b"\xef\xbb\xbf" + raw + b"\x00\r\n"
    return raw
