"""Per-key token buckets, in-process (each API replica enforces its own share)."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBuckets:
    """`rate` tokens per second up to `burst`; one token per request. rate 0 = unlimited.

    With `max_keys` (client addresses: not bounded by us) the least recently used bucket is
    forgotten beyond that many; a forgotten key starts again with a full burst.
    """

    def __init__(self, rate: float, burst: float, max_keys: int | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)

    def take(self, key: str) -> float:
        """Consume a token; returns 0.0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens, last = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if self.max_keys is not None:
            if key in self._state:
                self._state.move_to_end(key)
            elif len(self._state) >= self.max_keys:
                self._state.popitem(last=False)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
