"""The column-wise way for plain batches gives exactly what the general, item-by-item way gives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5db_api.ingest.columnar import iso_z_epochs, plain_batch

from ..helpers import NOW, assert_same, body, candle, general


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


def test_a_day_of_m1_bars_in_one_batch_is_stored_as_sent():
    start = datetime(2025, 3, 12, tzinfo=UTC)
    docs = [{"ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "EURUSD",
             "timeframe": "M1", "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "volume": i} for i in range(1440)]  # fmt: skip
    got = plain_batch(orjson.dumps({"items": docs}), NOW)
    assert got is not None and len(got) == 1440 and not got.errors
    assert np.array_equal(np.diff(got.ts), np.full(1439, 60)) and got.ts[0] == int(start.timestamp())
