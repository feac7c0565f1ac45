"""The executor EA's routes against a real API and PostgreSQL (docs/ea-contract.md §11).

The contract's example (f) byte for byte, the lease under 16 concurrent pollers (each signal at most
once per account, none expired), ack idempotence, unknown ids, the legacy forms, expiry by the
server's sweeper, shadow signals that are never delivered, scopes and 4xx reasons."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ..conftest import ApiEnv, Client, start_api

pytestmark = pytest.mark.postgres

EXAMPLE_ID = "5b0e4c1e-2f7a-4a51-9a8e-0c3d7f2b9e61"
EXAMPLE_ACK = (
    b'{"id":"5b0e4c1e-2f7a-4a51-9a8e-0c3d7f2b9e61","status":"FILLED","symbol":"USDCAD","side":"SELL",'
    b'"mt5_ticket":884120337,"price":1.44196,"ts_exec":"2025-03-12T14:16:04Z","account_id":"7730215"}'
)


@pytest.fixture(scope="module")
def env(postgres: Any) -> Iterator[ApiEnv]:
    """The API with a fast sweeper (expiry within 0.2 s) and no rate limit (16 pollers)."""
    started = start_api(postgres, rate_limit_per_s=0, signal_sweep_interval_s=0.2)
    yield started
    started.server.stop()


@pytest.fixture
def fresh(env: ApiEnv) -> ApiEnv:
    env.sql("TRUNCATE signals, signal_deliveries, signal_acks, order_feedback")
    return env


def _signal(admin: Client, **fields: Any) -> str:
    body = {"symbol": "EURUSD", "timeframe": "H1", "side": "BUY", "confidence": 0.6, "ttl_sec": 90} | fields
    reply = admin.post("/signals", orjson.dumps(body))
    assert reply.status in (200, 201), reply.body
    return str(reply.json()["id"])


def _next(client: Client, query: str) -> list[dict[str, Any]]:
    reply = client.get(f"/signals/next?{query}")
    assert reply.status == 200, reply.body
    signals: list[dict[str, Any]] = reply.json()["signals"]
    return signals


def test_the_contracts_example_f(fresh: ApiEnv) -> None:
    admin, ea = fresh.client(fresh.keys.admin), fresh.client(fresh.keys.signals_only)
    body = {"id": EXAMPLE_ID, "symbol": "USDCAD", "timeframe": "M15", "side": "sell", "confidence": 0.41,
            "ttl_sec": 90, "sl_pips": 20, "tp_pips": 40, "meta": {"model": "rf_ret_h5", "ver": "3"},
            "account_id": "7730215"}  # fmt: skip
    created = admin.post("/signals", orjson.dumps(body))
    assert created.status == 201 and created.json()["id"] == EXAMPLE_ID
    reply = ea.get("/signals/next?account_id=7730215&symbols=AUDUSD,USDCAD&timeframe=M15")
    assert reply.status == 200
    (signal,) = reply.json()["signals"]
    meta = signal.pop("meta")
    assert signal == {"id": EXAMPLE_ID, "symbol": "USDCAD", "timeframe": "M15", "side": "SELL",
                      "confidence": 0.41, "ttl_sec": 90, "sl_pips": 20, "tp_pips": 40}  # fmt: skip
    assert list(reply.json()["signals"][0]) == ["id", "symbol", "timeframe", "side", "confidence", "ttl_sec",
                                                "sl_pips", "tp_pips", "meta"]  # fmt: skip
    assert meta["model"] == "rf_ret_h5" and meta["ver"] == "3" and meta["source"] == "manual"
    # a targeted signal is SENT once delivered: the next poll finds nothing
    assert _next(ea, "account_id=7730215&symbols=AUDUSD,USDCAD&timeframe=M15") == []
    assert fresh.value("SELECT state FROM signals WHERE id = $1", uuid.UUID(EXAMPLE_ID)) == "SENT"
    ack = ea.post("/signals/ack", EXAMPLE_ACK)
    assert (ack.status, ack.body) == (200, b'{"ok":true}')
    # idempotent: the same (id, status) again changes nothing
    again = ea.post("/signals/ack", EXAMPLE_ACK)
    assert (again.status, again.body) == (200, b'{"ok":true}')
    assert fresh.sql("SELECT count(*) FROM signal_acks") == "1"
    assert fresh.value("SELECT state FROM signals WHERE id = $1", uuid.UUID(EXAMPLE_ID)) == "ACKED"
    # a different status is a further ack; the signal stays ACKED
    rejected = EXAMPLE_ACK.replace(b'"FILLED"', b'"rejected"')
    assert ea.post("/signals/ack", rejected).status == 200
    assert fresh.sql("SELECT string_agg(status, ',' ORDER BY status) FROM signal_acks") == "FILLED,REJECTED"
    stored = orjson.loads(fresh.sql("SELECT body FROM signal_acks WHERE status = 'FILLED'"))
    assert stored == orjson.loads(EXAMPLE_ACK)


def test_unknown_ids_and_the_legacy_forms(fresh: ApiEnv) -> None:
    admin, ea = fresh.client(fresh.keys.admin), fresh.client(fresh.keys.signals_only)
    unknown = {"id": str(uuid.uuid4()), "status": "FILLED", "symbol": "EURUSD", "side": "BUY"}
    reply = ea.post("/signals/ack", orjson.dumps(unknown))
    assert (reply.status, reply.json()) == (200, {"ok": True, "known": False})
    not_ours = unknown | {"id": "ticket-42"}  # could never have been issued by us
    assert ea.post("/signals/ack", orjson.dumps(not_ours)).json() == {"ok": True, "known": False}
    first, second = _signal(admin, symbol="GBPUSD"), _signal(admin, symbol="GBPUSD")
    legacy = ea.post("/signals/ack", orjson.dumps({"keys": [first, second, str(uuid.uuid4()), "x"]}))
    assert (legacy.status, legacy.json()) == (200, {"ok": True, "acknowledged": 2})
    assert fresh.sql("SELECT count(*) FROM signals WHERE state = 'ACKED'") == "2"
    # §11.3: symbol= for symbols=, no timeframe means M1, no account means broadcast only
    m1 = _signal(admin, symbol="AUDUSD", timeframe="M1")
    _signal(admin, symbol="AUDUSD", timeframe="M1", account_id="111")
    (got,) = _next(ea, "symbol=AUDUSD")
    assert got["id"] == m1 and got["timeframe"] == "M1"
    assert _next(ea, "symbol=AUDUSD") == []  # the targeted one is not for a poller without an account
    (mine,) = _next(ea, "symbol=AUDUSD&account_id=111")
    assert mine["id"] != m1
    # timeframe by MT5 code
    h1 = _signal(admin, symbol="EURJPY", timeframe="H1")
    assert [s["id"] for s in _next(ea, "symbols=EURJPY&timeframe=16385&account_id=5")] == [h1]
    # GET /signals/latest: the old shape, read-only (no delivery recorded)
    latest = ea.get("/signals/latest?symbol=EURJPY").json()
    assert latest["symbol"] == "EURJPY" and latest["signal"] == "buy" and isinstance(latest["ts"], int)
    assert ea.get("/signals/latest?symbol=NZDUSD").json() == {
        "symbol": "NZDUSD",
        "signal": "flat",
        "ts": None,
    }
    before = fresh.sql("SELECT count(*) FROM signal_deliveries")
    ea.get("/signals/latest?symbol=EURJPY")
    assert fresh.sql("SELECT count(*) FROM signal_deliveries") == before
    # POST /orders/feedback: stored as sent
    body = {
        "signal_id": h1,
        "order_id": 5,
        "status": "filled",
        "price": 1.1,
        "slippage": 0.2,
        "message": "ok",
        "ts": 1,
    }
    fb = ea.post("/orders/feedback", orjson.dumps(body))
    assert fb.status == 200 and fb.json()["ok"] is True
    assert orjson.loads(fresh.sql("SELECT body FROM order_feedback")) == body


def test_bad_input_is_a_4xx_with_a_reason(fresh: ApiEnv) -> None:
    admin, ea = fresh.client(fresh.keys.admin), fresh.client(fresh.keys.signals_only)
    cases = [
        ("GET", "/signals/next?timeframe=H1", None, {"detail": "missing_symbols", "field": "symbols"}),
        ("GET", "/signals/next?symbols=EUR/USD", None, {"detail": "invalid_symbol", "field": "symbols"}),
        ("GET", "/signals/next?symbols=EURUSD&timeframe=H7", None, {"detail": "invalid_timeframe", "field": "timeframe"}),
        ("GET", "/signals/next?symbols=EURUSD&account_id=a%20b", None, {"detail": "invalid_account_id", "field": "account_id"}),
        ("POST", "/signals/ack", b"not json", {"detail": "invalid_json"}),
        ("POST", "/signals/ack", b"[1]", {"detail": "not_an_object"}),
        ("POST", "/signals/ack", b"", {"detail": "empty_body"}),
        ("POST", "/signals/ack", b'{"id":"x","symbol":"EURUSD","side":"BUY"}', {"detail": "missing_field", "field": "status"}),
        ("POST", "/signals/ack", b'{"id":"x","status":"DONE","symbol":"EURUSD","side":"BUY"}', {"detail": "invalid_status", "field": "status"}),
        ("POST", "/signals/ack", b'{"id":"x","status":"FILLED","symbol":"EURUSD","side":"HOLD"}', {"detail": "invalid_side", "field": "side"}),
        ("POST", "/signals/ack", b'{"id":"x","status":"FILLED","side":"BUY"}', {"detail": "missing_field", "field": "symbol"}),
        ("POST", "/signals/ack", b'{"status":"FILLED","symbol":"EURUSD","side":"BUY"}', {"detail": "missing_field", "field": "id"}),
        ("POST", "/signals/ack", b'{"id":"x","status":"FILLED","symbol":"EURUSD","side":"BUY","price":"1.1"}', {"detail": "invalid_price", "field": "price"}),
        ("POST", "/signals/ack", b'{"keys":"abc"}', {"detail": "invalid_keys", "field": "keys"}),
        ("POST", "/orders/feedback", b"[]", {"detail": "not_an_object"}),
    ]  # fmt: skip
    for method, path, body, expected in cases:
        reply = ea.request(method, path, body)
        assert (reply.status, reply.json()) == (400, expected), (path, body)
    bad_signals = [
        (b'{"symbol":"EURUSD","side":"BUY"}', {"detail": "missing_field", "field": "confidence"}),
        (b'{"symbol":"EURUSD","side":"BUY","confidence":1.5}', {"detail": "invalid_confidence", "field": "confidence"}),
        (b'{"symbol":"EURUSD","side":"BUY","confidence":0.5,"ttl_sec":0}', {"detail": "invalid_ttl_sec", "field": "ttl_sec"}),
        (b'{"symbol":"EURUSD","side":"BUY","confidence":0.5,"meta":[1]}', {"detail": "invalid_meta", "field": "meta"}),
        (b'{"symbol":"EURUSD","side":"BUY","confidence":0.5,"id":"nope"}', {"detail": "invalid_id", "field": "id"}),
    ]  # fmt: skip
    for body, expected in bad_signals:
        reply = admin.post("/signals", body)
        assert (reply.status, reply.json()) == (400, expected), body
    assert admin.post("/signals/ack", b"x" * (70 * 1024)).status == 413
    # scopes: signals for the EA's routes, admin for creating, read for the list
    assert fresh.client(fresh.keys.read_only).get("/signals/next?symbols=EURUSD").status == 403
    assert ea.post("/signals", b'{"symbol":"EURUSD","side":"BUY","confidence":0.5}').status == 403
    assert ea.get("/signals/next?symbols=EURUSD", key=None).status == 401
    assert fresh.client(fresh.keys.read_only).get("/signals?delivery=shadow").status == 200
    assert fresh.sql("SELECT count(*) FROM signals") == "0"


def test_expiry_is_the_servers_and_shadow_signals_are_never_delivered(fresh: ApiEnv) -> None:
    admin, ea = fresh.client(fresh.keys.admin), fresh.client(fresh.keys.signals_only)
    short = _signal(admin, symbol="USDCHF", ttl_sec=1)
    time.sleep(1.6)
    assert _next(ea, "symbols=USDCHF&timeframe=H1") == []  # never delivered once expired
    deadline = time.monotonic() + 5
    while fresh.value("SELECT state FROM signals WHERE id = $1", uuid.UUID(short)) != "EXPIRED":
        assert time.monotonic() < deadline, "the sweeper did not mark the signal expired"
        time.sleep(0.1)
    metrics = fresh.client().get("/prometheus").body.decode()
    assert 'signals_expired_total{delivery="live"} 1.0' in metrics
    # a shadow signal (what serving stores for every model that may not trade) is visible, never sent
    fresh.sql(
        "INSERT INTO signals (id, symbol, timeframe, side, confidence, ttl_sec, meta, expires_at, delivery, "
        "source, shadow_reason) VALUES (gen_random_uuid(), 'USDCHF', 'H1', 'BUY', 0.7, 600, '{}', "
        "now() + interval '10 minutes', 'shadow', 'model', 'the report does not beat its baselines')"
    )
    assert _next(ea, "symbols=USDCHF&timeframe=H1&account_id=1") == []
    assert _next(ea, "symbols=USDCHF&timeframe=H1") == []
    assert ea.get("/signals/latest?symbol=USDCHF").json()["signal"] == "buy"  # the expired live one
    listed = (
        fresh.client(fresh.keys.read_only).get("/signals?symbol=USDCHF&delivery=shadow").json()["signals"]
    )
    assert [(s["delivery"], s["shadow_reason"], s["deliveries"]) for s in listed] == [
        ("shadow", "the report does not beat its baselines", 0)
    ]


def test_broadcast_signals_reach_each_account_once(fresh: ApiEnv) -> None:
    admin, ea = fresh.client(fresh.keys.admin), fresh.client(fresh.keys.signals_only)
    older = _signal(admin, symbol="XAUUSD")
    newer = _signal(admin, symbol="XAUUSD")
    for account in ("1001", "1002"):
        got = [_next(ea, f"symbols=XAUUSD&timeframe=H1&account_id={account}") for _ in range(3)]
        assert [[s["id"] for s in g] for g in got] == [[newer], [older], []]  # newest first, then nothing
    assert fresh.sql("SELECT count(*) FROM signal_deliveries") == "4"
    assert fresh.sql("SELECT string_agg(DISTINCT state, ',') FROM signals") == "PENDING"  # still for others


def _drain(port: int, key: str, query: str) -> list[str]:
    """One poller: poll until an empty answer; the ids it received."""
    client = Client("127.0.0.1", port, key)
    ids: list[str] = []
    try:
        while True:
            reply = client.get(f"/signals/next?{query}")
            assert reply.status == 200, reply.body
            signals = reply.json()["signals"]
            if not signals:
                return ids
            ids.append(signals[0]["id"])
    finally:
        client.conn.close()


@pytest.mark.parametrize("target", ["account", "broadcast"])
def test_sixteen_pollers_over_a_thousand_signals(fresh: ApiEnv, target: str) -> None:
    """Each signal delivered at most once per account under 16 concurrent pollers; none expired."""
    account = "7730215" if target == "account" else None
    fresh.value(
        "INSERT INTO signals (id, symbol, timeframe, side, confidence, ttl_sec, meta, account_id, ts, expires_at, "
        "delivery, source) SELECT gen_random_uuid(), 'EURUSD', 'H1', 'BUY', 0.6, 600, '{}', $1::text, "
        "now() - g * interval '1 millisecond', now() + interval '10 minutes', 'live', 'manual' "
        "FROM generate_series(1, 1000) g",
        account,
    )
    # 100 already-expired signals among them (no sweeper pass needed: the lease itself refuses them)
    fresh.value(
        "INSERT INTO signals (id, symbol, timeframe, side, confidence, ttl_sec, meta, account_id, ts, expires_at, "
        "delivery, source) SELECT gen_random_uuid(), 'EURUSD', 'H1', 'SELL', 0.4, 1, '{}', $1::text, "
        "now() - interval '1 hour', now() - interval '1 minute', 'live', 'manual' FROM generate_series(1, 100) g",
        account,
    )
    query = "account_id=7730215&symbols=EURUSD&timeframe=H1"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: _drain(fresh.port, fresh.keys.signals_only, query), range(16)))
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 1000  # every live signal exactly once, no duplicates
    expired = set(fresh.sql("SELECT string_agg(id::text, ',') FROM signals WHERE side = 'SELL'").split(","))
    assert not expired & set(ids)
    assert sum(1 for r in results if r) > 1  # the pollers really shared the work
    assert fresh.sql("SELECT count(*) FROM signal_deliveries") == "1000"
