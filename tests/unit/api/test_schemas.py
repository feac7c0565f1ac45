"""The three forms of the candle contract agree: the OpenAPI model (schemas.CandleIn), the per-item
checker (ingest/candles.py) and the column-wise way (ingest/columnar.py), on the rules of
mt5db_core.market.candles (symbol pattern, count bound, ts bounds)."""

from __future__ import annotations

import time

import orjson
import pytest
from pydantic import ValidationError

from mt5db_api.ingest.candles import check_candle
from mt5db_api.ingest.columnar import plain_batch
from mt5db_api.ingest.fields import ItemError
from mt5db_api.schemas import CandleIn
from mt5db_core.market.candles import (
    EARLIEST_TS,
    INT64_MAX,
    MAX_FUTURE_S,
    SYMBOL_MAX_LEN,
    SYMBOL_PATTERN,
    VOLUME_MAX,
)  # fmt: skip

from .helpers import GOOD, NOW

SYMBOLS = ["EURUSD", "AUDUSD.m", "#US30", "BTC+", "a-b_c", "A", "x" * SYMBOL_MAX_LEN, "x" * (SYMBOL_MAX_LEN + 1),
           "", "EUR USD", "EURUSD\n", "EUR/USD", "€URUSD", "eurusd"]  # fmt: skip
COUNTS = [0, 1, 2**31, VOLUME_MAX, VOLUME_MAX + 1, INT64_MAX, INT64_MAX + 1, -1]


def by_model(doc: dict[str, object]) -> bool:
    try:
        CandleIn.model_validate_json(orjson.dumps(doc))
    except ValidationError:
        return False
    return True


def by_checker(doc: dict[str, object]) -> bool:
    try:
        check_candle(doc, NOW)
    except ItemError:
        return False
    return True


def by_columns(doc: dict[str, object]) -> bool:
    return plain_batch(orjson.dumps({"items": [doc]}), NOW) is not None


def stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_the_model_documents_the_shared_rules():
    properties = CandleIn.model_json_schema()["properties"]
    assert properties["symbol"]["pattern"] == SYMBOL_PATTERN
    assert properties["volume"]["maximum"] == VOLUME_MAX
    assert properties["volume"]["minimum"] == 0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_symbol_rule_agrees(symbol):
    doc = dict(GOOD, symbol=symbol)
    assert by_model(doc) == by_checker(doc) == by_columns(doc)


@pytest.mark.parametrize("field", ["volume", "real_volume"])
@pytest.mark.parametrize("value", COUNTS)
def test_count_bound_agrees(field, value):
    doc = dict(GOOD, **{field: value})
    expected = 0 <= value <= (VOLUME_MAX if field == "volume" else INT64_MAX)
    assert by_model(doc) == by_checker(doc) == by_columns(doc) == expected


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (EARLIEST_TS - 1, False),
        (EARLIEST_TS, True),
        (int(NOW) + MAX_FUTURE_S, True),
        (int(NOW) + MAX_FUTURE_S + 1, False),
    ],
)
def test_ts_bounds_agree(epoch, expected):
    """The model cannot state a bound relative to the server's clock; the two validators must agree."""
    doc = dict(GOOD, ts=stamp(epoch))
    assert by_checker(doc) == by_columns(doc) == expected
