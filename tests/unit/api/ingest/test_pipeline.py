"""The entry points: which way a body takes, and the item limit."""

from __future__ import annotations

import random

import orjson
import pytest

from mt5db_api.ingest.columnar import plain_batch
from mt5db_api.ingest.framing import BodyError
from mt5db_api.ingest.pipeline import PLAIN_MIN_BYTES, parse_candles

from ..helpers import NOW, assert_same, candle, general


def test_invalid_utf8_in_an_unknown_field_is_invalid_json_on_both_ways():
    doc = candle(random.Random(2), 0) | {"meta": "MARK"}
    raw = orjson.dumps({"items": [doc] * 40}).replace(b"MARK", b"\xff\xfe")
    assert len(raw) >= PLAIN_MIN_BYTES and plain_batch(raw, NOW) is None
    with pytest.raises(BodyError) as info:
        parse_candles(raw, NOW, 1000)
    assert info.value.reason == "invalid_json"


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
