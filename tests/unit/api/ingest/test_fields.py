"""Per-field checks: timestamps (forms, bounds)."""

from __future__ import annotations

import time

import pytest

from mt5db_api.ingest.fields import ItemError, parse_ts

from ..helpers import NOW


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
