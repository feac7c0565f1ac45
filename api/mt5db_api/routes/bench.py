"""POST /bench/noop: only mounted with MT5DB_BENCH_ENDPOINTS=true; the framework's own limit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["bench"], include_in_schema=False)


@router.post("/bench/noop")
async def noop(request: Request) -> Response:
    """Read the body and answer a constant: what the same app and server do with no work at all."""
    await request.body()
    return Response(b'{"ok":true}', media_type="application/json")
