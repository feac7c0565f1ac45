"""GET /candles: any timeframe, stored or resampled on the fly (same results with TimescaleDB)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from mt5db_api.db import market_data
from mt5db_api.deps import PoolDep, SettingsDep, require_scope
from mt5db_api.errors import ApiError
from mt5db_api.ingest import ItemError, parse_ts
from mt5db_api.schemas import TIMEFRAME_VALUES, CandleOut, CandlesPage
from mt5db_api.timeutil import iso_z
from mt5db_core.market.candles import SYMBOL_PATTERN
from mt5db_core.market.timeframes import canonical, floor_epoch

router = APIRouter(tags=["candles"], dependencies=[Depends(require_scope("read"))])


def _bound(value: str | None, name: str, timeframe: str) -> datetime | None:
    if value is None:
        return None
    try:
        epoch = parse_ts(value, time.time() + 3650 * 86400)
    except ItemError as err:
        raise ApiError(400, {"detail": err.reason, "field": name}) from None
    # Align to the target bucket so a resampled first/last bar is never a partial one.
    return datetime.fromtimestamp(floor_epoch(int(epoch // 1), timeframe), UTC)


@router.get("/candles", response_model=CandlesPage, responses={400: {"description": "bad query"}})
async def candles(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    symbol: Annotated[str, Query(pattern=SYMBOL_PATTERN)],
    timeframe: Annotated[
        str,
        Query(
            max_length=8,
            description="name (H1) or MT5 code (16385)",
            json_schema_extra={"enum": TIMEFRAME_VALUES},
        ),
    ],
    start: Annotated[
        str | None,
        Query(max_length=40, description="inclusive, ISO-8601", json_schema_extra={"format": "date-time"}),
    ] = None,
    end: Annotated[
        str | None,
        Query(max_length=40, description="exclusive, ISO-8601", json_schema_extra={"format": "date-time"}),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100000)] = 1000,
) -> CandlesPage:
    """Candles ascending from `start` (or the newest `limit` when no start), resampled when needed."""
    target = canonical(timeframe)
    if target is None:
        raise ApiError(400, {"detail": "invalid_timeframe"})
    limit = min(limit, settings.candles_max_limit)
    lo = _bound(start, "start", target)
    hi = _bound(end, "end", target)
    async with pool.acquire(timeout=settings.db_acquire_timeout_s) as conn:
        stored = await market_data.stored_timeframes(conn, symbol=symbol, start=lo, end=hi)
        source = market_data.source_for(target, stored)
        rows = []
        if source is not None:
            view = None
            aggregates = request.app.state.aggregates
            if source == "M1" and target != "M1" and target in aggregates:
                view = aggregates[target]
                if not await market_data.view_is_current(conn, view, lo, hi):
                    view = None  # late or corrected bars not yet materialized: resample raw M1
            rows = await market_data.fetch_candles(
                conn, symbol=symbol, target=target, source=source, start=lo, end=hi, limit=limit, view=view
            )
    data = [
        CandleOut(
            ts=iso_z(r["ts"]),
            open=r["open"],
            high=r["high"],
            low=r["low"],
            close=r["close"],
            volume=r["volume"],
        )
        for r in rows
    ]
    return CandlesPage(symbol=symbol, timeframe=target, source_timeframe=source, count=len(data), data=data)
