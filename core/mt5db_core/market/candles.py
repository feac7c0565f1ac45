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
# A candle's volume is summed by every resampled read (/candles H4..MN1, the continuous aggregates):
# at most 31 * 24 * 60 M1 bars share one bucket (MN1 from M1), so that many of the largest volume
# still fit a bigint sum. About 2.1e14 per bar, far above any real tick volume.
VOLUME_MAX = INT64_MAX // (31 * 24 * 60)
# Tick flags are stored as integer (MT5's TICK_FLAG_* bits use the low byte).
FLAGS_MAX = 2**31 - 1

OHLC = ("open", "high", "low", "close")
