"""The two entry points of the ingest package: a request body in, a validated batch out.

Candles take one of two ways, with one outcome: the plain way (columnar.py) for large bodies of
valid, uniform candles, and the general way (framing -> envelopes -> candles.py) for every other
body, which gives per-item reasons. Ticks always take the general way.
"""

from __future__ import annotations

from mt5db_api.ingest.batch import CandleBatch
from mt5db_api.ingest.candles import validate_candles
from mt5db_api.ingest.columnar import plain_batch
from mt5db_api.ingest.envelopes import candle_items, check_item_count, tick_items
from mt5db_api.ingest.framing import decode_body
from mt5db_api.ingest.ticks import TickBatch, validate_ticks

# Below this size (a dozen candles) a body's fixed costs dominate: the general way is as fast.
PLAIN_MIN_BYTES = 2048


def parse_candles(raw: bytes, now: float, max_items: int) -> CandleBatch:
    """A body's candles, validated: column-wise when it is a plain batch, item by item otherwise.
    Raises BodyError when the body as a whole cannot be used."""
    batch = plain_batch(raw, now) if len(raw) >= PLAIN_MIN_BYTES else None
    if batch is None:
        items = candle_items(decode_body(raw))
        check_item_count(len(items), max_items)
        return validate_candles(items, now)
    check_item_count(batch.received, max_items)
    return batch


def parse_ticks(raw: bytes, now: float, max_items: int) -> TickBatch:
    """A body's ticks, validated item by item. Raises BodyError when the body cannot be used."""
    items = tick_items(decode_body(raw))
    check_item_count(len(items), max_items)
    return validate_ticks(items, now)
