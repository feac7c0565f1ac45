"""Envelope detection: which items a decoded body holds."""

from __future__ import annotations

import pytest

from mt5db_api.ingest.envelopes import candle_items, tick_items
from mt5db_api.ingest.framing import BodyError


def test_envelopes():
    assert candle_items({"items": [1]}) == [1]
    assert candle_items([1, 2]) == [1, 2]
    assert candle_items({"ts": "x"}) == [{"ts": "x"}]
    assert tick_items({"ticks": [1]}) == [1]
    for bad in ("s", 1, None):
        with pytest.raises(BodyError):
            candle_items(bad)
