"""The postgres fixture is a real server: SQL round-trips through a created table."""

import asyncio

import asyncpg
import pytest

from mt5db_local.postgres import LocalPostgres

pytestmark = pytest.mark.postgres


def test_select_from_created_table(database_url: str) -> None:
    async def roundtrip() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("CREATE TABLE smoke (id int PRIMARY KEY, note text NOT NULL)")
            await conn.executemany("INSERT INTO smoke VALUES ($1, $2)", [(1, "a"), (2, "b")])
            return await conn.fetch("SELECT id, note FROM smoke ORDER BY id")
        finally:
            await conn.close()

    rows = asyncio.run(roundtrip())
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]


def test_server_is_postgresql_15_on_loopback(postgres: LocalPostgres) -> None:
    assert postgres.server_version().startswith("15.")
    assert postgres.psql("SHOW listen_addresses") == "127.0.0.1"


def test_wrong_password_is_refused(postgres: LocalPostgres) -> None:
    """The cluster uses SCRAM with a generated password: no trust auth on TCP."""
    bad = postgres.dsn().replace(postgres.password, "not-the-password")

    async def connect() -> None:
        conn = await asyncpg.connect(bad)
        await conn.close()

    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(connect())
