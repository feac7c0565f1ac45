"""Framing, timestamps, per-item validation and in-batch merging (no database)."""

from __future__ import annotations

import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5db_api.parsing import (
    BodyError,
    ItemError,
    _slow_candle,
    candle_items,
    decode_body,
    parse_ts,
    tick_items,
    validate_candles,
)

NOW = time.time()
GOOD = {"ts": "2025-03-12T14:07:00Z", "symbol": "AUDUSD", "timeframe": "M1", "open": 0.63012,
        "high": 0.63025, "low": 0.63004, "close": 0.63019, "volume": 41}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'\xef\xbb\xbf{"a":1}', {"a": 1}),
        (b'{"a":1}\x00\x00\n ', {"a": 1}),
        (b"[1,2]\r\n", [1, 2]),
    ],
)
def test_lenient_framing(raw, expected):
    assert decode_body(raw) == expected


def test_nan_and_infinity_tokens_parse_to_non_finite_floats():
    doc = decode_body(b'{"a":NaN,"b":Infinity,"c":-Infinity}')
    assert math.isnan(doc["a"]) and doc["b"] == math.inf and doc["c"] == -math.inf
    doc = decode_body(b'[{"a":nan,"b":inf,"c":-inf,"d":"nan"}]')
    assert math.isnan(doc[0]["a"]) and doc[0]["b"] == math.inf and doc[0]["c"] == -math.inf
    assert doc[0]["d"] == "nan"


@pytest.mark.parametrize(
    ("raw", "reason"), [(b"", "empty_body"), (b"{", "invalid_json"), (b"\xff", "invalid_json")]
)
def test_unusable_bodies(raw, reason):
    with pytest.raises(BodyError) as info:
        decode_body(raw)
    assert info.value.reason == reason


def test_envelopes():
    assert candle_items({"items": [1]}) == [1]
    assert candle_items([1, 2]) == [1, 2]
    assert candle_items({"ts": "x"}) == [{"ts": "x"}]
    assert tick_items({"ticks": [1]}) == [1]
    for bad in ("s", 1, None):
        with pytest.raises(BodyError):
            candle_items(bad)


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2025-03-12T14:00:00Z", 1741788000),
        ("2025-03-12T14:00:00", 1741788000),  # zone-less = Z, never the DB session zone
        ("2025-03-12T16:00:00+02:00", 1741788000),
        ("2025-03-12T14:00:00.750Z", 1741788000.75),
        (1741788000000, 1741788000),
    ],
)
def test_parse_ts_forms(value, epoch):
    assert parse_ts(value, NOW) == epoch


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2025.03.12 14:00", "invalid_ts"),
        ("12/03/2025", "invalid_ts"),
        (True, "invalid_ts"),
        (None, "invalid_ts"),
        ("1989-12-31T23:59:59Z", "ts_out_of_range"),
        (int(NOW * 1000) + 2 * 86400_000, "ts_out_of_range"),
    ],
)
def test_parse_ts_rejects(value, reason):
    with pytest.raises(ItemError) as info:
        parse_ts(value, NOW)
    assert info.value.reason == reason


def test_future_within_a_day_is_accepted():
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 3 * 3600))
    assert parse_ts(ahead, NOW) > NOW


def test_merge_within_batch_follows_the_monotone_rule():
    a = dict(GOOD, volume=10)
    b = dict(GOOD, ts="2025-03-12T14:07:30Z", high=0.631, low=0.6299, close=0.6305, volume=30)
    c = dict(GOOD, volume=5, open=0.6302, close=0.6302)  # older, smaller snapshot: only high/low can merge
    batch = validate_candles([a, b, c, b], NOW)
    assert len(batch) == 1
    assert (batch.open[0], batch.high[0], batch.low[0], batch.close[0], batch.volume[0]) == (
        0.63012, 0.631, 0.6299, 0.6305, 30,
    )  # fmt: skip
    assert (batch.merged_updates, batch.merged_duplicates) == (1, 2)


def test_w1_and_mn1_buckets():
    items = [
        dict(GOOD, timeframe="W1", ts="2025-03-12T14:07:00Z"),
        dict(GOOD, timeframe="49153", ts="2025-03-12T14:07:00Z"),
    ]
    batch = validate_candles(items, NOW)
    assert batch.ts == [1741478400, 1740787200]  # Sunday 2025-03-09, 2025-03-01
    assert batch.timeframe == ["W1", "MN1"]


candle_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**20), st.integers(-(10**400), 10**400), st.text(max_size=5), st.none(),
    st.booleans(), st.just(0.5), st.just(1.5),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "ts": st.one_of(
                st.just("2025-03-12T14:07:00Z"), st.text(max_size=25), st.integers(), st.floats(),
                st.integers(-(10**400), 10**400), st.lists(st.integers(), max_size=2),
            ),
            "symbol": st.one_of(st.just("EURUSD"), st.text(max_size=40)),
            "timeframe": st.one_of(st.sampled_from(["M1", "H1", "16386", "W1", "MN1", "M7", "0"]), st.integers()),
            "open": candle_values, "high": candle_values, "low": candle_values, "close": candle_values,
            "volume": candle_values, "spread": candle_values, "real_volume": candle_values,
        },
    )
)  # fmt: skip
def test_fast_path_agrees_with_the_authoritative_slow_path(item):
    batch = validate_candles([item], NOW)
    try:
        expected = _slow_candle(item, NOW)
    except ItemError as err:
        assert len(batch) == 0 and batch.errors[0]["reason"] == err.reason
        return
    assert not batch.errors
    got = (batch.ts[0], batch.symbol[0], batch.timeframe[0], batch.open[0], batch.high[0], batch.low[0],
           batch.close[0], batch.volume[0], batch.spread[0], batch.real_volume[0])  # fmt: skip
    assert got == expected
    assert all(math.isfinite(x) and x > 0 for x in got[3:7])
    assert got[5] <= min(got[3], got[6]) and max(got[3], got[6]) <= got[4]


def test_randomised_batches_never_store_invalid_values():
    rng = random.Random(3)
    items = []
    for _ in range(2000):
        doc = dict(GOOD)
        field = rng.choice(["open", "high", "low", "close", "volume", "ts", "symbol", "timeframe"])
        doc[field] = rng.choice([None, "1", -1, 0, float("nan"), float("inf"), 1e308, True, [], {}, 2.0])
        items.append(doc)
    batch = validate_candles(items, NOW)
    for j in range(len(batch)):
        o, h, lo, c = batch.open[j], batch.high[j], batch.low[j], batch.close[j]
        assert all(math.isfinite(x) and x > 0 for x in (o, h, lo, c)) and lo <= min(o, c) and max(o, c) <= h
        assert batch.volume[j] >= 0
