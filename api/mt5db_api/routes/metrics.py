"""GET /metrics (JSON stats per series, read scope) and GET /prometheus (text exposition)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mt5db_api.db import series_stats
from mt5db_api.deps import MetricsDep, PoolDep, SettingsDep, require_scope
from mt5db_api.schemas import MetricsOut, SeriesStats
from mt5db_api.timeutil import iso_z
from mt5db_core.market.candles import SYMBOL_PATTERN

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_model=MetricsOut, dependencies=[Depends(require_scope("read"))])
async def metrics_json(
    pool: PoolDep,
    settings: SettingsDep,
    symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN)] = None,
) -> MetricsOut:
    """Per (symbol, timeframe): count, first, last, last arrival, gaps during market hours (kept by
    every write: the cost is one row per series, however long the series)."""
    async with pool.acquire(timeout=settings.db_acquire_timeout_s) as conn:
        rows = await series_stats.read(conn, symbol=symbol)
    return MetricsOut(
        series=[
            SeriesStats(
                symbol=r["symbol"],
                timeframe=r["timeframe"],
                count=r["count"],
                first=iso_z(r["first"]),
                last=iso_z(r["last"]),
                last_arrival=iso_z(r["last_arrival"]),
                last_update=iso_z(r["last_update"]),
                gaps=r["gaps"],
            )
            for r in rows
        ]
    )


@router.get("/prometheus", include_in_schema=True, response_class=Response)
async def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus text exposition (no auth: scrape it over the cluster network only)."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
