"""Candles item by item: the inline fast check agrees with the authoritative checker."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mt5db_api.ingest.candles import check_candle as _slow_candle
from mt5db_api.ingest.candles import validate_candles
from mt5db_api.ingest.fields import ItemError

from ..helpers import GOOD, NOW


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
