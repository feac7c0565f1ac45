"""Group commit: concurrent small requests share statements, and every answer is still its own."""

from __future__ import annotations

import threading

import orjson
import pytest

from .conftest import Client

pytestmark = pytest.mark.postgres

THREADS, REQUESTS, BARS = 12, 40, 15


def test_concurrent_snapshots_coalesce_and_merge_exactly(api_factory):
    env = api_factory(rate_limit_per_s=0, coalesce_max_items=64, coalesce_max_inflight=1)
    answers: list[dict] = []
    sent: list[dict] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        c = Client("127.0.0.1", env.port, env.keys.ingest_read)
        for i in range(REQUESTS):
            bar = (t * 7 + i) % BARS
            vol = 1 + t * REQUESTS + i  # unique volumes: the final open/close is well defined
            candle = {"ts": f"2025-03-12T10:{bar:02d}:30Z", "symbol": "EURUSD", "timeframe": "M1",
                      "open": 1.0 + vol * 1e-5, "high": 1.5 + vol * 1e-5, "low": 0.5 - vol * 1e-6,
                      "close": 1.1 + vol * 1e-5, "volume": vol}  # fmt: skip
            reply = c.post("/ingest", orjson.dumps(candle))
            assert reply.status == 200, reply.body
            with lock:
                answers.append(reply.json())
                sent.append(candle)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    total = THREADS * REQUESTS
    assert len(answers) == total
    assert sum(a["inserted"] for a in answers) == BARS
    assert all(a["inserted"] + a["updated"] + a["duplicates"] == 1 for a in answers)
    coalescer = env.server.app.state.coalescer
    assert coalescer.requests == total
    assert coalescer.statements < total, "no two requests ever shared a statement"
    # The stored bars equal the order-independent merge of everything acknowledged.
    expected = []
    for bar in range(BARS):
        snaps = [s for s in sent if s["ts"] == f"2025-03-12T10:{bar:02d}:30Z"]
        top = max(snaps, key=lambda s: s["volume"])
        expected.append(
            f"{top['open']!r}|{max(s['high'] for s in snaps)!r}|{min(s['low'] for s in snaps)!r}|"
            f"{top['close']!r}|{top['volume']}"
        )
    got = env.sql(
        "SELECT open::text, high::text, low::text, close::text, volume FROM market_data ORDER BY ts"
    )
    assert got.split("\n") == expected
    print(f"coalescing: {total} requests in {coalescer.statements} statements")
