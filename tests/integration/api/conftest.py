"""Fixtures for the data-plane tests: a migrated database, keys per scope, the API on loopback.

The API runs as a real uvicorn server in a thread (uvloop + httptools, like production), and the
tests speak raw HTTP/1.1 to it, so the bytes the EA sends are the bytes the server sees.
"""

from __future__ import annotations

import asyncio
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from mt5db_api.db import api_keys as keys_db
from mt5db_api.db.migrations import migrate
from mt5db_api.server import ThreadedServer
from mt5db_api.settings import Settings
from mt5db_core import apikeys
from mt5db_core.net import free_port
from mt5db_local.postgres import LocalPostgres

EA_BODIES = Path(__file__).parent / "ea_bodies"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """Raw HTTP/1.1 over one keep-alive connection; bodies are sent byte for byte."""

    def __init__(self, host: str, port: int, key: str | None = None) -> None:
        self.host, self.port, self.key = host, port, key
        self.conn = http.client.HTTPConnection(host, port, timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        key: str | None = "default",
    ) -> Reply:  # fmt: skip
        hdrs = {"Content-Type": "application/json", "Accept": "application/json"}
        use_key = self.key if key == "default" else key
        if use_key:
            hdrs["X-API-Key"] = use_key
        hdrs.update(headers or {})
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
        data = resp.read()
        return Reply(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})

    def post(self, path: str, body: bytes, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)


@dataclass
class Keys:
    ingest_read: str
    read_only: str
    signals_only: str
    signals_read: str  # what the executor needs: poll/ack and the candles it fills against
    admin: str
    revoked: str
    revoked_id: str


def run(coro: Any) -> Any:
    """Run a coroutine from a sync test (the API has its own loop in its thread)."""
    return asyncio.run(coro)


async def prepare_database(dsn: str) -> Keys:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        made: dict[str, apikeys.NewKey] = {}
        for name, scopes in [("ingest_read", ["ingest", "read"]), ("read_only", ["read"]),
                             ("signals_only", ["signals"]), ("signals_read", ["signals", "read"]),
                             ("admin", ["admin"]), ("revoked", ["ingest"])]:  # fmt: skip
            key = apikeys.generate_key()
            await keys_db.insert_key(conn, key_id=key.key_id, name=name, key_hash=key.key_hash, scopes=scopes)
            made[name] = key
        await keys_db.revoke_key(conn, key_id=made["revoked"].key_id)
    finally:
        await conn.close()
    return Keys(
        ingest_read=made["ingest_read"].secret_key, read_only=made["read_only"].secret_key,
        signals_only=made["signals_only"].secret_key, signals_read=made["signals_read"].secret_key,
        admin=made["admin"].secret_key,
        revoked=made["revoked"].secret_key, revoked_id=made["revoked"].key_id,
    )  # fmt: skip


@dataclass
class ApiEnv:
    """A running API against its own migrated database."""

    server: ThreadedServer
    dsn: str
    db: str
    keys: Keys
    postgres: LocalPostgres

    @property
    def port(self) -> int:
        return self.server.settings.port

    def client(self, key: str | None = None) -> Client:
        return Client("127.0.0.1", self.port, key or self.keys.ingest_read)

    def sql(self, query: str) -> str:
        return self.postgres.psql(query, database=self.db)

    def value(self, query: str, *args: Any) -> Any:
        """One value of a query with bound parameters (for values a test got from the API)."""

        async def go() -> Any:
            conn = await asyncpg.connect(self.dsn)
            try:
                return await conn.fetchval(query, *args)
            finally:
                await conn.close()

        return run(go())


def start_api(postgres: LocalPostgres, **overrides: Any) -> ApiEnv:
    db = f"api_{uuid.uuid4().hex[:10]}"
    dsn = postgres.create_database(db)
    keys = run(prepare_database(dsn))
    settings = Settings(database_url=dsn, port=free_port(), **overrides)
    server = ThreadedServer(settings).start()
    return ApiEnv(server=server, dsn=dsn, db=db, keys=keys, postgres=postgres)


@pytest.fixture(scope="module")
def api(postgres: LocalPostgres) -> Iterator[ApiEnv]:
    """The API with production defaults except a disabled rate limiter (tests post fast)."""
    env = start_api(postgres, rate_limit_per_s=0)
    yield env
    env.server.stop()


@pytest.fixture
def clean(api: ApiEnv) -> ApiEnv:
    """Empty market_data and ticks before a test that counts rows."""
    api.sql("TRUNCATE market_data, ticks")
    return api


@pytest.fixture
def client(clean: ApiEnv) -> Iterator[Client]:
    c = clean.client()
    yield c
    c.conn.close()


def ea_body(name: str) -> bytes:
    """The exact bytes of a docs/ea-contract.md §13 example body."""
    return (EA_BODIES / f"{name}.json").read_bytes()


@pytest.fixture(name="ea_body")
def ea_body_fixture() -> Any:
    return ea_body


@pytest.fixture
def api_factory(postgres: LocalPostgres) -> Iterator[Any]:
    """Start extra API instances with their own settings and database (stopped afterwards)."""
    started: list[ApiEnv] = []

    def make(**overrides: Any) -> ApiEnv:
        env = start_api(postgres, **overrides)
        started.append(env)
        return env

    yield make
    for env in started:
        env.server.stop()
