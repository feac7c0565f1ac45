"""The column-wise way for plain batches gives exactly what the general, item-by-item way gives."""

from __future__ import annotations

import json
import random
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5db_api.parsing import (
    PLAIN_MIN_BYTES,
    BodyError,
    CandleBatch,
    candle_items,
    decode_body,
    iso_z_epochs,
    parse_candles,
    plain_batch,
    validate_candles,
)

NOW = time.time()
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
        doc["volume"] = 0 if rng.random() < 0.5 else 2**63 - 1
    return doc


def body(docs: list[dict[str, object]], rng: random.Random) -> bytes:
    raw = orjson.dumps({"items": docs} if rng.random() < 0.7 else docs)
    if rng.random() < 0.1:
        raw = b"\xef\xbb\xbf" + raw + b"\x00\r\n"
    return raw


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 60))
def test_valid_batches_take_the_plain_way_and_agree(seed, n):
    rng = random.Random(seed)
    docs = [candle(rng, i) for i in range(n)]
    if n > 2 and rng.random() < 0.3:  # the same bar twice: merged in order, like the general way
        docs.append(dict(docs[rng.randrange(n)], volume=rng.randrange(0, 10**6)))
    raw = body(docs, rng)
    got = plain_batch(raw, NOW)
    assert got is not None
    assert_same(got, general(raw))


# Values that break an item, or merely make it unusual for the plain way.
ODD = [
    None, "1.1", "NaN", float("nan"), float("inf"), -1, 0, 0.0, -0.0, True, [], {}, 10**30, 2**63, 1.5, "", "M7",
    "EUR USD", "x" * 33, "2025.03.12 14:00", "2025-02-29T00:00:00Z", "2025-03-12T24:00:00Z",
    "1989-12-31T23:59:59Z", "2099-01-01T00:00:00Z",
]  # fmt: skip

FIELDS = ("open", "high", "low", "close", "volume", "ts", "symbol", "timeframe", "spread", "real_volume")


@pytest.mark.parametrize("field", FIELDS)
def test_any_other_batch_is_left_to_the_general_way_or_agrees(field):
    """Every odd value (and a missing field) in every field, at a random place in a batch."""
    rng = random.Random(field)
    for value in [*ODD, "missing"]:
        for _ in range(3):
            docs = [candle(rng, i) for i in range(rng.randint(1, 30))]
            victim = rng.choice(docs)
            if value == "missing":
                victim.pop(field, None)
            else:
                victim[field] = value
            raw = json.dumps({"items": docs}).encode()  # the standard library writes NaN tokens
            got = plain_batch(raw, NOW)
            if got is not None:  # then it is exactly the general outcome: no invalid item got in
                assert_same(got, general(raw))


def test_broken_empty_or_single_candle_bodies_are_never_plain():
    good = orjson.dumps({"items": [candle(random.Random(1), 0)] * 20})
    for raw in (
        good[:-3],
        good + b"x",
        good.replace(b'"ts"', b'"t\xffs"', 1),
        good.replace(b"{", b"[", 1),
        b"[]",
        b"{}",
    ):
        assert plain_batch(raw, NOW) is None


def test_invalid_utf8_in_an_unknown_field_is_invalid_json_on_both_ways():
    doc = candle(random.Random(2), 0) | {"meta": "MARK"}
    raw = orjson.dumps({"items": [doc] * 40}).replace(b"MARK", b"\xff\xfe")
    assert len(raw) >= PLAIN_MIN_BYTES and plain_batch(raw, NOW) is None
    with pytest.raises(BodyError) as info:
        parse_candles(raw, NOW, 1000)
    assert info.value.reason == "invalid_json"


def test_iso_z_epochs_match_the_standard_library_over_the_whole_calendar():
    rng = random.Random(5)
    moments = [
        datetime(1, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 315537897599))
        for _ in range(20000)
    ]
    moments += [datetime(y, 2, 29, 23, 59, 59, tzinfo=UTC) for y in (1600, 2000, 2004, 2024, 2400)]
    stamps = [m.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0") for m in moments]
    got = iso_z_epochs(stamps)
    assert got is not None
    assert got.tolist() == [int(datetime.fromisoformat(s).timestamp()) for s in stamps]


@pytest.mark.parametrize(
    "stamp",
    ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z",
     "2025-00-10T00:00:00Z", "2025-03-00T00:00:00Z", "2025-03-12T24:00:00Z", "2025-03-12T23:60:00Z",
     "2025-03-12T23:59:60Z", "0000-01-01T00:00:00Z", "2025-03-12 14:00:00Z", "2025-03-12T14:00:00z",
     "2025-03-12T14:00:00+", "2025-03-1aT14:00:00Z", "2025-03-12T14:00:0٣Z", "2025-03-12T14:00:00"],
)  # fmt: skip
def test_iso_z_epochs_refuse_anything_else(stamp):
    assert iso_z_epochs(["2025-03-12T14:00:00Z", stamp]) is None


def test_big_bodies_use_the_plain_way_and_small_ones_the_general_way():
    rng = random.Random(9)
    small = orjson.dumps({"items": [candle(rng, 0)]})
    big = orjson.dumps({"items": [candle(rng, i) | {"ts": f"2025-03-12T{i // 60:02d}:{i % 60:02d}:00Z",
                                                    "timeframe": "M1"} for i in range(200)]})  # fmt: skip
    assert len(small) < PLAIN_MIN_BYTES <= len(big)
    assert_same(parse_candles(big, NOW, 1000), general(big))
    assert parse_candles(big, NOW, 1000).index == {}  # built column-wise
    assert parse_candles(small, NOW, 1000).index != {}  # built by add()
    with pytest.raises(BodyError) as info:
        parse_candles(big, NOW, 199)
    assert (info.value.status, info.value.reason, info.value.extra) == (
        413,
        "too_many_items",
        {"limit_items": 199},
    )


def test_a_day_of_m1_bars_in_one_batch_is_stored_as_sent():
    start = datetime(2025, 3, 12, tzinfo=UTC)
    docs = [{"ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "EURUSD",
             "timeframe": "M1", "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "volume": i} for i in range(1440)]  # fmt: skip
    got = plain_batch(orjson.dumps({"items": docs}), NOW)
    assert got is not None and len(got) == 1440 and not got.errors
    assert np.array_equal(np.diff(got.ts), np.full(1439, 60)) and got.ts[0] == int(start.timestamp())
