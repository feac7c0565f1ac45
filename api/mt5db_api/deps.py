"""Every shared dependency: settings, pool, metrics, the authenticated key, scope checks."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from mt5db_api.db import api_keys as api_keys_db
from mt5db_api.errors import ApiError, unauthorized
from mt5db_api.prometheus import ApiMetrics
from mt5db_api.ratelimit import TokenBuckets
from mt5db_api.settings import Settings
from mt5db_core import apikeys


async def app_settings(request: Request) -> Settings:
    """The settings this app was built with (create_app's argument, default `get_settings()`).

    Read from app.state rather than overriding `get_settings` through dependency_overrides:
    FastAPI re-analyses an override's signature on every request, which cost ~1 ms of CPU per
    request on the hot path (measured with cProfile). Async, so it never hops to the threadpool.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_pool(request: Request) -> Any:
    """The asyncpg pool created in the app lifespan."""
    return request.app.state.pool


async def get_metrics(request: Request) -> ApiMetrics:
    """This app's metrics (own registry)."""
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


PoolDep = Annotated[Any, Depends(get_pool)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


@dataclass(frozen=True)
class Principal:
    """The API key a request authenticated with."""

    key_id: str
    name: str
    scopes: frozenset[str]


@asynccontextmanager
async def connection(pool: Any, wait_s: float) -> AsyncIterator[Any]:
    """A pooled connection, waiting at most `wait_s` seconds for it (then TimeoutError -> 503).

    `asyncio.timeout` instead of `pool.acquire(timeout=...)`: on Python 3.11 asyncpg implements
    the latter with a wait_for backport that creates a task per acquire (hot path).
    """
    async with asyncio.timeout(wait_s):
        conn = await pool.acquire()
    try:
        yield conn
    finally:
        await pool.release(conn)


class KeyCache:
    """Key rows by key id, cached for `ttl` seconds (revocation takes effect within ttl).

    The presented key is always re-checked against the cached hash in constant time; only the
    database read is cached. Found and unknown ids live in separate least-recently-used maps, so a
    flood of made-up ids churns only the unknown one and never evicts a real key. An id that is in
    neither costs a database read: those are limited per client address (`unknown_lookups`, 429
    beyond), and concurrent reads of one id share one query.
    """

    def __init__(self, ttl: float, unknown_lookups: TokenBuckets, max_entries: int = 10000) -> None:
        self.ttl = ttl
        self.unknown_lookups = unknown_lookups
        self.max_entries = max_entries
        self._known: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self.lookups = 0  # database reads, for tests and the metric

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyCache:
        unknown = TokenBuckets(
            settings.unknown_key_lookups_per_s, settings.unknown_key_lookups_burst, max_keys=10000
        )
        return cls(settings.auth_cache_ttl_s, unknown)

    async def row(self, key_id: str, pool: Any, settings: Settings, client: str = "-") -> Any:
        now = time.monotonic()
        known = self._known.get(key_id)
        if known is not None:
            self._known.move_to_end(key_id)
            if known[0] > now:
                return known[1]
        else:
            expires = self._unknown.get(key_id)
            if expires is not None:
                self._unknown.move_to_end(key_id)
                if expires > now:
                    return None
            wait = self.unknown_lookups.take(client)
            if wait > 0:
                retry = max(1, int(wait + 0.999))
                raise ApiError(
                    429, {"detail": "rate_limited", "retry_after": retry}, {"Retry-After": str(retry)}
                )
        pending = self._pending.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key_id] = future
        try:
            row = await self._read(key_id, pool, settings)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(row)
        finally:
            del self._pending[key_id]
        self._store(key_id, row, now + self.ttl)
        return row

    async def _read(self, key_id: str, pool: Any, settings: Settings) -> Any:
        self.lookups += 1
        async with connection(pool, settings.db_acquire_timeout_s) as conn:
            return await api_keys_db.get_key(
                conn, key_id=key_id, command_timeout=settings.db_command_timeout_s
            )

    def _store(self, key_id: str, row: Any, expires: float) -> None:
        if row is None:
            self._known.pop(key_id, None)
            table: OrderedDict[str, Any] = self._unknown
            table[key_id] = expires
        else:
            self._unknown.pop(key_id, None)
            table = self._known
            table[key_id] = (expires, row)
        table.move_to_end(key_id)
        while len(table) > self.max_entries:
            table.popitem(last=False)


class InsertGate:
    """When to try the optimistic binary COPY for a large batch (per process).

    After a fallback (the batch held existing keys) the next `pause` large batches go straight to
    the merge statement, so duplicate-heavy traffic (a second replay) does not pay twice.
    """

    def __init__(self, min_items: int, pause: int = 100) -> None:
        self.min_items = min_items
        self.pause = pause
        self._skip = 0

    def should_try(self, distinct: int) -> bool:
        if not self.min_items or distinct < self.min_items:
            return False
        if self._skip > 0:
            self._skip -= 1
            return False
        return True

    def fell_back(self) -> None:
        self._skip = self.pause


def presented_key(request: Request) -> str | None:
    """The key from `X-API-Key` or `Authorization: Bearer` (the EA sends exactly one)."""
    headers = request.headers
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


async def authenticate(request: Request) -> Principal:
    """Resolve the presented key to a Principal, or 401 {"detail":"unauthorized"}.

    Reads pool/settings/metrics from app.state instead of sub-dependencies: every dependency node
    costs FastAPI work per request, and this runs on every ingest request.
    """
    state = request.app.state
    metrics: ApiMetrics = state.metrics
    key = presented_key(request)
    if not key:
        metrics.auth_failures.labels("missing_key").inc()
        raise unauthorized()
    key_id = apikeys.key_id_of(key)
    if key_id is None:
        metrics.auth_failures.labels("malformed_key").inc()
        raise unauthorized()
    cache: KeyCache = state.key_cache
    client = request.client.host if request.client else "-"
    try:
        row = await cache.row(key_id, state.pool, state.settings, client)
    except ApiError:
        metrics.auth_failures.labels("unknown_key_lookups_limited").inc()
        raise
    if row is None or row["revoked_at"] is not None or not apikeys.matches(key, row["key_hash"]):
        metrics.auth_failures.labels("wrong_or_revoked_key").inc()
        raise unauthorized()
    return Principal(key_id=row["key_id"], name=row["name"], scopes=frozenset(row["scopes"]))


ApiKeyDep = Annotated[Principal, Depends(authenticate)]


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A router dependency: authenticated, holding `scope` (or admin), and within its rate limit."""
    if scope not in apikeys.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        metrics: ApiMetrics = request.app.state.metrics
        if scope not in principal.scopes and "admin" not in principal.scopes:
            metrics.auth_failures.labels("missing_scope").inc()
            raise ApiError(403, {"detail": "forbidden", "required_scope": scope})
        buckets: TokenBuckets = request.app.state.rate_limiter
        wait = buckets.take(principal.key_id)
        if wait > 0:
            metrics.rate_limited.inc()
            retry = max(1, int(wait + 0.999))
            raise ApiError(429, {"detail": "rate_limited", "retry_after": retry}, {"Retry-After": str(retry)})
        return principal

    return check
