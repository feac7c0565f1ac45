"""The executor EA's routes (docs/ea-contract.md §11) and their views for people.

| route | scope | what |
|---|---|---|
| `GET /signals/next` | signals | at most one signal, leased in one committed statement (§11.1, §11.3) |
| `POST /signals/ack` | signals | idempotent ack; unknown id → `"known":false`; legacy `{"keys":[...]}` |
| `GET /signals/latest?symbol=` | signals | the legacy read-only view (no state change, no delivery) |
| `POST /orders/feedback` | signals | stored as sent |
| `POST /signals` | admin | a manual signal (people, tests, the demo) |
| `GET /signals` | read | recent signals, live and shadow, with their state and shadow reason |

`/signals/next` and `/signals/ack` are the EA's polling loop, so they take the ingest routes' hot
path: the scope check awaited first thing, settings and pool from app.state, one statement, the
answer built with orjson (decision 0003).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from mt5db_api.db import signals as signals_db
from mt5db_api.deps import connection, require_scope
from mt5db_api.errors import ApiError
from mt5db_api.signal_fields import (
    Ack,
    FieldError,
    parse_ack,
    parse_feedback,
    parse_new_signal,
    parse_poll,
)
from mt5db_api.timeutil import iso_z

router = APIRouter(tags=["signals"])
require_signals = require_scope("signals")
require_admin = require_scope("admin")
require_read = require_scope("read")

MAX_BODY_BYTES = 64 * 1024  # an ack is ~250 bytes; a manual signal with meta a few kB
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a value that cannot be read (the reason and field are named)"},
    401: {"description": "unauthorized"},
    403: {"description": "missing scope"},
    503: {"description": "database unavailable"},
}
_EMPTY = b'{"signals":[]}'


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _bad(err: FieldError) -> ApiError:
    return ApiError(400, err.body())


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, {"detail": "body_too_large", "limit_bytes": MAX_BODY_BYTES})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, {"detail": "body_too_large", "limit_bytes": MAX_BODY_BYTES})
        chunks.append(chunk)
    return b"".join(chunks)


def _wire(row: Any) -> dict[str, Any]:
    """One signal as §11.1 sends it."""
    return {
        "id": str(row["id"]),
        "symbol": row["symbol"],
        "timeframe": row["timeframe"],
        "side": row["side"],
        "confidence": row["confidence"],
        "ttl_sec": row["ttl_sec"],
        "sl_pips": row["sl_pips"] or 0,
        "tp_pips": row["tp_pips"] or 0,
        "meta": orjson.Fragment(row["meta"]) if isinstance(row["meta"], str) else row["meta"],
    }


@router.get("/signals/next", responses=_ERRORS)
async def signals_next(request: Request) -> Response:
    """At most one signal: the newest pending live one for these symbols and timeframe, broadcast or
    for this account, never expired; delivered at most once per (account, id)."""
    await require_signals(request)
    try:
        poll = parse_poll(request.query_params)
    except FieldError as err:
        raise _bad(err) from None
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        row = await signals_db.lease_next(
            conn, symbols=poll.symbols, timeframe=poll.timeframe, account_id=poll.account_id
        )
    if row is None:
        return Response(_EMPTY, media_type="application/json")
    state.metrics.signals_delivered.inc()
    return _json({"signals": [_wire(row)]})


@router.post("/signals/ack", responses=_ERRORS)
async def signals_ack(request: Request) -> Response:
    """Record what the EA did; a repeat changes nothing; an unknown id answers `"known":false`."""
    await require_signals(request)
    try:
        parsed = parse_ack(await _body(request))
    except FieldError as err:
        raise _bad(err) from None
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        if isinstance(parsed, Ack):
            if parsed.signal_id is None:
                return _json({"ok": True, "known": False})
            known, recorded = await signals_db.record_ack(
                conn, signal_id=parsed.signal_id, status=parsed.status, symbol=parsed.symbol,
                side=parsed.side, mt5_ticket=parsed.mt5_ticket, price=parsed.price, ts_exec=parsed.ts_exec,
                account_id=parsed.account_id, body=parsed.body,
            )  # fmt: skip
            if recorded:
                state.metrics.signals_acked.labels(parsed.status).inc()
            return _json({"ok": True} if known else {"ok": True, "known": False})
        acknowledged = 0
        for signal_id in parsed.ids:
            known, recorded = await signals_db.record_ack(
                conn, signal_id=signal_id, status=signals_db.LEGACY_ACK_STATUS, symbol=None, side=None,
                mt5_ticket=None, price=None, ts_exec=None, account_id=None, body={"keys": [str(signal_id)]},
            )  # fmt: skip
            acknowledged += int(known)
            if recorded:
                state.metrics.signals_acked.labels(signals_db.LEGACY_ACK_STATUS).inc()
    return _json({"ok": True, "acknowledged": acknowledged})


_LEGACY_SIDE = {"BUY": "buy", "SELL": "sell", "CLOSE": "flat", "NONE": "flat"}


@router.get("/signals/latest", responses=_ERRORS)
async def signals_latest(request: Request) -> Response:
    """The legacy `{"symbol","signal":"buy|sell|flat","ts":<epoch ms>}` of the newest live signal of
    a symbol: read-only, no delivery. Without one: `"signal":"flat"` and `"ts":null`."""
    await require_signals(request)
    symbol = request.query_params.get("symbol")
    try:
        if symbol is None:
            raise FieldError("missing_field", "symbol")
        parse_poll({"symbols": symbol})
    except FieldError as err:
        raise _bad(err) from None
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        row = await signals_db.latest_live(conn, symbol)
    if row is None:
        return _json({"symbol": symbol, "signal": "flat", "ts": None})
    return _json(
        {"symbol": symbol, "signal": _LEGACY_SIDE[row["side"]], "ts": int(row["ts"].timestamp() * 1000)}
    )


@router.post("/orders/feedback", responses=_ERRORS)
async def orders_feedback(request: Request) -> Response:
    """A sink for older executors: any JSON object, stored as sent."""
    await require_signals(request)
    try:
        body = parse_feedback(await _body(request))
    except FieldError as err:
        raise _bad(err) from None
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        feedback_id = await signals_db.store_feedback(conn, body)
    return _json({"ok": True, "id": feedback_id})


@router.post("/signals", responses=_ERRORS, status_code=201)
async def create_signal(request: Request) -> Response:
    """A manual signal (admin): live, for every account or for `account_id`, `meta.source` manual."""
    principal = await require_admin(request)
    try:
        new = parse_new_signal(await _body(request))
    except FieldError as err:
        raise _bad(err) from None
    meta = new.meta | {
        "source": "manual",
        "by": principal.name,
        "generated_at": iso_z(datetime.now(UTC)),
    }
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        row = await signals_db.insert_signal(
            conn, symbol=new.symbol, timeframe=new.timeframe, side=new.side, confidence=new.confidence,
            ttl_sec=new.ttl_sec, sl_pips=new.sl_pips, tp_pips=new.tp_pips, meta=meta, delivery="live",
            source="manual", signal_id=new.signal_id, account_id=new.account_id,
        )  # fmt: skip
    if row is None:
        return _json({"ok": True, "id": str(new.signal_id), "created": False}, 200)
    state.metrics.signals_created.labels("manual", "live").inc()
    return _json(
        {"ok": True, "id": str(row["id"]), "created": True, "ts": iso_z(row["ts"]),
         "expires_at": iso_z(row["expires_at"])},
        201,
    )  # fmt: skip


@router.get("/signals", responses=_ERRORS)
async def list_signals(request: Request) -> Response:
    """Recent signals (read): live and shadow, state, deliveries, and why a shadow one is shadow."""
    await require_read(request)
    q = request.query_params
    symbol, delivery, source = q.get("symbol"), q.get("delivery"), q.get("source")
    try:
        if symbol is not None:
            parse_poll({"symbols": symbol})
        if delivery not in (None, "live", "shadow"):
            raise FieldError("invalid_delivery", "delivery")
        if source not in (None, "model", "manual"):
            raise FieldError("invalid_source", "source")
        limit = int(q.get("limit", "50"))
        if not 1 <= limit <= 500:
            raise ValueError
    except FieldError as err:
        raise _bad(err) from None
    except ValueError:
        raise ApiError(400, {"detail": "invalid_limit", "field": "limit"}) from None
    state = request.app.state
    async with connection(state.pool, state.settings.db_acquire_timeout_s) as conn:
        rows = await signals_db.recent(conn, symbol=symbol, delivery=delivery, source=source, limit=limit)
    out = []
    for r in rows:
        item = _wire(r) | {
            "account_id": r["account_id"],
            "ts": iso_z(r["ts"]),
            "expires_at": iso_z(r["expires_at"]),
            "state": r["state"],
            "delivery": r["delivery"],
            "source": r["source"],
            "shadow_reason": r["shadow_reason"],
            "model_version_id": r["model_version_id"],
            "bar_ts": iso_z(r["bar_ts"]) if r["bar_ts"] else None,
            "deliveries": r["deliveries"],
        }
        out.append(item)
    return _json({"signals": out})
