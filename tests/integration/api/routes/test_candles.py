"""GET /candles against a Python oracle, on the plain PostgreSQL path and the TimescaleDB path.

Both backends run this one suite. Where TimescaleDB is not installed, the Timescale case is
skipped with the reason; the plain path must then give the oracle's answers by resampling. The
aggregates' answers against the same oracle on a real TimescaleDB engine, late bars included:
test_candles_timescale.py.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from itertools import islice

import orjson
import pytest

pytestmark = pytest.mark.postgres

H1_TARGETS = ["H1", "H2", "H3", "H4", "H6", "H8", "H12", "D1", "W1", "MN1", "16386", "32769"]
M1_TARGETS = ["M1", "M2", "M3", "M5", "M6", "M10", "M12", "M15", "M20", "M30", "H1", "H4", "D1", "W1"]
WIDTH = {"M1": 60, "M2": 120, "M3": 180, "M5": 300, "M6": 360, "M10": 600, "M12": 720, "M15": 900,
         "M20": 1200, "M30": 1800, "H1": 3600, "H2": 7200, "H3": 10800, "H4": 14400, "H6": 21600,
         "H8": 28800, "H12": 43200, "D1": 86400}  # fmt: skip
CODES = {"16386": "H2", "32769": "W1"}


def oracle_bucket(ts: datetime, target: str) -> datetime:
    """Independent of the app's flooring: MT5 weeks start Sunday, months on the 1st."""
    if target == "W1":
        day = ts.replace(hour=0, minute=0, second=0)
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if target == "MN1":
        return ts.replace(day=1, hour=0, minute=0, second=0)
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WIDTH[target], UTC)


def oracle(rows: list[dict], target: str) -> list[dict]:
    out: dict[datetime, dict] = {}
    for r in sorted(rows, key=lambda r: r["dt"]):
        b = oracle_bucket(r["dt"], target)
        if b not in out:
            out[b] = {"ts": b.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": r["open"], "high": r["high"],
                      "low": r["low"], "close": r["close"], "volume": r["volume"]}  # fmt: skip
        else:
            o = out[b]
            o["high"] = max(o["high"], r["high"])
            o["low"] = min(o["low"], r["low"])
            o["close"] = r["close"]
            o["volume"] += r["volume"]
    return [out[k] for k in sorted(out)]


def h1_rows(csv_path, n: int) -> list[dict]:
    rows = []
    with csv_path.open() as fh:
        for rec in islice(csv.DictReader(fh), n):
            dt = datetime.strptime(f"{rec['Date']} {rec['Time']}", "%Y.%m.%d %H:%M").replace(tzinfo=UTC)
            rows.append({"dt": dt, "open": float(rec["Open"]), "high": float(rec["High"]),
                         "low": float(rec["Low"]), "close": float(rec["Close"]), "volume": int(rec["Volume"])})  # fmt: skip
    return rows


def m1_rows(n: int) -> list[dict]:
    rng = random.Random(7)
    start = datetime(2025, 2, 27, 21, 0, tzinfo=UTC)  # crosses a weekend and a month end
    rows, price = [], 1.1
    for i in range(n):
        o = price
        c = round(o + rng.uniform(-0.001, 0.001), 5)
        rows.append({"dt": start + timedelta(minutes=i * 3), "open": o, "high": round(max(o, c) + 0.0002, 5),
                     "low": round(min(o, c) - 0.0002, 5), "close": c, "volume": rng.randint(0, 90)})  # fmt: skip
        price = c
    return rows


def post_rows(client, symbol: str, timeframe: str, rows: list[dict]) -> None:
    for i in range(0, len(rows), 500):
        items = [{"ts": r["dt"].strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": symbol, "timeframe": timeframe,
                  "open": r["open"], "high": r["high"], "low": r["low"], "close": r["close"],
                  "volume": r["volume"]} for r in rows[i : i + 500]]  # fmt: skip
        reply = client.post("/ingest", orjson.dumps({"items": items}))
        assert reply.status == 200 and reply.json()["rejected"] == 0


@pytest.fixture(params=["plain", "timescale"])
def backend(request, clean):
    """The storage path under test; the Timescale one needs the extension on this server."""
    available = clean.sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == "1"
    if request.param == "timescale" and not available:
        pytest.skip(
            "timescaledb is not installed on this PostgreSQL (not in pg_available_extensions): hypertable, "
            "compression, retention and continuous-aggregate statements are skipped; plain path covers queries"
        )
    if request.param == "plain" and available:
        pytest.skip("this server has TimescaleDB; the plain path runs where it is absent")
    return clean


def fetch_all(client, symbol: str, target: str) -> dict:
    reply = client.get(f"/candles?symbol={symbol}&timeframe={target}&start=2000-01-01T00:00:00Z&limit=10000")
    assert reply.status == 200, reply.body
    return reply.json()


def test_resampled_h1_matches_oracle(backend, client, eurusd_h1_csv):
    rows = h1_rows(eurusd_h1_csv, 1500)
    post_rows(client, "EURUSD", "H1", rows)
    for target in H1_TARGETS:
        page = fetch_all(client, "EURUSD", target)
        expected = oracle(rows, CODES.get(target, target))
        assert page["timeframe"] == CODES.get(target, target)
        assert page["source_timeframe"] == "H1"
        assert page["data"] == expected, target
        assert page["count"] == len(expected)


def test_resampled_m1_matches_oracle(backend, client):
    rows = m1_rows(1200)
    post_rows(client, "XAUUSD.m", "M1", rows)
    for target in M1_TARGETS:
        page = fetch_all(client, "XAUUSD.m", target)
        assert page["data"] == oracle(rows, target), target


def test_stored_timeframe_preferred_and_ranges(backend, client, eurusd_h1_csv):
    rows = h1_rows(eurusd_h1_csv, 300)
    post_rows(client, "EURUSD", "H1", rows)
    d1 = oracle(rows, "D1")
    post_rows(
        client,
        "EURUSD",
        "D1",
        [dict(r, dt=datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)) for r in d1[:3]],
    )
    page = client.get("/candles?symbol=EURUSD&timeframe=D1&start=2021-10-18T00:00:00Z&limit=10000").json()
    assert page["source_timeframe"] == "D1" and page["count"] == 3
    # start inside a bucket is aligned down; end is exclusive; no start -> newest `limit` bars.
    page = client.get(
        "/candles?symbol=EURUSD&timeframe=H4&start=2021-10-18T05:00:00Z&end=2021-10-18T16:00:00Z"
    ).json()
    assert [c["ts"] for c in page["data"]] == [
        "2021-10-18T04:00:00Z",
        "2021-10-18T08:00:00Z",
        "2021-10-18T12:00:00Z",
    ]
    page = client.get("/candles?symbol=EURUSD&timeframe=H1&limit=2").json()
    assert [c["ts"] for c in page["data"]] == [r["dt"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows[-2:]]


def test_query_errors_are_4xx(api):
    c = api.client()
    assert (lambda r: (r.status, r.body))(c.get("/candles?symbol=EURUSD&timeframe=M7")) == (
        400, b'{"detail":"invalid_timeframe"}',
    )  # fmt: skip
    assert (lambda r: (r.status, r.body))(c.get("/candles?symbol=EURUSD&timeframe=H1&start=2025.03.12")) == (
        400, b'{"detail":"invalid_ts","field":"start"}',
    )  # fmt: skip
    assert c.get("/candles?symbol=EUR%20USD&timeframe=H1").status == 422
    assert c.get("/candles?symbol=EURUSD&timeframe=H1&limit=0").status == 422
    empty = c.get("/candles?symbol=NOPE&timeframe=H1").json()
    assert empty == {"symbol": "NOPE", "timeframe": "H1", "source_timeframe": None, "count": 0, "data": []}


def test_the_largest_accepted_volume_sums_on_every_timeframe(client, clean):
    """Issue 12 item 5: a volume near 2^63-1 was accepted, and then every resampled read of that
    symbol (H4, D1, W1, MN1) answered 500 for good. A full 31-day month of M1 bars, each with the
    largest volume the API accepts (the worst any read sums), answers on every timeframe."""
    from mt5db_core.market.candles import VOLUME_MAX
    from mt5db_core.market.timeframes import TIMEFRAMES

    start = datetime(2025, 1, 1, tzinfo=UTC)
    bars = [
        {"ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "XTREME",
         "timeframe": "M1", "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "volume": VOLUME_MAX}
        for i in range(31 * 1440)
    ]  # fmt: skip
    for i in range(0, len(bars), 5000):
        reply = client.post("/ingest", orjson.dumps({"items": bars[i : i + 5000]}))
        assert (reply.status, reply.json()["inserted"]) == (200, len(bars[i : i + 5000]))
    over = dict(bars[0], symbol="OTHER", volume=VOLUME_MAX + 1)
    assert client.post("/ingest", orjson.dumps(over)).json()["errors"] == [
        {"index": 0, "reason": "invalid_volume", "field": "volume"}
    ]
    for target in TIMEFRAMES:
        reply = client.get(f"/candles?symbol=XTREME&timeframe={target}&start=2025-01-01T00:00:00Z"
                           "&end=2025-02-01T00:00:00Z&limit=10000")  # fmt: skip
        assert reply.status == 200, (target, reply.body)
        data = reply.json()["data"]
        assert data, target
        for bar in data:  # every bucket inside January is whole except W1's two edges
            assert bar["volume"] % VOLUME_MAX == 0 and 0 < bar["volume"] // VOLUME_MAX <= 31 * 1440, target
        if target == "MN1":
            assert [bar["volume"] for bar in data] == [31 * 1440 * VOLUME_MAX]
