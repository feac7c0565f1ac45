"""The candle and tick field rules (ea-contract: docs/ea-contract.md §7 and §12).

One place for the bounds that the ingest paths (per item and column-wise), the OpenAPI schema and
training's loaders apply, so they cannot drift apart.
"""

from __future__ import annotations

import re

# Symbols: the Market Watch name exactly, broker suffixes included (`AUDUSD.m`, `#US30`).
SYMBOL_CHARS = r"[A-Za-z0-9._#+\-]"
SYMBOL_MAX_LEN = 32
SYMBOL_PATTERN = rf"^{SYMBOL_CHARS}{{1,{SYMBOL_MAX_LEN}}}$"
symbol_ok = re.compile(rf"{SYMBOL_CHARS}{{1,{SYMBOL_MAX_LEN}}}").fullmatch

# Timestamps: broker clocks run hours ahead of UTC, so only absurd values are refused.
EARLIEST_TS = 631152000  # 1990-01-01T00:00:00Z
MAX_FUTURE_S = 86400  # at most one day after the server's clock

# Counts (volume, real_volume) are stored as bigint.
INT64_MAX = 2**63 - 1

OHLC = ("open", "high", "low", "close")
