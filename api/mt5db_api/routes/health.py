"""GET /health (liveness, no auth, no DB) and GET /ready (DB reachable, schema current)."""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from mt5db_api.db import migrations
from mt5db_api.deps import PoolDep, SettingsDep
from mt5db_api.schemas import Health

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'


@router.get("/health", response_model=Health)
async def health() -> Response:
    """Liveness: the process answers. The shape the real EA logs."""
    return Response(_OK, media_type="application/json")


@router.get("/ready", response_model=Health, responses={503: {"description": "degraded"}})
async def ready(request: Request, pool: PoolDep, settings: SettingsDep) -> Response:
    """Readiness: the database answers within the short timeouts and the schema is current."""
    gauge = request.app.state.metrics.db_ready
    try:
        async with pool.acquire(timeout=settings.db_acquire_timeout_s) as conn:
            version = await conn.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                timeout=settings.db_command_timeout_s,
            )
    except Exception as exc:  # any failure here means "not ready"; details only in the log
        log.warning("ready: database check failed: %s", type(exc).__name__)
        gauge.set(False)
        down = {"status": "degraded", "database": "unreachable"}
        return Response(orjson.dumps(down), status_code=503, media_type="application/json")
    gauge.set(version == migrations.CURRENT_VERSION)
    if version != migrations.CURRENT_VERSION:
        body: dict[str, object] = {
            "status": "degraded",
            "schema_version": version,
            "expected": migrations.CURRENT_VERSION,
        }
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return Response(b'{"status":"ok","schema_version":%d}' % version, media_type="application/json")
