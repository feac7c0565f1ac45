"""MT5 history exports: the one parser for the files MetaTrader 5 writes for bars.

Two layouts exist and both are read here:

- the comma form, `Date,Time,Open,High,Low,Close,Volume` (the project's EURUSD H1 file);
- the terminal's tab-separated export, `<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>`.

Dates are `2021.10.18`, times `00:00` or `00:00:00`, in the broker's server clock. Timestamps are
returned as epoch seconds *of the labelled clock* (the clock is kept, never converted), the same
convention as the EA's `Z` (docs/ea-contract.md §5). Volume is the tick volume.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mt5db_core.market.timeframes import canonical

_SERIES_NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9.#+\-]{1,32})_(?P<tf>[A-Za-z0-9]{1,6})(?:_|\.|$)")
_COLUMNS = ("date", "time", "open", "high", "low", "close")


class HistoryFormatError(ValueError):
    """The file is not an MT5 history export; the message says what was expected."""


@dataclass(frozen=True)
class Bar:
    """One bar of an export: ts in epoch seconds of the labelled (broker) clock."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int


def series_from_name(path: Path) -> tuple[str | None, str | None]:
    """(symbol, canonical timeframe) from a name like `EURUSD_H1_2021-10-18_2024-12-31.csv`."""
    m = _SERIES_NAME.match(path.name)
    if not m:
        return None, None
    return m.group("symbol"), canonical(m.group("tf"))


def _epoch(date: str, time: str) -> int:
    y, mo, d = (int(p) for p in date.split("."))
    parts = [int(p) for p in time.split(":")]
    h, mi, s = [*parts, 0, 0][:3]
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp())


def read_bars(path: Path) -> Iterator[Bar]:
    """Bars of an MT5 history export, in file order; raises HistoryFormatError on another layout."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        delimiter = "\t" if "\t" in first else ","
        header = [h.strip().strip("<>").lower() for h in first.strip().split(delimiter)]
        if header[:6] != list(_COLUMNS) or not ({"volume", "tickvol"} & set(header)):
            raise HistoryFormatError(
                f"{path.name}: expected an MT5 history export (Date,Time,Open,High,Low,Close,Volume), "
                f"got {first.strip()[:80]!r}"
            )
        vol = header.index("tickvol") if "tickvol" in header else header.index("volume")
        for number, row in enumerate(csv.reader(fh, delimiter=delimiter), 2):
            if not row:
                continue
            try:
                yield Bar(
                    _epoch(row[0].strip(), row[1].strip()),
                    float(row[2]), float(row[3]), float(row[4]), float(row[5]),
                    int(row[vol]),
                )  # fmt: skip
            except (ValueError, IndexError) as exc:
                raise HistoryFormatError(f"{path.name}:{number}: {exc}") from None
