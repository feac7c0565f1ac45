"""Per-field checks of one decoded item (candle or tick) and the stable reason codes they give.

The bounds are mt5db_core.market.candles' (symbol pattern, ts range, count range), shared with the
OpenAPI model (schemas.CandleIn) and the column-wise way (columnar.py); this module applies them to
decoded JSON values and names each failure precisely (docs/ea-contract.md §12, "Per-item
validation"). A failed check raises ItemError: that item is rejected, the rest of the body is kept.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from mt5db_core.market.candles import EARLIEST_TS, INT64_MAX, MAX_FUTURE_S, symbol_ok

# Stable, bounded reason codes: they are API (per-item errors) and Prometheus label values.
REASONS = (
    "not_an_object", "missing_field", "invalid_type", "not_finite", "not_positive", "negative_value",
    "invalid_symbol", "invalid_timeframe", "invalid_ts", "ts_out_of_range", "high_below_low",
    "high_below_open_close", "low_above_open_close", "negative_volume", "invalid_volume", "ask_below_bid",
    "out_of_range", "invalid_meta",
)  # fmt: skip


class ItemError(Exception):
    """One item is invalid; carries the stable reason code and the field."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def parse_ts(value: Any, now: float) -> float:
    """Epoch seconds of an ISO-8601 string (Z, offset, fraction; zone-less = Z) or epoch ms integer.

    Offsets are honoured (the instant is moved onto the `Z` timeline) so one instant always lands in
    one bucket; the `Z` label itself is taken as written (broker clock, never converted).
    """
    if isinstance(value, str):
        if len(value) < 10 or value[4] != "-":
            raise ItemError("invalid_ts", "ts")  # rejects 2025.03.12 14:00 and friends early
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ItemError("invalid_ts", "ts") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        epoch = parsed.timestamp()
    elif type(value) is int or (type(value) is float and value.is_integer()):
        if not -(2**62) < value < 2**62:  # also keeps huge JSON integers away from float()
            raise ItemError("ts_out_of_range", "ts")
        epoch = value / 1000.0
    else:
        raise ItemError("invalid_ts", "ts")
    if not EARLIEST_TS <= epoch <= now + MAX_FUTURE_S:
        raise ItemError("ts_out_of_range", "ts")
    return epoch


def check_price(item: dict[str, Any], name: str) -> float:
    """A required price: a JSON number (not a string, null or bool), finite, > 0; as a float."""
    value = item.get(name)
    t = type(value)
    if t is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise ItemError("not_finite", name)
    elif t is int:
        if not -(2**1000) < value < 2**1000:  # type: ignore[operator]
            raise ItemError("not_finite", name)  # float() would overflow
        value = float(value)  # type: ignore[arg-type]
    elif value is None and name not in item:
        raise ItemError("missing_field", name)
    else:
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ItemError("not_finite", name)
        raise ItemError("invalid_type", name)
    if value <= 0:  # type: ignore[operator]
        raise ItemError("not_positive", name)
    return value  # type: ignore[return-value]


def check_number(item: dict[str, Any], name: str, minimum: float = 0.0) -> float | None:
    """An optional number (spread, last): absent or null -> None, else finite and >= minimum."""
    value = item.get(name)
    if value is None:
        return None
    t = type(value)
    if t is not float and t is not int:
        raise ItemError("invalid_type", name)
    if t is int and not -(2**1000) < value < 2**1000:
        raise ItemError("not_finite", name)
    value = float(value)
    if not math.isfinite(value):
        raise ItemError("not_finite", name)
    if value < minimum:
        raise ItemError("negative_value", name)
    return value


def check_count(
    item: dict[str, Any], name: str, reason_negative: str = "negative_volume", maximum: int = INT64_MAX
) -> int:
    """A count (volume, flags, real_volume): absent -> 0, an integer (or integral float) in
    0..maximum (INT64_MAX: counts are stored as bigint; volume: VOLUME_MAX, reads sum it)."""
    value = item.get(name)
    if value is None:
        return 0
    t = type(value)
    if t is int:
        pass
    elif t is float and math.isfinite(value) and value.is_integer():
        value = int(value)
    else:
        raise ItemError("invalid_volume" if name == "volume" else "invalid_type", name)
    if value < 0:
        raise ItemError(reason_negative, name)
    if value > INT64_MAX:
        raise ItemError("invalid_volume" if name == "volume" else "invalid_type", name)
    if value > maximum:
        raise ItemError("invalid_volume" if name == "volume" else "out_of_range", name)
    return value


def check_symbol(item: dict[str, Any]) -> str:
    """The symbol exactly as sent (case and broker suffix kept), if it matches the symbol rule."""
    value = item.get("symbol")
    if value is None:
        raise ItemError("missing_field", "symbol")
    if not isinstance(value, str) or not symbol_ok(value):
        raise ItemError("invalid_symbol", "symbol")
    return value
