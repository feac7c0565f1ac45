"""The in-batch merge of candles sharing a key (the SQL's monotone rule)."""

from __future__ import annotations

from mt5db_api.ingest.candles import validate_candles

from ..helpers import GOOD, NOW


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
