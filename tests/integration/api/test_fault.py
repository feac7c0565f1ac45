"""Fault test: PostgreSQL killed and restarted under a bounded load.

Every candle acknowledged with 2xx must be in the table afterwards; while the database is down the
API answers 503 quickly (not hung) and /ready fails; it recovers without a restart of the API.
Uses its own PostgreSQL cluster (the session one must never be stopped).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from mt5db_api.server import ThreadedServer
from mt5db_api.settings import Settings
from mt5db_core.net import free_port
from mt5db_local.postgres import LocalPostgres

from .conftest import Client, prepare_database, run

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_postgres():
    server = LocalPostgres()
    server.start()
    yield server
    server.destroy()


def test_db_killed_and_restarted_during_load(own_postgres):
    dsn = own_postgres.create_database("fault")
    keys = run(prepare_database(dsn))
    settings = Settings(
        database_url=dsn, port=free_port(), rate_limit_per_s=0, pool_min_size=2, pool_max_size=4
    )
    server = ThreadedServer(settings).start()
    acked: set[str] = set()
    outcomes: list[tuple[int, float]] = []
    problems: list[bytes] = []
    stop = threading.Event()
    base = datetime(2024, 1, 1, tzinfo=UTC)

    def load(worker: int) -> None:
        c = Client("127.0.0.1", settings.port, keys.ingest_read)
        n = 0
        while not stop.is_set():
            stamps = [(base + timedelta(minutes=(worker * 100_000 + n + i))).strftime("%Y-%m-%dT%H:%M:%SZ")
                      for i in range(10)]  # fmt: skip
            n += 10
            body = orjson.dumps([{"ts": ts, "symbol": "EURUSD", "timeframe": "M1", "open": 1.1, "high": 1.2,
                                  "low": 1.0, "close": 1.15, "volume": 1} for ts in stamps])  # fmt: skip
            started = time.monotonic()
            try:
                reply = c.post("/ingest", body)
                status = reply.status
            except OSError:
                status = 0
            outcomes.append((status, time.monotonic() - started))
            if status == 200:
                if reply.json()["inserted"] != 10:
                    problems.append(reply.body)
                acked.update(stamps)
            elif status == 503:
                if reply.json()["detail"] != "database_unavailable":
                    problems.append(reply.body)
                time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        own_postgres.stop("immediate")  # a crash: no clean shutdown
        time.sleep(0.3)
        ready_down = Client("127.0.0.1", settings.port).get("/ready", key=None)
        time.sleep(1.5)
        own_postgres.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if Client("127.0.0.1", settings.port).get("/ready", key=None).status == 200:
                break
            time.sleep(0.1)
        recovered_at = len(outcomes)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        server.stop()

    assert not problems, problems[:3]
    assert (ready_down.status, ready_down.json()) == (503, {"status": "degraded", "database": "unreachable"})
    statuses = [s for s, _ in outcomes]
    down = [d for s, d in outcomes if s == 503]
    assert down, "the API never answered 503 while PostgreSQL was down"
    assert max(down) < 1.0, f"a 503 took {max(down):.2f}s"
    assert set(statuses) <= {200, 503}, set(statuses)
    assert 200 in statuses[recovered_at:], "no success after PostgreSQL came back"
    stored = own_postgres.psql(
        "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM market_data",
        database="fault",
    ).split()
    missing = acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged candles lost"
    print(f"fault test: {len(outcomes)} requests, {statuses.count(200)} ok, {len(down)} x 503 "
          f"(max {max(down) * 1000:.0f} ms), {len(acked)} candles acknowledged, all stored")  # fmt: skip


def test_starts_without_a_database_and_reports_not_ready():
    port = free_port()
    dead = f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/none"
    settings = Settings(database_url=dead, port=port, rate_limit_per_s=0)
    server = ThreadedServer(settings).start()
    try:
        c = Client("127.0.0.1", port, "mt5_0123abcd_" + "x" * 43)
        assert (c.get("/health", key=None).status, c.get("/health", key=None).body) == (
            200,
            b'{"status":"ok"}',
        )
        started = time.monotonic()
        ready = c.get("/ready", key=None)
        assert (ready.status, ready.json()) == (503, {"status": "degraded", "database": "unreachable"})
        reply = c.post("/ingest", b'{"ts":"2025-03-12T14:07:00Z"}')
        assert reply.status == 503 and reply.json()["detail"] == "database_unavailable"
        assert set(reply.json()) == {"detail", "request_id"} and reply.headers["retry-after"] == "1"
        assert time.monotonic() - started < 2.0
    finally:
        server.stop()
