"""Every dashboard panel and recording rule the operator generates returns data from a real
Prometheus scraping a live API: the queries use metric names and labels the API really exports.
(No Grafana server exists here, so the panel JSON is checked structurally in the operator's unit
tests and its queries are proven here.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import asyncpg
import pytest

from mt5db_core import apikeys
from mt5db_core.net import free_port, wait_for_http
from mt5db_harness.prometheus import LocalPrometheus
from mt5db_operator.resources import monitoring
from mt5db_operator.specs import Meta, TradingStackSpec

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus]

MT5DB = [sys.executable, "-m", "mt5db_core.cli"]
STACK = TradingStackSpec.parse({}, Meta(name="demo", namespace="trading", uid="u1", generation=1))


@pytest.fixture
def live_api(database_url: str) -> Iterator[tuple[int, str]]:
    """`mt5db api` on a migrated database, with one ingest key; yields (port, key)."""
    assert (
        subprocess.run(
            [*MT5DB, "migrate", "--database-url", database_url], capture_output=True, check=False
        ).returncode
        == 0
    )
    key = apikeys.generate_key()

    async def register() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "INSERT INTO api_keys (key_id, name, key_hash, scopes) VALUES ($1, 'dash', $2, $3)",
                key.key_id, key.key_hash, ["ingest", "read"],
            )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(register())
    port = free_port()
    proc = subprocess.Popen([*MT5DB, "api", "--database-url", database_url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
        yield port, key.secret_key
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def post(port: int, key: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ingest", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return int(response.status)


def test_every_panel_and_recording_rule_returns_data(
    prometheus: LocalPrometheus, live_api: tuple[int, str]
) -> None:
    port, key = live_api
    # Labels a ServiceMonitor-discovered target carries: job = the Service, namespace.
    prometheus.scrape(STACK.api_name(), port, path="/prometheus", labels={"namespace": STACK.namespace})
    candle = '{"ts":"2025-03-12T%02d:00:00Z","symbol":"EURUSD","timeframe":"H1","open":1.08,"high":1.09,"low":1.07,"close":1.085,"volume":10}'
    selector = f'job="{STACK.api_name()}", namespace="{STACK.namespace}"'
    prometheus.wait_for_series(f"ingest_candles_inserted_total{{{selector}}}")
    for hour in range(6):  # counters must move between scrapes for rate() to be non-empty
        assert post(port, key, (candle % hour).encode()) == 200
        assert post(port, key, (candle % hour).encode()) == 200  # a resend: a duplicate
        prometheus.wait_for_series(f"ingest_candles_inserted_total{{{selector}}} >= {hour + 1}")

    panels = monitoring.dashboard(STACK)["panels"]
    queries = [(p["title"], t["expr"]) for p in panels for t in p["targets"]]
    queries += [
        (r["record"], r["expr"]) for g in monitoring.rule_groups(STACK) for r in g["rules"] if "record" in r
    ]
    assert len(queries) >= 7
    empty = [(name, expr) for name, expr in queries if not prometheus.wait_for_series(expr, timeout=20)]
    assert not empty, f"queries with no data against the live API: {empty}"

    # The alert expressions are valid PromQL on this server (empty is fine: nothing is wrong).
    for group in monitoring.rule_groups(STACK):
        for rule in group["rules"]:
            if "alert" in rule:
                prometheus.query(rule["expr"])
