"""/candles on the Timescale path answers like plain PostgreSQL at all times: late, corrected and
deleted M1 bars inside an already materialized range show at M5..D1 at once, not after the next
policy refresh. On the real TimescaleDB engine (mt5db_harness.timescale): one API connection (the
engine has one session), the optimistic COPY off (COPY kills the engine), refreshes called
explicitly (the engine runs no background jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from mt5db_api.db.market_data import view_is_current
from mt5db_api.server import ThreadedServer
from mt5db_api.settings import Settings
from mt5db_core.net import free_port

from ..conftest import Client, prepare_database, run
from .test_candles import fetch_all, m1_rows, oracle, post_rows

pytestmark = pytest.mark.timescale

TARGETS = ["M5", "M15", "M30", "H1", "H4", "D1"]  # every one a continuous aggregate over M1


@pytest.fixture
def api_on_timescale(timescale) -> Iterator[tuple[Client, str]]:
    keys = run(prepare_database(timescale.dsn))
    settings = Settings(
        database_url=timescale.dsn, port=free_port(), rate_limit_per_s=0, pool_min_size=1,
        pool_max_size=1, optimistic_insert_min_items=0, db_command_timeout_s=30,
    )  # fmt: skip
    server = ThreadedServer(settings).start()
    client = Client("127.0.0.1", settings.port, keys.ingest_read)
    yield client, timescale.dsn
    client.conn.close()
    server.stop()


async def sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)  # unnamed statements: shared session
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def refresh_all(dsn: str) -> None:
    run(sql(dsn, *(f"CALL refresh_continuous_aggregate('candles_{t.lower()}', NULL, NULL)" for t in TARGETS)))


def assert_like_plain(client: Client, rows: list[dict], when: str) -> None:
    for target in TARGETS:
        page = fetch_all(client, "XAUUSD.m", target)
        assert page["data"] == oracle(rows, target), f"{target} {when}"


def test_late_corrected_and_deleted_bars_show_at_once(api_on_timescale):
    client, dsn = api_on_timescale
    rows = m1_rows(600)
    post_rows(client, "XAUUSD.m", "M1", rows)
    refresh_all(dsn)
    assert_like_plain(client, rows, "after materialization")

    # A corrected bar (more ticks, a new high) and a late bar, both inside the materialized range.
    fixed = dict(rows[100], high=rows[100]["high"] + 0.5, close=rows[100]["close"] + 0.1,
                 volume=rows[100]["volume"] + 50)  # fmt: skip
    late = dict(rows[200], dt=rows[200]["dt"].replace(minute=(rows[200]["dt"].minute + 1) % 60),
                open=2.0, high=2.5, low=1.9, close=2.2, volume=7)  # fmt: skip
    assert late["dt"] not in {r["dt"] for r in rows}
    post_rows(client, "XAUUSD.m", "M1", [fixed, late])
    rows = [fixed if r is rows[100] else r for r in rows] + [late]
    assert_like_plain(client, rows, "after a late and a corrected bar")
    refresh_all(dsn)
    assert_like_plain(client, rows, "after the next refresh")

    gone = rows.pop(300)
    run(sql(dsn, f"DELETE FROM market_data WHERE timeframe = 'M1' AND ts = '{gone['dt'].isoformat()}'"))  # noqa: S608 - a test's own value
    assert_like_plain(client, rows, "after a DELETE")

    run(sql(dsn, "TRUNCATE market_data"))
    for target in TARGETS:
        assert fetch_all(client, "XAUUSD.m", target)["data"] == [], f"{target} after TRUNCATE"


def test_a_window_without_changes_is_read_from_the_aggregate(api_on_timescale):
    """The fast path stays: after a refresh the view answers, and a late bar outside the queried
    window does not send the read to raw M1."""
    client, dsn = api_on_timescale
    rows = m1_rows(300)
    post_rows(client, "XAUUSD.m", "M1", rows)
    refresh_all(dsn)

    async def current(start: datetime | None) -> bool:
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            return await view_is_current(conn, "candles_h1", start, None)
        finally:
            await conn.close()

    assert run(current(None))
    late = dict(rows[10], dt=rows[10]["dt"].replace(second=0, minute=(rows[10]["dt"].minute + 1) % 60))
    body = {"items": [{"ts": late["dt"].strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "XAUUSD.m",
                       "timeframe": "M1", "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1}]}  # fmt: skip
    assert client.post("/ingest", orjson.dumps(body)).status == 200
    assert not run(current(None))
    assert run(current(datetime(2025, 3, 1, tzinfo=UTC)))  # after the late bar's window
