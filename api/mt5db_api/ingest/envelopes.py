"""Envelope detection: which items a decoded body holds, and the per-body item limit.

docs/ea-contract.md §3.2 and §12: an object with `items` (or `ticks`) is a batch, any other object
is one item, an array is a batch. Both EAs halve a batch and resend it on 413, so too many items
answer 413 rather than 400.
"""

from __future__ import annotations

from typing import Any

from mt5db_api.ingest.framing import BodyError


def candle_items(doc: Any) -> list[Any]:
    """Envelope detection for candles: {"items":[...]} / bare array -> batch; other object -> one."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                raise BodyError("items_not_an_array")
            return items
        return [doc]
    raise BodyError("wrong_top_level_type")


def tick_items(doc: Any) -> list[Any]:
    """Envelope detection for ticks: {"ticks":[...]} / bare array -> batch; other object -> one."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "ticks" in doc:
            ticks = doc["ticks"]
            if not isinstance(ticks, list):
                raise BodyError("ticks_not_an_array")
            return ticks
        return [doc]
    raise BodyError("wrong_top_level_type")


def check_item_count(count: int, max_items: int) -> None:
    """413 too_many_items above the limit (the EAs split on 413 and resend both halves)."""
    if count > max_items:
        raise BodyError("too_many_items", 413, limit_items=max_items)
