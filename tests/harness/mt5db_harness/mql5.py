"""Reading the wire formats of the MQL5 sources in ea/ (MQL5 cannot be compiled here).

Each EA keeps every request it sends and every part of an answer it reads between the lines
`//=== WIRE FORMAT BEGIN` and `//=== WIRE FORMAT END`, as `#define NAME "C string"` templates
whose placeholders (`%NAME%`) the code fills with StringReplace. This module extracts those
templates, the string literals outside the block, and the placeholders the code fills, so the
tests can build every body the sources can produce and check it against the API.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

BEGIN = "//=== WIRE FORMAT BEGIN"
END = "//=== WIRE FORMAT END"
_DEFINE = re.compile(r'^#define\s+(\w+)\s+"((?:[^"\\]|\\.)*)"\s*$')
_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_PLACEHOLDER = re.compile(r"%([A-Z]+)%")
_FILLED = re.compile(r'StringReplace\(\s*\w+\s*,\s*"%([A-Z]+)%"')
_CHAR = re.compile(r"'(?:[^'\\\n]|\\.)'")  # a char literal such as '"' or '\\'
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "'": "'", "0": "\0"}


def unescape(text: str) -> str:
    """An MQL5 (C) string literal's value."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], text)


@dataclass(frozen=True)
class WireFormat:
    path: Path
    defines: dict[str, str]  # name -> value of the #defines inside the block
    outside: list[str]  # string literals of the rest of the file (comments removed)
    filled: set[str]  # placeholders the code fills with StringReplace
    code: str  # the file without the block and without comments

    def placeholders(self, name: str) -> set[str]:
        return set(_PLACEHOLDER.findall(self.defines[name]))

    def fill(self, name: str, values: dict[str, str]) -> str:
        """What the EA's StringReplace calls make of template `name`."""
        text = self.defines[name]
        for key in self.placeholders(name):
            text = text.replace(f"%{key}%", values[key])
        return text


def _strip_comments(source: str) -> str:
    out = []
    for line in source.splitlines():
        # `//` outside a string literal starts a comment (URLs only occur inside literals here).
        cut = len(line)
        quoted = False
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "\\" and quoted:
                i += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif not quoted and line.startswith("//", i):
                cut = i
                break
            i += 1
        out.append(line[:cut])
    return "\n".join(out)


def read(path: Path) -> WireFormat:
    source = path.read_text(encoding="utf-8")
    start, end = source.index(BEGIN), source.index(END)
    block = source[start:end]
    defines = {}
    for line in block.splitlines():
        found = _DEFINE.match(line.strip())
        if found:
            defines[found.group(1)] = unescape(found.group(2))
    rest = _CHAR.sub("'?'", source[:start] + source[end:].split("\n", 1)[1])
    code = _strip_comments(rest)
    literals = [unescape(m.group(1)) for m in _LITERAL.finditer(code)]
    return WireFormat(path, defines, literals, set(_FILLED.findall(code)), code)


# -- what the EAs fill in: values of the kinds each placeholder is documented to hold ------------

# The EAs' TimeframeName(): the nine names, every other period as its numeric enum value.
NAMED_PERIODS = {"M1": 60, "M5": 300, "M15": 900, "M30": 1800, "H1": 3600, "H4": 14400, "D1": 86400}
NUMERIC_PERIODS = {"2": 120, "10": 600, "16386": 7200, "16390": 21600, "16396": 43200}
SYMBOLS = {"EURUSD": 5, "USDJPY": 3, "XAUUSD": 2, "AUDUSD.m": 5, "#US30": 1, "BTCUSD+": 2}


def iso_z(moment: datetime) -> str:
    """The EAs' IsoZ(): the broker clock labelled Z, whole seconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def price(value: float, digits: int) -> str:
    """MQL5's DoubleToString(value, digits): fixed decimals, never an exponent."""
    return f"{value:.{digits}f}"


def json_escape(text: str) -> str:
    """The EAs' JsonEscape()."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def bar_open(rng: random.Random, timeframe: str) -> datetime:
    """A bar open time a terminal reports for this period (aligned to its bucket)."""
    seconds = NAMED_PERIODS.get(timeframe) or NUMERIC_PERIODS.get(timeframe)
    start = datetime(2024, 1, 7, tzinfo=UTC)  # a Sunday: W1 bars open on Sundays
    if timeframe == "W1":
        return start + timedelta(weeks=rng.randrange(0, 100))
    if timeframe == "MN1":
        return datetime(2020 + rng.randrange(0, 5), rng.randrange(1, 13), 1, tzinfo=UTC)
    assert seconds
    span = int((datetime(2025, 1, 1, tzinfo=UTC) - start).total_seconds()) // seconds
    return start + timedelta(seconds=seconds * rng.randrange(0, span))


def candle_values(rng: random.Random, symbol: str, timeframe: str) -> dict[str, str]:
    """What the collector's CandleJson() puts into MT5DB_CANDLE_JSON for one bar."""
    digits = SYMBOLS[symbol]
    base = rng.uniform(0.5, 40000.0) if digits <= 2 else rng.uniform(0.5, 200.0)
    o, c = base, base * rng.uniform(0.99, 1.01)
    hi, lo = max(o, c) * rng.uniform(1.0, 1.005), min(o, c) * rng.uniform(0.995, 1.0)
    # Rounded as DoubleToString rounds, then kept consistent (high >= the others, low <= them).
    o_s, c_s = price(o, digits), price(c, digits)
    hi_s = price(max(hi, float(o_s), float(c_s)), digits)
    lo_s = price(min(lo, float(o_s), float(c_s)), digits)
    return {"TS": iso_z(bar_open(rng, timeframe)), "SYMBOL": json_escape(symbol), "TIMEFRAME": timeframe,
            "OPEN": o_s, "HIGH": hi_s, "LOW": lo_s, "CLOSE": c_s, "VOLUME": str(rng.randrange(0, 2**31 - 1))}  # fmt: skip


def collector_batch(
    wire: WireFormat, rng: random.Random, n: int, seen: set[tuple[str, str, str]] | None = None
) -> tuple[str, list[dict[str, str]]]:
    """One {"items":[...]} body as the collector's Flush() builds it, and the values in it: each
    bar once (the EA sends a closed bar once per series), also across the batches sharing `seen`."""
    timeframes = [*NAMED_PERIODS, "W1", "MN1", *NUMERIC_PERIODS]
    values: list[dict[str, str]] = []
    seen = set() if seen is None else seen
    while len(values) < n:
        v = candle_values(rng, rng.choice(list(SYMBOLS)), rng.choice(timeframes))
        if (v["SYMBOL"], v["TIMEFRAME"], v["TS"]) not in seen:  # one bar per series and time
            seen.add((v["SYMBOL"], v["TIMEFRAME"], v["TS"]))
            values.append(v)
    items = wire.defines["MT5DB_ITEM_SEPARATOR"].join(wire.fill("MT5DB_CANDLE_JSON", v) for v in values)
    return wire.fill("MT5DB_BATCH_JSON", {"ITEMS": items}), values


def headers(wire: WireFormat, values: dict[str, str]) -> dict[str, str]:
    """The header lines of MT5DB_HEADERS (+ the key header) as the EA fills them."""
    text = wire.fill("MT5DB_HEADERS", values) + wire.fill("MT5DB_KEY_HEADER", values)
    assert text.endswith("\r\n"), "every header line ends with CRLF"
    out = {}
    for line in text.split("\r\n")[:-1]:
        name, _, value = line.partition(": ")
        assert name and value and name not in out, line
        out[name] = value
    return out
