"""`mt5db migrate / keys / api / replay / demo` as a user runs them (subprocesses, real DB)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

import orjson
import pytest

from mt5db_api.db.migrations import CURRENT_VERSION, MIGRATIONS
from mt5db_core.net import free_port, wait_for_http

pytestmark = pytest.mark.postgres

MT5DB = [sys.executable, "-m", "mt5db_core.cli"]


def mt5db(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MT5DB, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip


def test_migrate_keys_api_replay(database_url, tmp_path, eurusd_h1_csv):
    done = mt5db("migrate", "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    every = ",".join(str(v) for v, _, _ in MIGRATIONS)
    assert done.stdout.startswith(f"schema version {CURRENT_VERSION} (applied: {every})")
    assert "applied: none" in mt5db("migrate", "--database-url", database_url).stdout

    created = mt5db(
        "keys", "create", "--database-url", database_url, "--name", "ea1", "--scopes", "ingest,read"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("mt5_")  # only the key on stdout
    assert key not in created.stderr
    listing = mt5db("keys", "list", "--database-url", database_url).stdout
    assert "\tea1\tingest,read\tactive" in listing and key not in listing
    assert (
        mt5db("keys", "create", "--database-url", database_url, "--name", "x", "--scopes", "root").returncode
        == 2
    )

    port = free_port()
    proc = subprocess.Popen([*MT5DB, "api", "--database-url", database_url, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
        csv_slice = tmp_path / "EURUSD_H1_slice.csv"
        with eurusd_h1_csv.open() as fh:
            csv_slice.write_text("".join(islice(fh, 1201)))
        replay = mt5db("replay", str(csv_slice), "--url", f"http://127.0.0.1:{port}", "--api-key", key,
                       "--batch", "100", "--concurrency", "4")  # fmt: skip
        assert replay.returncode == 0, replay.stderr
        assert "received=1200 inserted=1200 updated=0 duplicates=0 rejected=0" in replay.stdout
        assert "candles" in replay.stderr  # progress bar

        jsonl = tmp_path / "PDC_outbound_20250312.jsonl"
        candle = {"ts": "2025-03-12T14:37:00Z", "symbol": "USDCAD", "timeframe": "H1", "open": 1.4415,
                  "high": 1.44262, "low": 1.44107, "close": 1.44231, "volume": 2174}  # fmt: skip
        lines = [
            {"ts": "2025-03-12T14:37:01Z", "kind": "items:batch", "body": {"items": [candle]}},
            {"ts": "2025-03-12T14:38:01Z", "kind": "tick:batch", "body": {"ticks": []}},
            {"items": [dict(candle, volume=3000, high=1.445)]},
            dict(candle, symbol="AUDUSD"),
        ]
        jsonl.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
        replay = mt5db("replay", str(jsonl), "--url", f"http://127.0.0.1:{port}", "--api-key", key, "--quiet")
        assert replay.returncode == 0, replay.stderr
        assert "received=3 inserted=2 updated=1 duplicates=0 rejected=0" in replay.stdout

        revoked = mt5db("keys", "revoke", "--database-url", database_url, "--name", "ea1")
        assert revoked.returncode == 0, revoked.stderr
        assert "\tea1\tingest,read\trevoked" in mt5db("keys", "list", "--database-url", database_url).stdout
        assert mt5db("keys", "revoke", "--database-url", database_url, "--name", "ea1").returncode == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_api_refuses_missing_database_url():
    env = {k: v for k, v in os.environ.items() if k != "MT5DB_DATABASE_URL"}
    done = subprocess.run([*MT5DB, "api"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2
    assert "a database URL is required: pass --database-url or set MT5DB_DATABASE_URL" in done.stderr
    done = subprocess.run([*MT5DB, "api", "--database-url", "mysql://x"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "must start with postgresql://" in done.stderr


def test_demo_end_to_end_with_a_small_slice(tmp_path, eurusd_h1_csv):
    """The whole loop on the first 6,000 bars of the real file (the fewest the demo's eight
    walk-forward folds accept): ingest, a gated model, /predict, signals and the executor."""
    csv_slice = tmp_path / "EURUSD_H1_demo.csv"
    with eurusd_h1_csv.open() as fh:
        csv_slice.write_text("".join(islice(fh, 6001)))
    # As root the cluster runs as `postgres`, which cannot enter pytest's 0700 tmp_path.
    outer = Path(tempfile.mkdtemp(prefix="mt5db-demo-test-"))
    outer.chmod(0o755)
    data_dir = outer / "demo-data"
    done = mt5db("demo", "--csv", str(csv_slice), "--data-dir", str(data_dir), timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "received=6000 inserted=6000 updated=0 duplicates=0 rejected=0" in out
    assert "EURUSD H1: 6000 bars, 2021-10-18T00:00:00Z" in out
    assert "keys: EA (ingest,read,signals) mt5_" in out and "_************" in out
    # The real file has no edge after costs: the gate keeps the version a challenger, says why.
    assert "gate (ifBetter): rf_ret_EURUSD_H1:v1 NOT promoted, stays challenger" in out
    assert "GET /predict → 404: no champion for EURUSD H1" in out
    assert "serving hot-reloaded rf_ret_EURUSD_H1:v1 as champion" in out
    assert "GET /predict: rf_ret_EURUSD_H1:v1 at the close of 2022-10-03T05:00:00Z" in out
    assert "→ SHADOW: its report does not beat its baselines after costs" in out
    assert "executor: polls=" in out and "filled=1" in out and "acked after 1 attempt(s)" in out
    assert "manual live   BUY  state ACKED   deliveries 1" in out
    assert "model  shadow" in out and "deliveries 0" in out  # a shadow signal is never delivered
    assert "the loop closed in" in out and ": OK" in out
    assert not Path(data_dir).exists()  # removed without --keep
    shutil.rmtree(outer, ignore_errors=True)


def test_migrate_creates_the_application_and_read_only_roles(database_url):
    """The operator's migration Job passes both passwords; the roles then log in with them."""
    import asyncio
    import secrets
    from urllib.parse import urlsplit

    import asyncpg

    app_pw, ro_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    done = mt5db("migrate", "--database-url", database_url,
                 env={"MT5DB_APP_PASSWORD": app_pw, "MT5DB_READONLY_PASSWORD": ro_pw})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "role mt5db_app:" in done.stdout and "role mt5db_readonly:" in done.stdout
    half = mt5db("migrate", "--database-url", database_url, env={"MT5DB_APP_PASSWORD": app_pw})
    assert half.returncode == 2 and "go together" in half.stderr
    parts = urlsplit(database_url)

    async def who(role: str, password: str) -> str:
        conn = await asyncpg.connect(host=parts.hostname, port=parts.port, user=role, password=password,
                                     database=parts.path.lstrip("/"))  # fmt: skip
        try:
            return str(await conn.fetchval("SELECT current_user"))
        finally:
            await conn.close()

    assert asyncio.run(who("mt5db_app", app_pw)) == "mt5db_app"
    assert asyncio.run(who("mt5db_readonly", ro_pw)) == "mt5db_readonly"
