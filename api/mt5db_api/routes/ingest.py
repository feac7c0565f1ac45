"""POST /ingest, /ingest_batch, /ingest/tick: what the real EAs send (docs/ea-contract.md §3, §4)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from mt5db_api.db import market_data, ticks
from mt5db_api.deps import connection, require_scope
from mt5db_api.errors import ApiError
from mt5db_api.ingest import BodyError, CandleBatch, TickBatch, parse_candles, parse_ticks
from mt5db_api.schemas import ErrorOut, IngestResult, TickIngestResult, body_ref
from mt5db_api.settings import Settings

log = logging.getLogger(__name__)
Batch = TypeVar("Batch", CandleBatch, TickBatch)

# The hot path reads pool/settings/metrics from app.state (no per-parameter dependencies): each
# FastAPI dependency node is solved per request, and single-candle requests are dominated by
# such fixed costs. Slow paths (candles, metrics) use the deps.py aliases.
# The scope check is awaited first thing in each handler instead of being a router dependency:
# FastAPI's per-request dependency solving was the largest framework cost left on single-candle
# requests (cProfile); awaiting the same check directly measured +11-14 % single-candle req/s in
# bench/ingest.py, A/B back to back. Same check, same order, same answers.
router = APIRouter(tags=["ingest"])
require_ingest = require_scope("ingest")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "not JSON or wrong top-level type"},
    401: {"model": ErrorOut}, 403: {"model": ErrorOut},
    413: {"model": ErrorOut, "description": "body or item count over the limit; split and resend"},
    429: {"model": ErrorOut}, 503: {"model": ErrorOut, "description": "database unavailable; nothing stored"},
}  # fmt: skip


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, refused with 413 as soon as it exceeds max_body_bytes (never buffered whole)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    too_large = ApiError(413, {"detail": "body_too_large", "limit_bytes": limit})
    if declared is not None and declared.isdigit() and int(declared) > limit:
        request.app.state.metrics.errors.labels("body_too_large").inc()
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            request.app.state.metrics.errors.labels("body_too_large").inc()
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(
    parse: Callable[[bytes, float, int], Batch], raw: bytes, settings: Settings, metrics: Any
) -> Batch:
    """parse_candles or parse_ticks; a body that cannot be used answers 400/413 with its reason."""
    try:
        return parse(raw, time.time(), settings.max_items)
    except BodyError as err:
        metrics.errors.labels(err.reason).inc()
        raise ApiError(err.status, {"detail": err.reason, **err.extra}) from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._/+\-]")


def _source(request: Request) -> str:
    """Arrival metadata: the client's product token (e.g. PDC-Rebuild/1.0), bounded to 40 safe
    characters (it travels in an array literal and must not carry quotes or braces), else 'api'."""
    agent = request.headers.get("user-agent")
    if not agent:
        return "api"
    return _UNSAFE.sub("_", agent.split(" ", 1)[0][:40]) or "api"


async def _ingest_candles(request: Request, pool: Any, settings: Settings, metrics: Any) -> Response:
    raw = await read_body(request, settings)
    batch = _parse(parse_candles, raw, settings, metrics)
    metrics.batch_size.labels("candles").observe(batch.received)
    inserted = updated = duplicates = 0
    if len(batch) and len(batch) <= settings.coalesce_max_items:
        # small request: group commit with the requests arriving meanwhile (coalesce.py)
        inserted, updated, duplicates = await request.app.state.coalescer.submit(batch, _source(request))
    elif len(batch):
        gate = request.app.state.insert_gate
        optimistic = gate.should_try(len(batch))
        async with connection(pool, settings.db_acquire_timeout_s) as conn:
            result = await market_data.upsert_candles(
                conn, batch, source=_source(request), optimistic=optimistic,
                command_timeout=settings.db_command_timeout_s,
            )  # fmt: skip
        metrics.statements.labels("optimistic" if optimistic else "direct").inc()
        if result.fell_back:
            gate.fell_back()
            metrics.optimistic_fallbacks.inc()
        inserted, updated, duplicates = result.inserted, result.updated, result.duplicates
    if len(batch):  # stored (or merged): these symbols delivered data now
        metrics.freshness.seen(set(batch.symbol), time.time())
    updated += batch.merged_updates
    duplicates += batch.merged_duplicates
    rejected = len(batch.errors)
    if inserted:
        metrics.inserted.inc(inserted)
    if updated:
        metrics.updated.inc(updated)
    if duplicates:
        metrics.duplicates.inc(duplicates)
    for err in batch.errors:
        metrics.rejected.labels(err["reason"]).inc()
    if rejected:
        log.info("ingest: %d of %d items rejected, first %s", rejected, batch.received, batch.errors[0])
    return _json(
        {
            "ok": True, "received": batch.received, "inserted": inserted, "updated": updated,
            "duplicates": duplicates, "rejected": rejected, "errors": batch.errors[: settings.max_errors_listed],
        }
    )  # fmt: skip


@router.post(
    "/ingest",
    summary="Store candles: a bare candle, {'items': [...]} or a bare array",
    response_model=IngestResult,
    responses=_ERROR_RESPONSES,
    openapi_extra=body_ref("CandleIn", "CandleBatchIn", "CandleArrayIn"),
)
@router.post(
    "/ingest_batch",
    summary="Same as /ingest (tools post bare arrays here)",
    response_model=IngestResult,
    responses=_ERROR_RESPONSES,
    openapi_extra=body_ref("CandleIn", "CandleBatchIn", "CandleArrayIn"),
)
async def ingest(request: Request) -> Response:
    """Validate per item, merge each bar monotonically, answer 200 with counts and per-item errors."""
    await require_ingest(request)
    state = request.app.state
    return await _ingest_candles(request, state.pool, state.settings, state.metrics)


@router.post(
    "/ingest/tick",
    summary="Store ticks: {'ticks': [...]}, a bare array or one tick; every tick is kept",
    response_model=TickIngestResult,
    responses=_ERROR_RESPONSES,
    openapi_extra=body_ref("TickIn", "TickBatchIn"),
)
async def ingest_tick(request: Request) -> Response:
    """Keep every valid tick in arrival order; optionally re-derive the touched M1 bars."""
    await require_ingest(request)
    state = request.app.state
    pool, settings, metrics = state.pool, state.settings, state.metrics
    raw = await read_body(request, settings)
    batch = _parse(parse_ticks, raw, settings, metrics)
    metrics.batch_size.labels("ticks").observe(batch.received)
    stored = 0
    if len(batch):
        async with connection(pool, settings.db_acquire_timeout_s) as conn:
            stored = await ticks.insert_ticks(
                conn,
                symbol=batch.symbol, ts=batch.ts, bid=batch.bid, ask=batch.ask, last=batch.last,
                volume=batch.volume, flags=batch.flags, digits=batch.digits, spread=batch.spread,
                meta=batch.meta, derive_m1=settings.derive_m1_from_ticks,
                command_timeout=settings.db_command_timeout_s,
            )  # fmt: skip
    metrics.ticks.inc(stored)
    if stored:
        metrics.freshness.seen(set(batch.symbol), time.time())
    for err in batch.errors:
        metrics.rejected.labels(err["reason"]).inc()
    return _json(
        {
            "ok": True, "received": batch.received, "inserted": stored, "rejected": len(batch.errors),
            "errors": batch.errors[: settings.max_errors_listed],
        }
    )  # fmt: skip
