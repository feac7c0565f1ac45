"""Per-field checks: timestamps (forms, bounds) and the closed set of reason codes."""

from __future__ import annotations

import random
import time

import pytest

from mt5db_api.ingest.candles import validate_candles
from mt5db_api.ingest.fields import REASONS, ItemError, parse_ts
from mt5db_api.ingest.ticks import validate_ticks

from ..helpers import GOOD, NOW


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


def test_every_reason_given_is_one_of_the_stable_codes():
    """Reasons are API and Prometheus label values: the set is closed (REASONS)."""
    rng = random.Random(11)
    odd = [
        None,
        "1",
        "nan",
        -1,
        0,
        2**63,
        2**31,
        {"ea": "\x00"},
        float("nan"),
        float("inf"),
        True,
        [],
        {},
        "2025.03.12 14:00",
        "M7",
        "x" * 33,
    ]
    tick = {"ts": GOOD["ts"], "symbol": "EURJPY", "bid": 160.887, "ask": 160.905, "flags": 6, "digits": 3}
    candles, ticks = [], []
    for _ in range(3000):
        candles.append(dict(GOOD, **{rng.choice([*GOOD, "spread", "real_volume"]): rng.choice(odd)}))
        ticks.append(dict(tick, **{rng.choice([*tick, "last", "volume", "spread", "meta"]): rng.choice(odd)}))
    candles += [1, "x", dict(GOOD, high=0.6, low=0.7), dict(GOOD, high=0.63013), dict(GOOD, low=0.63018)]
    ticks += [dict(tick, ask=160.0)]
    given = {e["reason"] for e in validate_candles(candles, NOW).errors + validate_ticks(ticks, NOW).errors}
    assert given == set(REASONS)  # nothing else is given, and every code is reachable
