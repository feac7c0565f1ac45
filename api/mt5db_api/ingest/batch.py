"""CandleBatch: validated candles as columns, one row per key, merged with the monotone rule.

Both ways of parsing (candles.py item by item, columnar.py per column) produce one, and so does the
group commit (coalesce.py) when it merges the batches of several requests. Items that share a key
inside one batch are merged here with the same rule the SQL applies (db/market_data.py): ON
CONFLICT cannot touch a row twice in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CandleBatch:
    """Validated candles as columns (one entry per distinct key) plus per-item outcomes."""

    received: int = 0
    symbol: list[str] = field(default_factory=list)
    timeframe: list[str] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    volume: list[int] = field(default_factory=list)
    spread: list[float | None] = field(default_factory=list)
    real_volume: list[int | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # items folded into an earlier item of the same key inside this batch (counted by add())
    merged_duplicates: int = 0
    merged_updates: int = 0
    # key -> row, kept by add(); a batch built column-wise (plain_batch) has distinct keys and none
    index: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.symbol)

    def add(
        self, bucket: int, symbol: str, tf: str, o: float, h: float, lo: float, c: float, vol: int,
        spread: float | None, real: int | None,
    ) -> int:  # fmt: skip
        """Append a candle, or merge it into the earlier one with the same key (the later one is
        the newer snapshot; the same rule as the SQL). Returns 0 new, 1 merged-changed, 2 merged-same."""
        key = (symbol, tf, bucket)
        j = self.index.get(key)
        if j is None:
            self.index[key] = len(self.symbol)
            self.symbol.append(symbol)
            self.timeframe.append(tf)
            self.ts.append(bucket)
            self.open.append(o)
            self.high.append(h)
            self.low.append(lo)
            self.close.append(c)
            self.volume.append(vol)
            self.spread.append(spread)
            self.real_volume.append(real)
            return 0
        before = (self.open[j], self.high[j], self.low[j], self.close[j], self.volume[j])
        if vol >= self.volume[j]:
            self.open[j], self.close[j] = o, c
            if spread is not None:
                self.spread[j] = spread
        self.high[j] = max(self.high[j], h)
        self.low[j] = min(self.low[j], lo)
        self.volume[j] = max(self.volume[j], vol)
        if real is not None:
            self.real_volume[j] = max(self.real_volume[j] or 0, real)
        after = (self.open[j], self.high[j], self.low[j], self.close[j], self.volume[j])
        if after == before:
            self.merged_duplicates += 1
            return 2
        self.merged_updates += 1
        return 1
