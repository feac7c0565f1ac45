"""The app factory: lifespan (asyncpg pool), middleware, error handlers, one router per area."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import TypeAdapter
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5db_api import schemas
from mt5db_api.coalesce import UpsertCoalescer
from mt5db_api.db import migrations
from mt5db_api.deps import InsertGate, KeyCache
from mt5db_api.errors import ApiError
from mt5db_api.prometheus import ApiMetrics
from mt5db_api.ratelimit import TokenBuckets
from mt5db_api.routes import bench, candles, health, ingest, signals
from mt5db_api.routes import metrics as metrics_routes
from mt5db_api.settings import Settings, get_settings
from mt5db_api.sweeper import run_sweeper

log = logging.getLogger("mt5db_api")

# Driver/network failures that mean "the database is not available right now" -> 503, retryable.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.QueryCanceledError,  # statement timeout
    asyncpg.exceptions.TransactionRollbackError,  # deadlock / serialization: safe to retry
)


async def _keep_session(conn: Any) -> None:
    """Pool reset hook: nothing to reset. The app never changes session state (no SET, LISTEN,
    advisory locks or cursors outside transactions; asyncpg still rolls back a dangling
    transaction). The default reset costs one extra round trip per request."""


async def _create_pool(settings: Settings, min_size: int) -> Any:
    return await asyncpg.create_pool(
        settings.dsn(),
        min_size=min_size,
        max_size=max(settings.pool_max_size, min_size),
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s,
        max_inactive_connection_lifetime=300,
        reset=_keep_session,
        server_settings={"application_name": "mt5db-api", "timezone": "UTC"},
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the pool (lazily when the DB is down at start: /ready says so, ingest answers 503)."""
    settings: Settings = app.state.settings
    try:
        pool = await _create_pool(settings, settings.pool_min_size)
    except (*DB_UNAVAILABLE, asyncpg.PostgresError) as exc:
        log.warning("database not reachable at start-up (%s); starting with a lazy pool", type(exc).__name__)
        pool = await _create_pool(settings, 0)
    app.state.pool = pool
    app.state.aggregates = await _aggregates(pool, settings)
    # Signals expire on the server's clock; the sweeper marks them and counts unacked deliveries.
    sweeper = asyncio.create_task(run_sweeper(lambda: app.state.pool, settings, app.state.metrics))
    # Everything allocated so far (modules, app, pool) lives as long as the process: move it out of
    # the collector's view so full collections under load stay short (tail latency).
    gc.freeze()
    try:
        yield
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await app.state.coalescer.drain()
        app.state.pool = None
        try:
            await asyncio.wait_for(pool.close(), timeout=5)
        except Exception:  # shutting down anyway: drop the connections hard
            pool.terminate()


async def _aggregates(pool: Any, settings: Settings) -> dict[str, str]:
    """Continuous aggregates present in this database (TimescaleDB path): timeframe -> view."""
    try:
        async with pool.acquire(timeout=settings.db_acquire_timeout_s) as conn:
            present = {
                r[0]
                for r in await conn.fetch(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])",
                    [f"candles_{tf.lower()}" for tf, _ in migrations.AGGREGATES],
                )
            }
    except (*DB_UNAVAILABLE, asyncpg.PostgresError):
        return {}
    return {
        tf: f"candles_{tf.lower()}" for tf, _ in migrations.AGGREGATES if f"candles_{tf.lower()}" in present
    }


class RequestMetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): request id, latency and request counts for every outcome."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def _compact(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. With no settings, they come from the environment (MT5DB_*)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="MT5 Trading DB",
        version="0.1.0",
        lifespan=lifespan,
        description="EA-compatible ingestion, storage and query of MT5 candles and ticks.",
    )
    app.state.settings = settings
    app.state.pool = None
    app.state.aggregates = {}
    app.state.metrics = metrics = ApiMetrics(
        lambda: app.state.pool, settings.metrics_max_symbols, settings.metrics_symbol_ttl_s
    )
    app.state.key_cache = KeyCache.from_settings(settings)
    app.state.rate_limiter = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.insert_gate = InsertGate(settings.optimistic_insert_min_items)
    app.state.coalescer = UpsertCoalescer(settings, lambda: app.state.pool, metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _compact(exc.status, exc.body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors()})
        return _compact(422, {"detail": "invalid_request", "fields": fields})

    async def db_unavailable(request: Request, exc: Exception) -> Response:
        request_id = _request_id(request)
        log.warning("request %s: database unavailable: %s: %s", request_id, type(exc).__name__, exc)
        metrics.errors.labels("database_unavailable").inc()
        return _compact(
            503, {"detail": "database_unavailable", "request_id": request_id}, {"Retry-After": "1"}
        )

    for exc_type in DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, db_unavailable)

    @app.exception_handler(ClientDisconnect)
    async def client_disconnected(request: Request, exc: ClientDisconnect) -> Response:
        # The client left mid-body (or was cut off for slowness): its mistake, not ours, so never a
        # 500 that an attacker could use to trip the error-ratio alert. 499 is nginx's code for it;
        # nobody receives the answer.
        log.info("request %s: client disconnected before its body was complete", _request_id(request))
        metrics.errors.labels("client_disconnect").inc()
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = _request_id(request)
        log.exception("request %s failed", request_id)
        metrics.errors.labels("internal_error").inc()
        return _compact(500, {"detail": "internal_error", "request_id": request_id})

    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(candles.router)
    app.include_router(metrics_routes.router)
    app.include_router(signals.router)
    if settings.bench_endpoints:
        app.include_router(bench.router)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Add the hot path's body models to the OpenAPI components (they are never used to parse)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in schemas.DOC_MODELS:
            schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = schema
        spec["components"]["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "Bearer": {"type": "http", "scheme": "bearer"},
        }
        spec["security"] = [{"ApiKey": []}, {"Bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
