"""MT5 timeframes (`ENUM_TIMEFRAMES`, ea-contract §6): names, numeric codes, bucket flooring.

Buckets are floored in the clock the timestamp is labelled with (the broker clock with a literal
`Z`); nothing is converted. Every intraday width divides 24 h, so epoch flooring is right for
M1..D1. W1 starts on Sunday 00:00 (MT5), not on the epoch's Thursday nor ISO Monday; MN1 is the
calendar month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
# 1970-01-04 00:00 was a Sunday: the origin of MT5 weekly bars.
SUNDAY_ORIGIN = 3 * DAY


@dataclass(frozen=True)
class Timeframe:
    name: str
    code: int
    seconds: int  # nominal width; MN1 uses 31 days only for ordering and gap heuristics

    @property
    def fixed(self) -> bool:
        """True when the bucket is a fixed number of seconds from the epoch (M1..D1)."""
        return self.name not in ("W1", "MN1")


_TABLE = [
    ("M1", 1, MINUTE), ("M2", 2, 2 * MINUTE), ("M3", 3, 3 * MINUTE), ("M4", 4, 4 * MINUTE),
    ("M5", 5, 5 * MINUTE), ("M6", 6, 6 * MINUTE), ("M10", 10, 10 * MINUTE), ("M12", 12, 12 * MINUTE),
    ("M15", 15, 15 * MINUTE), ("M20", 20, 20 * MINUTE), ("M30", 30, 30 * MINUTE),
    ("H1", 16385, HOUR), ("H2", 16386, 2 * HOUR), ("H3", 16387, 3 * HOUR), ("H4", 16388, 4 * HOUR),
    ("H6", 16390, 6 * HOUR), ("H8", 16392, 8 * HOUR), ("H12", 16396, 12 * HOUR),
    ("D1", 16408, DAY), ("W1", 32769, WEEK), ("MN1", 49153, 31 * DAY),
]  # fmt: skip

TIMEFRAMES: dict[str, Timeframe] = {name: Timeframe(name, code, sec) for name, code, sec in _TABLE}
ORDERED: list[Timeframe] = sorted(TIMEFRAMES.values(), key=lambda t: t.seconds)

# Every accepted spelling -> canonical name: "M1", "1", "H1", "16385", ...
_ALIASES: dict[str, str] = {}
for _tf in TIMEFRAMES.values():
    _ALIASES[_tf.name] = _tf.name
    _ALIASES[str(_tf.code)] = _tf.name


def canonical(value: object) -> str | None:
    """The canonical name of a timeframe given as a name or numeric code (string or int), else None."""
    if isinstance(value, str):
        return _ALIASES.get(value) or _ALIASES.get(value.strip().upper())
    if isinstance(value, int) and not isinstance(value, bool):
        return _ALIASES.get(str(value))
    return None


def floor_epoch(ts: int, timeframe: str) -> int:
    """Start of the bucket (epoch seconds, labelled clock) that contains ts."""
    if timeframe == "W1":
        return ts - (ts - SUNDAY_ORIGIN) % WEEK
    if timeframe == "MN1":
        day = datetime.fromtimestamp(ts, UTC)
        return int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp())
    width = TIMEFRAMES[timeframe].seconds
    return ts - ts % width


def can_build(target: str, source: str) -> bool:
    """True when candles of `target` are exact unions of `source` buckets (resampling is exact)."""
    if target == source:
        return True
    tgt, src = TIMEFRAMES[target], TIMEFRAMES[source]
    if not src.fixed:
        return False  # nothing finer than a month is built from W1, and W1 does not nest in MN1
    if not tgt.fixed:
        return DAY % src.seconds == 0  # every intraday width divides a day; days nest in weeks/months
    return tgt.seconds > src.seconds and tgt.seconds % src.seconds == 0
