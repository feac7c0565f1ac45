"""The BackupPolicy `Next` column's cron evaluation."""

from __future__ import annotations

import datetime as dt

import pytest

from mt5db_operator.cron import next_fire

T = dt.datetime(2026, 12, 1, 5, 30, 20, tzinfo=dt.UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 3 * * *", dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)),
        ("*/15 * * * *", dt.datetime(2026, 12, 1, 5, 45, tzinfo=dt.UTC)),
        ("15 * * * 1-5", dt.datetime(2026, 12, 1, 6, 15, tzinfo=dt.UTC)),
        ("0 0 * * sat", dt.datetime(2026, 12, 5, 0, 0, tzinfo=dt.UTC)),
        ("0 0 1 jan *", dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)),
        ("0 12 13 * 5", dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)),  # dom OR dow
        ("@daily", dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC)),
        ("0 0 30 2 *", None),
    ],
)
def test_next_fire(expr: str, expected: dt.datetime | None) -> None:
    assert next_fire(expr, T) == expected


@pytest.mark.parametrize("expr", ["0 3 * *", "61 * * * *", "0 0 * * * *", "*/0 * * * *"])
def test_invalid_expressions_raise(expr: str) -> None:
    with pytest.raises(ValueError):
        next_fire(expr, T)
