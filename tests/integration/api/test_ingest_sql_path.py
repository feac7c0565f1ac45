"""Differential test of the SQL ingest path (db/ingest_sql.py) against the Python path.

Two API instances, each with its own database: one validates in Python, the other hands every
candle body to PostgreSQL first (ingest_sql_min_bytes=0). The same seeded stream of bodies (valid
batches in every timeframe and ts spelling, each rejection reason, in-batch snapshots, resends and
newer snapshots across batches, envelope errors, lenient-JSON bodies) goes to both; every answer
must be byte-identical, and so must the stored rows (doubles compared bit for bit).
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from mt5db_api.timeframes import TIMEFRAMES

from .conftest import run

pytestmark = pytest.mark.postgres

SYMBOLS = ["EURUSD", "GBPUSD.m", "XAU#", "BTC-USD", "US30+", "ger_40"]
BASE = datetime(2024, 2, 26, tzinfo=UTC)  # a Monday; W1/MN1 buckets around month ends are hit


def _ts(rng: random.Random, moment: datetime) -> Any:
    """One instant in one of the spellings parse_ts accepts."""
    form = rng.randrange(9)
    if form == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")  # zone-less = UTC
    if form == 2:
        return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z"
    if form == 3:
        return (
            moment.strftime("%Y-%m-%dT%H:%M:%S")
            + "."
            + str(rng.randrange(10**6)).zfill(6)[: rng.randint(1, 6)]
            + "Z"
        )
    if form == 4:
        shift = timedelta(hours=rng.randint(-12, 12), minutes=rng.choice([0, 30, 45]))
        sign = "-" if shift < timedelta(0) else "+"
        mag = abs(shift)
        local = moment + shift
        return (
            local.strftime("%Y-%m-%dT%H:%M:%S")
            + f"{sign}{mag.seconds // 3600:02d}:{mag.seconds % 3600 // 60:02d}"
        )
    if form == 5:
        return int(moment.timestamp() * 1000)  # epoch ms
    if form == 6:
        return float(int(moment.timestamp() * 1000))  # epoch ms as an integral float
    if form == 7:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"
    return moment.strftime("%Y-%m-%dT%H:%M")  # no seconds: Python-only


def _timeframe(rng: random.Random, name: str) -> Any:
    tf = TIMEFRAMES[name]
    return rng.choice([name, name, name, str(tf.code), tf.code, name.lower(), f" {name} "])


def valid_candle(rng: random.Random, key: tuple[str, str, int]) -> dict[str, Any]:
    symbol, tf, minute = key
    p = round(rng.uniform(0.5, 3000.0), rng.choice([0, 2, 3, 5, 7]))
    lo = round(p * rng.uniform(0.98, 1.0), 5) or p
    hi = round(p * rng.uniform(1.0, 1.02), 5)
    lo, hi = min(lo, p), max(hi, p)
    o, c = rng.uniform(lo, hi), rng.uniform(lo, hi)
    item: dict[str, Any] = {
        "ts": _ts(rng, BASE + timedelta(minutes=minute, seconds=rng.randrange(60))),
        "symbol": symbol, "timeframe": _timeframe(rng, tf),
        "open": min(max(o, lo), hi), "high": hi, "low": lo, "close": min(max(c, lo), hi),
    }  # fmt: skip
    if rng.random() < 0.1:
        item["open"] = item["high"] = item["low"] = item["close"] = rng.choice(
            [1, 2, 1e-05, 12345678901234567890]
        )
    r = rng.random()
    if r < 0.8:
        item["volume"] = rng.randrange(0, 500)
    elif r < 0.85:
        item["volume"] = float(rng.randrange(0, 500))
    elif r < 0.9:
        item["volume"] = None
    if rng.random() < 0.3:
        item["spread"] = rng.choice([0, 0.0, 0.00012, 3, None, 1.5e-5])
    if rng.random() < 0.2:
        item["real_volume"] = rng.choice([0, 7, 1000, None, 12.0])
    if rng.random() < 0.1:
        item["comment"] = {"ignored": [1, 2]}
    return item


def invalid_candle(rng: random.Random, key: tuple[str, str, int], now: float) -> Any:
    """One item with exactly one fault (each reason of _slow_candle), or a non-object."""
    item = valid_candle(rng, key)
    fault = rng.randrange(26)
    if fault == 0:
        return rng.choice([[1, 2], "candle", 5, None, True])
    if fault == 1:
        item.pop(rng.choice(["ts", "symbol", "timeframe", "open", "high", "low", "close"]))
    elif fault == 2:
        item[rng.choice(["open", "high", "low", "close"])] = rng.choice(["1.1", True, None, [1.1], {"v": 1}])
    elif fault == 3:
        item[rng.choice(["open", "close"])] = rng.choice(["NaN", "inf", "-Infinity"])
    elif fault == 4:
        item[rng.choice(["open", "high", "low", "close"])] = rng.choice([0, -1.5, 0.0])
    elif fault == 5:
        item["symbol"] = rng.choice(["EUR USD", "X" * 33, "", 123, "EURUSD\n", "EUR/USD"])
    elif fault == 6:
        item["timeframe"] = rng.choice(["M7", 1.0, None, "", 16385.0, True, "H"])
    elif fault == 7:
        item["ts"] = rng.choice(["2025.03.12 14:00", 1.7e12 + 0.5, "2024-02-30T00:00:00Z", "yesterday", None,
                                 "2024-02-01T24:00:00Z", "2024-02-01T10:00:60Z", True])  # fmt: skip
    elif fault == 8:
        item["ts"] = rng.choice(["1989-12-31T23:59:59Z", int((now + 3 * 86400) * 1000), 1000,
                                 datetime.fromtimestamp(now + 2 * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")])  # fmt: skip
    elif fault == 9:
        item["high"], item["low"] = item["low"] * 0.5, item["high"] * 2
    elif fault == 10:
        item["high"] = item["open"] = item["close"] = item["low"]
        item["open"] = item["low"] * 1.5
        item["high"] = item["low"] * 1.2
    elif fault == 11:
        item["low"] = item["high"] * 0.99
        item["open"] = item["high"] * 0.5
    elif fault == 12:
        item["volume"] = rng.choice([-1, -100])
    elif fault == 13:
        item["volume"] = rng.choice([1.5, "10", True, float("nan")])
    elif fault == 14:
        item["spread"] = rng.choice([-0.1, -1, "x", True])
    elif fault == 15:
        item["real_volume"] = rng.choice([-1, 1.5, "3"])
    elif fault == 16:
        item["volume"] = 2**63  # over INT64_MAX
    elif fault == 17:
        item["open"] = 2**1001  # over 2**1000
    else:
        return item  # most "faulty" slots stay valid: batches mix both
    return item


def dumps(doc: Any) -> bytes:
    """JSON as an EA writes it (stdlib: integers beyond 64 bits and NaN tokens allowed)."""
    return json.dumps(doc, separators=(",", ":")).encode()


def _body(rng: random.Random, items: list[Any]) -> bytes:
    envelope = rng.randrange(10)
    if envelope < 6:
        raw = dumps({"items": items, "source": "ea"})
    elif envelope < 9:
        raw = dumps(items)
    else:
        raw = dumps(items[0]) if items else b"{}"
    if rng.random() < 0.05:
        raw = b"\xef\xbb\xbf" + raw
    if rng.random() < 0.05:
        raw = raw + b"\x00\x00\r\n"
    return raw


def bodies(seed: int, now: float) -> list[bytes]:
    rng = random.Random(seed)
    names = list(TIMEFRAMES)
    sent: list[list[Any]] = []
    out: list[bytes] = []
    for _ in range(220):
        kind = rng.random()
        size = rng.choice([1, 2, 5, 20, 60, 120])
        keys = [(rng.choice(SYMBOLS), rng.choice(names), rng.randrange(0, 80_000)) for _ in range(size)]
        if kind < 0.35:  # clean batch (the SQL path stores it), often in the canonical EA spelling
            items = [valid_candle(rng, k) for k in keys]
            if rng.random() < 0.6:
                for it in items:
                    it["timeframe"] = canonical_name(it["timeframe"])
                    if not isinstance(it["ts"], str) or not it["ts"].endswith("Z"):
                        it["ts"] = (BASE + timedelta(minutes=rng.randrange(80_000))).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        )
        elif kind < 0.55:  # some faulty items
            items = [invalid_candle(rng, k, now) for k in keys]
        elif kind < 0.7 and sent:  # resend an earlier batch (duplicates), or newer snapshots of it
            items = [dict(x) if isinstance(x, dict) else x for x in rng.choice(sent)]
            if rng.random() < 0.5:
                for it in items:
                    if isinstance(it, dict) and isinstance(it.get("volume"), int):
                        it["volume"] += rng.randrange(-3, 10)
                        if isinstance(it.get("high"), float):
                            it["high"] *= 1.001
        elif kind < 0.85:  # in-batch snapshots of a few keys
            few = keys[: max(1, size // 4)]
            items = [valid_candle(rng, rng.choice(few)) for _ in range(size)]
        else:
            items = [valid_candle(rng, k) for k in keys]
            items.extend(items[: rng.randint(0, 3)])  # exact in-batch repeats
        sent.append(items)
        out.append(_body(rng, items))
    # envelope errors and lenient JSON (PostgreSQL refuses it, the Python parser accepts it)
    good = dumps([valid_candle(rng, ("EURUSD", "M1", 5))]).decode()
    out += [
        b"", b"   \x00", b"[]", b'{"items": []}', b'{"items": 5}', b'{"items": null}', b'"text"', b"42", b"[1,",
        good.replace('"open":', '"spread":NaN,"open":', 1).encode(),
        good.replace('"open":', '"spread":nan,"open":', 1).encode(),
        good.replace('"open":', '"spread":-0.0,"open":', 1).encode(),
        good.replace('"open":', '"spread":1E-3,"open":', 1).encode(),
        good.replace('"open":', '"volume":1e2,"open":', 1).encode(),
        good.replace('"EURUSD"', '"EUR\\u0055SD"', 1).encode(),
        good.replace('"EURUSD"', '"EUR\\u0000SD"', 1).encode(),
        b"\xff\xfe" + good.encode(),
        good.replace('"open":', '"meta":' + "[" * 12 + "]" * 12 + ',"open":', 1).encode(),  # deep, valid
        good.replace('"open":', '"meta":' + "[" * 2000 + "]" * 2000 + ',"open":', 1).encode(),  # Python: 400
        b'{"items":' + b"[" * 300_000 + b"]" * 300_000 + b"}",
        dumps([valid_candle(rng, ("EURUSD", "M1", i)) for i in range(301)]),  # over max_items
    ]  # fmt: skip
    return out


def canonical_name(tf: Any) -> str:
    from mt5db_api.timeframes import canonical

    return canonical(tf) or "M1"


ROWS = (
    "SELECT symbol, timeframe, extract(epoch FROM ts)::bigint, open, high, low, close, volume, spread, "
    "real_volume, source FROM market_data ORDER BY symbol, timeframe, ts"
)


def _bits(row: Any) -> tuple[Any, ...]:
    return tuple(v.hex() if isinstance(v, float) else v for v in row)


async def stored(dsn: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [_bits(r) for r in await conn.fetch(ROWS)]
    finally:
        await conn.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_path_answers_and_stores_like_python(api_factory, seed):
    common = {"rate_limit_per_s": 0, "max_items": 300}
    py = api_factory(ingest_validation="python", **common)
    sql = api_factory(ingest_validation="sql", ingest_sql_min_bytes=0, **common)
    cp, cs = py.client(), sql.client()
    now = time.time()
    mismatches = []
    statuses: dict[int, int] = {}
    for i, body in enumerate(bodies(seed, now)):
        a, b = cp.post("/ingest", body), cs.post("/ingest", body)
        statuses[a.status] = statuses.get(a.status, 0) + 1
        if (a.status, a.body) != (b.status, b.body):
            mismatches.append((i, body[:300], a.status, a.body[:300], b.status, b.body[:300]))
    assert not mismatches, mismatches[:3]
    assert statuses.get(200, 0) > 150 and statuses.get(400, 0) >= 5 and statuses.get(413, 0) == 1
    rows_py, rows_sql = run(stored(py.dsn)), run(stored(sql.dsn))
    assert len(rows_py) > 1000
    assert rows_py == rows_sql
    # the SQL path really stored a good share of the batches (not everything fell back)
    metrics = cs.get("/prometheus").body.decode()
    sql_statements = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("ingest_db_statements_total") and 'path="sql"' in line
    ]
    assert sql_statements and sql_statements[0] >= 40, sql_statements
    cp.conn.close()
    cs.conn.close()
