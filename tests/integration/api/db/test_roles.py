"""The application role writes data but no DDL; the read-only role reads and writes only the
model registry; both log in with their own passwords (a real PostgreSQL, a real login each)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from mt5db_api.db.migrations import migrate
from mt5db_api.db.roles import APP_ROLE, READONLY_ROLE, ensure_roles

pytestmark = pytest.mark.postgres


def as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))


async def test_each_role_can_do_its_duty_and_nothing_more(database_url):
    app_pw, ro_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    owner = await asyncpg.connect(database_url)
    try:
        await migrate(owner)
        first = await ensure_roles(owner, app_password=app_pw, readonly_password=ro_pw)
        again = await ensure_roles(owner, app_password=app_pw, readonly_password=ro_pw)
        assert any("created" in line for line in first) or all("updated" in line for line in first)
        assert all("updated" in line for line in again)
        assert not await owner.fetchval(
            "SELECT bool_or(rolsuper OR rolcreatedb OR rolcreaterole) FROM pg_roles WHERE rolname = ANY($1)",
            [APP_ROLE, READONLY_ROLE],
        )
    finally:
        await owner.close()

    app = await asyncpg.connect(as_role(database_url, APP_ROLE, app_pw))
    try:
        await app.execute(
            "INSERT INTO market_data (symbol, timeframe, ts, open, high, low, close) "
            "VALUES ('EURUSD', 'M1', now(), 1, 1, 1, 1)"
        )
        await app.execute("INSERT INTO ticks (symbol, ts, bid, ask) VALUES ('EURUSD', now(), 1, 1.1)")
        await app.execute("UPDATE api_keys SET revoked_at = now() WHERE false")
        # The trading loop: a signal created, leased, acknowledged; order feedback stored.
        sid = await app.fetchval(
            "INSERT INTO signals (id, symbol, timeframe, side, confidence, ttl_sec, expires_at, delivery, source)"
            " VALUES (gen_random_uuid(), 'EURUSD', 'H1', 'BUY', 0.6, 60, now() + interval '1 minute', 'live',"
            " 'manual') RETURNING id"
        )
        await app.execute("INSERT INTO signal_deliveries (signal_id, account_id) VALUES ($1, '7')", sid)
        await app.execute("UPDATE signals SET state = 'SENT' WHERE id = $1", sid)
        await app.execute(
            "INSERT INTO signal_acks (signal_id, status, body) VALUES ($1, 'FILLED', '{}'::jsonb)", sid
        )
        await app.execute("INSERT INTO order_feedback (body) VALUES ('{}'::jsonb)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("DELETE FROM signals")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the registry is training's
            await app.execute("INSERT INTO model_aliases SELECT * FROM model_aliases WHERE false")
        for ddl in ("CREATE TABLE evil (x int)", "DROP TABLE market_data", "TRUNCATE market_data",
                    "DELETE FROM market_data", "ALTER TABLE ticks ADD COLUMN x int"):  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(ddl)
    finally:
        await app.close()

    ro = await asyncpg.connect(as_role(database_url, READONLY_ROLE, ro_pw))
    try:
        assert await ro.fetchval("SELECT count(*) FROM market_data") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ro.execute("INSERT INTO ticks (symbol, ts, bid, ask) VALUES ('X', now(), 1, 1)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ro.execute("SELECT key_hash FROM api_keys")
        # Training registers a version (artifact first: versions name stored bytes) and moves aliases.
        await ro.execute(
            "INSERT INTO model_artifacts (sha256, bytes, size, media_type) VALUES ($1, '\\x00', 1, 'x')",
            "a" * 64,
        )
        vid = await ro.fetchval(
            "INSERT INTO model_versions (name, version, algo, task, symbol, timeframe, horizon, "
            "feature_set_version, train_range, data_sha256, code_git_sha, artifact_uri, artifact_sha256, "
            "run_name) VALUES ('m', 1, 'rf', 'cls', 'EURUSD', 'H1', 1, 'v1', 'r', 'd', 'c', 'u', $1, 'run') "
            "RETURNING id",
            "a" * 64,
        )
        await ro.execute(
            "INSERT INTO model_aliases (symbol, timeframe, model_kind, alias, version_id) "
            "VALUES ('EURUSD', 'H1', 'rf', 'challenger', $1)",
            vid,
        )
        await ro.execute("UPDATE model_aliases SET updated_at = now()")
        await ro.execute(
            "INSERT INTO model_alias_history (symbol, timeframe, model_kind, alias, version_id, action, "
            "actor, reason) VALUES ('EURUSD', 'H1', 'rf', 'challenger', $1, 'set', 'test', 'gate')",
            vid,
        )
        await ro.execute("DELETE FROM model_aliases")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # signals are the API's and serving's
            await ro.execute("UPDATE signals SET state = 'EXPIRED'")
    finally:
        await ro.close()
