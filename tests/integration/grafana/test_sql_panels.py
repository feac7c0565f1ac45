"""Every SQL query of the dashboards (panels and variables) runs against the real schema made by
`mt5db migrate`, with data stored through the live API, a champion registered by the real `mt5db
train --promote ifBetter` (artifact, version, alias and its history), signals created, leased and
acked through the live API and a shadow signal written by serving's own SQL, and returns rows with
values; and the cheap ones stay cheap: EXPLAIN shows index scans of market_data, never a
sequential scan."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from mt5db_api.db import signals as signals_db
from mt5db_core.cli import main
from mt5db_core.net import free_port, wait_for_http
from mt5db_harness.synthetic import planted_candles, write_mt5_export

from . import helpers

pytestmark = pytest.mark.postgres

MT5DB = [sys.executable, "-m", "mt5db_core.cli"]
SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY"]
# A small RandomForest run (as tests/integration/training/ train it): seconds, not minutes.
FAST = ["--n-estimators", "20", "--folds", "3", "--test-bars", "300", "--bootstrap-reps", "100",
        "--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1", "--horizons", "1,5"]  # fmt: skip


def post(port: int, key: str, path: str, body: Any) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-API-Key": key})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
        answer: dict[str, Any] = json.load(response)
    return answer


def champion_trained(database_url: str, tmp: Path) -> None:
    """The registry as training writes it: `mt5db train --promote ifBetter` on a planted pattern
    (from a CSV, so market_data keeps only the API's candles) registers and promotes v1."""
    csv = write_mt5_export(planted_candles(3000, seed=1), str(tmp / "PLANT_H1_synthetic.csv"))
    argv = ["train", "--model", "rf", "--csv", csv, "--registry-url", database_url, "--out", str(tmp / "run")]
    assert main([*argv, "--run", "sql-panels", *FAST, "--promote", "ifBetter"]) == 0


async def shadow_signal(database_url: str) -> None:
    """A challenger's signal as the serving loop stores it (mt5db_serving.loop: the API's signal SQL)."""
    conn = await asyncpg.connect(database_url)
    try:
        version_id = await conn.fetchval("SELECT version_id FROM model_aliases WHERE alias = 'champion'")
        row = await signals_db.insert_signal(
            conn, symbol="PLANT", timeframe="H1", side="BUY", confidence=0.61, ttl_sec=90, sl_pips=12,
            tp_pips=24, meta={"source": "model"}, delivery="shadow", source="model",
            shadow_reason="the bar closed 400 days ago (too old to trade)", model_version_id=version_id,
            bar_ts=datetime(2022, 6, 1, 10, tzinfo=UTC),
        )  # fmt: skip
        assert row is not None
    finally:
        await conn.close()


def signals_through_the_api(port: int, key: str) -> None:
    """A manual signal posted (admin), leased by an executor's poll and acked FILLED."""
    created = post(port, key, "/signals", {"symbol": "EURUSD", "timeframe": "H1", "side": "BUY",
                                           "confidence": 0.7, "ttl_sec": 600, "sl_pips": 20, "tp_pips": 40})  # fmt: skip
    assert created["created"] is True
    req = urllib.request.Request(f"http://127.0.0.1:{port}/signals/next?account_id=1001&symbols=EURUSD&timeframe=H1",
                                 headers={"X-API-Key": key})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
        (signal,) = json.load(response)["signals"]
    assert signal["id"] == created["id"]
    ack = {"id": signal["id"], "status": "FILLED", "symbol": "EURUSD", "side": "BUY", "mt5_ticket": 9000001,
           "price": 1.1, "ts_exec": "2026.01.05 10:00:01", "account_id": "1001"}  # fmt: skip
    assert post(port, key, "/signals/ack", ack)["ok"] is True


def stored_through_the_api(database_url: str, secret_key: str, tmp: Path) -> tuple[datetime, datetime]:
    """Candles for three symbols on M1 and H1 and a few ticks, posted to a live API (a migrated
    database and a key of every scope), a trained champion and signals; returns the bar-time range
    the candles cover."""
    champion_trained(database_url, tmp)
    asyncio.run(shadow_signal(database_url))
    port = free_port()
    proc = subprocess.Popen([*MT5DB, "api", "--database-url", database_url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
        for tf, step in (("M1", timedelta(minutes=1)), ("H1", timedelta(hours=1))):
            items = [
                {"ts": (start + i * step).strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": s, "timeframe": tf,
                 "open": 1.1, "high": 1.3, "low": 1.0, "close": 1.1 + i / 1000, "volume": 10 + i}
                for s in SYMBOLS for i in range(3 if tf == "H1" else 120)
            ]  # fmt: skip
            assert post(port, secret_key, "/ingest", {"items": items})["inserted"] == len(items)
        tick = {"ts": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002}
        assert post(port, secret_key, "/ingest/tick", {"ticks": [tick, tick]})["inserted"] == 2
        signals_through_the_api(port, secret_key)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return start, start + timedelta(hours=3)


async def run_all(database_url: str, queries: list[tuple[str, str]]) -> dict[str, list[asyncpg.Record]]:
    conn = await asyncpg.connect(database_url)
    try:
        # Statistics reach pg_stat_user_tables when the writing backends flush them (about 1 s).
        for _ in range(50):
            if await conn.fetchval(
                "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'market_data'"
            ):
                break
            await asyncio.sleep(0.2)
        return {name: await conn.fetch(sql) for name, sql in queries}
    finally:
        await conn.close()


async def plans(database_url: str, queries: list[tuple[str, str]]) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        # The table is small here, so the planner would rightly scan it; with sequential scans
        # priced out, a plan that still scans market_data has no index path at all.
        await conn.execute("SET enable_seqscan = off")
        return {name: "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}")) for name, sql in queries}
    finally:
        await conn.close()


def test_every_sql_panel_and_variable_returns_rows(
    migrated_with_key: tuple[str, str], tmp_path: Path
) -> None:
    database_url, secret_key = migrated_with_key
    start, end = stored_through_the_api(database_url, secret_key, tmp_path)
    end = max(end, datetime.now(UTC)) + timedelta(minutes=5)  # and the signals just made (server clock)
    values: dict[str, str | list[str]] = {"symbol": SYMBOLS, "timeframe": "H1"}
    iso = "%Y-%m-%dT%H:%M:%SZ"
    queries = [(name, helpers.sql(t["rawSql"], start.strftime(iso), end.strftime(iso), values))
               for name, t in helpers.panel_targets(helpers.POSTGRES)]  # fmt: skip
    queries += [(name, v["query"]) for name, v in helpers.variables(helpers.POSTGRES)]
    assert len(queries) >= 9
    results = asyncio.run(run_all(database_url, queries))
    empty = [name for name, rows in results.items() if not rows or all(v is None for v in rows[0].values())]
    assert not empty, f"SQL panels without rows: {empty}"

    by_title = {name.split(": ", 1)[1].rsplit(" [", 1)[0]: rows for name, rows in results.items()}
    assert by_title["Records in the database"][0]["candles"] == 3 * (120 + 3)
    assert by_title["Records in the database"][0]["ticks"] == 2
    assert by_title["Active symbols"][0]["active symbols"] == len(SYMBOLS)
    assert {r["symbol"] for r in by_title["Last data received per symbol (top 20)"]} == set(SYMBOLS)
    assert {r["metric"]: r["bars"] for r in by_title["Distribution by symbol"]} == dict.fromkeys(SYMBOLS, 123)
    assert len(by_title["Price: major pairs"]) == 3 * 3  # H1 bars of the three symbols
    assert len(by_title["Latest market data (last 50)"]) == 50
    (champion,) = by_title["Model champion and age"]
    assert (champion["alias"], champion["model"], champion["symbol"]) == (
        "champion",
        "rf_ret_PLANT_H1:v1",
        "PLANT",
    )
    assert champion["beats_baselines"] is True and champion["verdict"] == "beats baselines"
    (change,) = by_title["Alias changes (last 20)"]
    assert (change["action"], change["version"]) == ("promote", "rf_ret_PLANT_H1:v1")
    assert change["actor"].startswith("mt5db train") and "beats its baselines" in change["reason"]
    assert {(r["symbol"], r["delivery"], r["source"], r["state"]): r["signals"]
            for r in by_title["Signals by state"]} == {("EURUSD", "live", "manual", "ACKED"): 1,
                                                        ("PLANT", "shadow", "model", "PENDING"): 1}  # fmt: skip
    (shadow,) = by_title["Shadow signals and why (last 20)"]
    assert shadow["model"] == "rf_ret_PLANT_H1:v1" and "too old to trade" in shadow["reason"]
    (variable,) = [rows for name, rows in results.items() if name.endswith("$symbol")]
    assert [r["symbol"] for r in variable] == sorted(SYMBOLS)

    # Cheap on a large table: every read of market_data has a path through its primary key.
    for name, plan in asyncio.run(plans(database_url, queries)).items():
        assert "Seq Scan on market_data" not in plan, f"{name}:\n{plan}"
