"""Serving against real parts: PostgreSQL with recent planted candles in market_data, a champion
trained through the real `mt5db train --promote ifBetter`, the serving app and the API on loopback."""

from __future__ import annotations

import asyncio
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import asyncpg
import orjson
import pandas as pd
import pytest

from mt5db_api.db import api_keys as keys_db
from mt5db_api.db.migrations import migrate
from mt5db_api.server import ThreadedServer
from mt5db_api.settings import Settings
from mt5db_core import apikeys
from mt5db_core.cli import main
from mt5db_core.net import free_port
from mt5db_harness.synthetic import planted_candles
from mt5db_local.postgres import LocalPostgres
from mt5db_serving.server import ThreadedServing
from mt5db_serving.settings import ServingSettings

SYMBOL = "PLANT"
COLUMNS = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
FAST = ["--n-estimators", "20", "--folds", "3", "--test-bars", "300", "--bootstrap-reps", "100"]
FAST += ["--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1", "--horizons", "1,5"]


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Http:
    """Raw HTTP/1.1 on one keep-alive connection (one per thread)."""

    def __init__(self, port: int, key: str | None) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        headers = {"Content-Type": "application/json"} | ({"X-API-Key": self.key} if self.key else {})
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        return Reply(resp.status, resp.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: bytes) -> Reply:
        return self.request("POST", path, body)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Stack:
    postgres: LocalPostgres
    db: str
    dsn: str
    read_key: str
    ea_key: str  # signals + read: the executor
    admin_key: str
    candles: pd.DataFrame
    serving: ThreadedServing
    api: ThreadedServer
    tmp: Any

    def sql(self, query: str) -> str:
        return self.postgres.psql(query, database=self.db)

    def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.dsn)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(go())

    def train(self, run: str, *extra: str) -> int:
        out = self.tmp / run
        argv = ["train", "--model", "rf", "--database-url", self.dsn, "--symbol", SYMBOL, "--timeframe", "H1"]
        return main([*argv, "--run", run, "--out", str(out), *FAST, *extra])

    def serving_http(self, key: str | None = "read") -> Http:
        return Http(self.serving.settings.port, self.read_key if key == "read" else key)


async def _prepare(dsn: str, candles: pd.DataFrame) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        keys = {}
        for name, scopes in (("read", ["read"]), ("ea", ["signals", "read"]), ("admin", ["admin"])):
            key = apikeys.generate_key()
            await keys_db.insert_key(conn, key_id=key.key_id, name=name, key_hash=key.key_hash, scopes=scopes)
            keys[name] = key.secret_key
        records = [
            (SYMBOL, "H1", pd.Timestamp(ts).to_pydatetime().replace(tzinfo=UTC), r.open, r.high, r.low, r.close,
             int(r.volume))
            for ts, r in zip(candles.index, candles.itertuples(index=False), strict=True)
        ]  # fmt: skip
        await conn.copy_records_to_table("market_data", records=records, columns=COLUMNS)
        return keys
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def stack(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Recent candles (the newest bar is forming, the one before it closed minutes ago), one champion."""
    db = f"serve_{uuid.uuid4().hex[:10]}"
    dsn = postgres.create_database(db)
    now = pd.Timestamp.now("UTC").tz_localize(None)
    candles = planted_candles(3000, end=now, seed=4, weekends=True)
    keys = asyncio.run(_prepare(dsn, candles))
    tmp = tmp_path_factory.mktemp("serving-runs")
    stack = Stack(postgres, db, dsn, keys["read"], keys["ea"], keys["admin"], candles, None, None, tmp)  # type: ignore[arg-type]
    assert stack.train("champion-1", "--promote", "ifBetter") == 0
    serving = ThreadedServing(
        ServingSettings(
            database_url=dsn,
            port=free_port(),
            signal_interval_s=0.3,
            reload_poll_s=1.0,
            rate_limit_per_s=0,
            closed_after_s=4 * 3600,
        )
    ).start()
    api = ThreadedServer(Settings(database_url=dsn, port=free_port(), rate_limit_per_s=0)).start()  # type: ignore[arg-type]
    stack.serving, stack.api = serving, api
    yield stack
    serving.stop()
    api.stop()
