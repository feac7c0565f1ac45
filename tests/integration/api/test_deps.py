"""Auth (X-API-Key or Bearer, hashed keys, scopes, revocation) and the per-key rate limit."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.postgres

UNAUTHORIZED = (401, b'{"detail":"unauthorized"}')


def test_health_needs_no_key(api):
    reply = api.client().get("/health", key=None)
    assert (reply.status, reply.body) == (200, b'{"status":"ok"}')


@pytest.mark.parametrize("path", ["/ingest", "/ingest_batch", "/ingest/tick"])
def test_no_key_is_401(api, ea_body, path):
    reply = api.client().post(path, ea_body("a_rebuild_bare_candle"), key=None)
    assert (reply.status, reply.body) == UNAUTHORIZED


@pytest.mark.parametrize(
    "key",
    ["wrong", "mt5_00000000_nope", "mt5_zzzzzzzz_" + "x" * 43, "Bearer", " "],
)
def test_wrong_key_is_401(api, ea_body, key):
    reply = api.client().post("/ingest", ea_body("a_rebuild_bare_candle"), key=key)
    assert (reply.status, reply.body) == UNAUTHORIZED


def test_right_id_wrong_secret_is_401(api, ea_body):
    forged = api.keys.ingest_read[:-4] + "AAAA"
    assert (lambda r: (r.status, r.body))(
        api.client().post("/ingest", ea_body("a_rebuild_bare_candle"), key=forged)
    ) == UNAUTHORIZED


def test_revoked_key_is_401(api, ea_body):
    reply = api.client().post("/ingest", ea_body("a_rebuild_bare_candle"), key=api.keys.revoked)
    assert (reply.status, reply.body) == UNAUTHORIZED


def test_wrong_scope_is_403(api, ea_body):
    reply = api.client().post("/ingest", ea_body("a_rebuild_bare_candle"), key=api.keys.read_only)
    assert (reply.status, reply.body) == (403, b'{"detail":"forbidden","required_scope":"ingest"}')
    reply = api.client().get("/candles?symbol=EURUSD&timeframe=H1", key=api.keys.signals_only)
    assert (reply.status, reply.body) == (403, b'{"detail":"forbidden","required_scope":"read"}')
    assert api.client().get("/candles?symbol=EURUSD&timeframe=H1", key=api.keys.read_only).status == 200
    assert api.client().get("/metrics", key=api.keys.admin).status == 200


def test_bearer_and_lowercase_header(api, ea_body):
    body = ea_body("a_rebuild_bare_candle")
    c = api.client()
    assert (
        c.post("/ingest", body, key=None, headers={"Authorization": f"Bearer {api.keys.ingest_read}"}).status
        == 200
    )
    assert (
        c.post("/ingest", body, key=None, headers={"authorization": f"bearer {api.keys.ingest_read}"}).status
        == 200
    )
    assert c.post("/ingest", body, key=None, headers={"x-api-key": api.keys.ingest_read}).status == 200
    assert (
        c.post("/ingest", body, key=None, headers={"Authorization": f"Basic {api.keys.ingest_read}"}).status
        == 401
    )


def test_revocation_takes_effect_within_the_cache_ttl(api_factory, ea_body):
    env = api_factory(auth_cache_ttl_s=1.0, rate_limit_per_s=0)
    c = env.client()
    body = ea_body("a_rebuild_bare_candle")
    assert c.post("/ingest", body).status == 200
    env.sql("UPDATE api_keys SET revoked_at = now() WHERE name = 'ingest_read'")
    time.sleep(1.2)
    assert (lambda r: (r.status, r.body))(c.post("/ingest", body)) == UNAUTHORIZED


def test_rate_limit_429_with_retry_after_and_counted(api_factory, ea_body):
    env = api_factory(rate_limit_per_s=1.0, rate_limit_burst=3)
    c = env.client()
    body = ea_body("a_rebuild_bare_candle")
    statuses = [c.post("/ingest", body).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = c.post("/ingest", body)
    assert limited.status == 429
    assert limited.body == b'{"detail":"rate_limited","retry_after":1}'
    assert limited.headers["retry-after"] == "1"
    # Buckets are per key: another key is not limited.
    assert c.post("/ingest", body, key=env.keys.admin).status == 200
    text = c.get("/prometheus", key=None).body.decode()
    assert "ingest_rate_limited_total 1.0" in text
    assert 'ingest_requests_total{method="POST",route="/ingest",status="429"} 1.0' in text
    time.sleep(1.05)
    assert c.post("/ingest", body).status == 200
