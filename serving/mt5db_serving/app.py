"""The serving app: `GET/POST /predict`, `/models`, `/health`, `/ready`, `/prometheus`, and in its
lifespan the model store's hot reload and the signal loop.

Auth is the API's (`mt5db_api.deps.require_scope` against the same `api_keys` table: `/predict`
and `/models` need the read scope); settings, pool and Prometheus conventions follow the API's.
A client's mistake is a 4xx with a reason (no champion → 404 with what to do about it); a database
that is away is a 503; nothing leaks SQL or a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mt5db_api.deps import KeyCache, require_scope
from mt5db_api.errors import ApiError
from mt5db_api.ingest import BodyError, parse_candles
from mt5db_api.ratelimit import TokenBuckets
from mt5db_api.timeutil import iso_z
from mt5db_core.market.candles import symbol_ok
from mt5db_core.market.timeframes import canonical
from mt5db_serving.loop import run_signal_loop
from mt5db_serving.metrics import ServingMetrics
from mt5db_serving.predict import PredictError, Prediction, Predictions, model_age_s
from mt5db_serving.settings import ServingSettings
from mt5db_serving.store import KINDS, Loaded, ModelStore

log = logging.getLogger("mt5db_serving")

DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.QueryCanceledError,
)
ALIASES = ("champion", "challenger")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _keep_session(conn: Any) -> None:
    """Pool reset hook: serving never changes session state (LISTEN has its own connection)."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServingSettings = app.state.settings
    pool = await asyncpg.create_pool(
        settings.dsn(), min_size=0, max_size=settings.pool_max_size, timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s, max_inactive_connection_lifetime=300,
        reset=_keep_session, server_settings={"application_name": "mt5db-serving", "timezone": "UTC"},
    )  # fmt: skip
    app.state.pool = pool
    store: ModelStore = app.state.store
    try:
        await store.reload(pool, force=True)
    except Exception as exc:  # start anyway: /ready says so, the watcher retries
        log.warning("first model load failed (%s); retrying in the background", type(exc).__name__)
    tasks = [asyncio.create_task(store.watch(pool, settings.dsn()), name="model-watch")]
    if settings.signal_loop:
        tasks.append(
            asyncio.create_task(
                run_signal_loop(pool, store, app.state.predictions, settings, app.state.metrics),
                name="signals",
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        app.state.pool = None
        try:
            await asyncio.wait_for(pool.close(), timeout=5)
        except Exception:  # shutting down anyway
            pool.terminate()


def _series(symbol: Any, timeframe: Any) -> tuple[str, str]:
    if not isinstance(symbol, str) or not symbol_ok(symbol):
        raise ApiError(400, {"detail": "invalid_symbol", "field": "symbol"})
    tf = canonical(timeframe) if timeframe is not None else None
    if tf is None:
        raise ApiError(400, {"detail": "invalid_timeframe", "field": "timeframe"})
    return symbol, tf


def _choice(value: Any, allowed: tuple[str, ...], name: str, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if value not in allowed:
        raise ApiError(400, {"detail": f"invalid_{name}", "field": name, "allowed": list(allowed)})
    return str(value)


def _model(app: FastAPI, symbol: str, timeframe: str, alias: str, kind: str | None) -> Loaded:
    store: ModelStore = app.state.store
    loaded = store.get(symbol, timeframe, alias, kind)
    if loaded is not None:
        return loaded
    app.state.metrics.predict_refused.labels(f"no_{alias}").inc()
    what = f"{symbol} {timeframe}" + (f" ({kind})" if kind else "")
    hint = (
        "register one with `mt5db train --promote ifBetter` (it must beat its baselines and the champion) "
        "or promote a version with `mt5db models promote`"
        if alias == "champion"
        else "a version becomes challenger when the gate does not promote it"
    )
    refused = [r for r in store.refused.values() if r.alias == alias]
    if refused and not store.get(symbol, timeframe, alias, kind):
        hint += f"; refused here: {refused[-1].label} ({refused[-1].reason})"
    raise ApiError(404, {"detail": f"no_{alias}", "reason": f"no {alias} for {what}: {hint}"})


def _answer(
    loaded: Loaded, prediction: Prediction, settings: ServingSettings, cached: bool
) -> dict[str, Any]:
    age = model_age_s(loaded)
    body: dict[str, Any] = {
        "symbol": prediction.symbol,
        "timeframe": prediction.timeframe,
        "model_version": loaded.label,
        "model_kind": loaded.kind,
        "alias": loaded.alias,
        "model_age_s": round(age, 1),
        "stale": age > settings.max_model_age_s,
        "bar_ts": iso_z(prediction.bar_ts),
        "output": loaded.output,
        "signal_horizon": loaded.horizon,
        "threshold": loaded.threshold,
        "ood": bool(prediction.ood_features),
        "ood_features": prediction.ood_features,
        "beats_baselines": loaded.beats_baselines,
        "cached": cached,
    }
    if loaded.output == "return":
        body["returns"] = {str(h): v for h, v in sorted(prediction.outputs.items())}
    else:
        body["probability"] = prediction.outputs[loaded.horizon]
    return body


def _candles_of(doc: dict[str, Any], symbol: str, timeframe: str, limit: int) -> pd.DataFrame:
    """The body's candles, validated by the API's one candle parser (the EA's candle rules)."""
    items = doc.get("candles")
    if not isinstance(items, list):
        raise ApiError(400, {"detail": "missing_field", "field": "candles"})
    if len(items) > limit:
        raise ApiError(413, {"detail": "too_many_candles", "limit_items": limit})
    filled = []
    for item in items:
        if isinstance(item, dict):
            if (
                item.get("symbol", symbol) != symbol
                or canonical(item.get("timeframe", timeframe)) != timeframe
            ):
                raise ApiError(400, {"detail": "mixed_series", "field": "candles"})
            item = item | {"symbol": symbol, "timeframe": timeframe}
        filled.append(item)
    try:
        batch = parse_candles(orjson.dumps({"items": filled}), time.time(), limit)
    except BodyError as err:
        raise ApiError(err.status, {"detail": err.reason, **err.extra}) from None
    if batch.errors:
        raise ApiError(400, {"detail": "invalid_candles", "errors": batch.errors[:20]})
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(batch.ts, dtype=np.int64), unit="s"), name="ts")
    frame = pd.DataFrame(
        {
            name: np.asarray(getattr(batch, name), dtype=np.float64)
            for name in ("open", "high", "low", "close", "volume")
        },
        index=index.as_unit("ns"),
    )
    return frame.sort_index()


def create_app(settings: ServingSettings) -> FastAPI:
    """Build the serving app; `mt5db serve` runs it under uvicorn."""
    app = FastAPI(title="MT5 Trading DB serving", version="0.1.0", lifespan=lifespan,
                  description="Predictions of the registry's champions; the signal loop.")  # fmt: skip
    store = ModelStore(settings)
    metrics = ServingMetrics(store.all)
    store.metrics = metrics
    app.state.settings = settings
    app.state.pool = None
    app.state.store = store
    app.state.metrics = metrics
    app.state.predictions = Predictions(settings)
    app.state.key_cache = KeyCache.from_settings(settings)
    app.state.rate_limiter = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
    require_read = require_scope("read")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _json(exc.body, exc.status, exc.headers)

    async def db_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__)
        metrics.errors.labels("database_unavailable").inc()
        return _json({"detail": "database_unavailable"}, 503, {"Retry-After": "1"})

    for exc_type in DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, db_unavailable)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("request failed")
        metrics.errors.labels("internal_error").inc()
        return _json({"detail": "internal_error"}, 500)

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/ready")
    async def ready() -> Response:
        if not store.ready or app.state.pool is None:
            return _json({"status": "degraded", "models": "not loaded yet"}, 503)
        return _json({"status": "ok", "models": len(store.all())})

    @app.get("/predict")
    async def predict_stored(request: Request) -> Response:
        """The champion's prediction at the newest closed stored bar (read scope)."""
        await require_read(request)
        q = request.query_params
        symbol, timeframe = _series(q.get("symbol"), q.get("timeframe"))
        alias = _choice(q.get("alias"), ALIASES, "alias", "champion")
        kind = _choice(q.get("kind"), KINDS, "kind", None)
        assert alias is not None
        loaded = _model(app, symbol, timeframe, alias, kind)
        started = time.perf_counter()
        try:
            prediction, cached = await app.state.predictions.stored(app.state.pool, loaded, symbol, timeframe)
        except PredictError as err:
            metrics.predict_refused.labels(err.detail).inc()
            raise ApiError(err.status, err.body()) from None
        metrics.prediction_latency.labels("stored").observe(time.perf_counter() - started)
        metrics.predictions.labels(loaded.label, "true" if cached else "false").inc()
        return _json(_answer(loaded, prediction, settings, cached))

    @app.post("/predict")
    async def predict_body(request: Request) -> Response:
        """The champion's prediction at the last candle of the body (at least the warm-up)."""
        await require_read(request)
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            raise ApiError(413, {"detail": "body_too_large", "limit_bytes": settings.max_body_bytes})
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, {"detail": "invalid_json"}) from None
        if not isinstance(doc, dict):
            raise ApiError(400, {"detail": "not_an_object"})
        symbol, timeframe = _series(doc.get("symbol"), doc.get("timeframe"))
        alias = _choice(doc.get("alias"), ALIASES, "alias", "champion")
        kind = _choice(doc.get("kind"), KINDS, "kind", None)
        assert alias is not None
        loaded = _model(app, symbol, timeframe, alias, kind)
        candles = _candles_of(doc, symbol, timeframe, settings.predict_max_candles)
        started = time.perf_counter()
        try:
            prediction = await app.state.predictions.from_body(loaded, candles, symbol, timeframe)
        except PredictError as err:
            metrics.predict_refused.labels(err.detail).inc()
            raise ApiError(err.status, err.body()) from None
        metrics.prediction_latency.labels("body").observe(time.perf_counter() - started)
        metrics.predictions.labels(loaded.label, "false").inc()
        return _json(_answer(loaded, prediction, settings, False))

    @app.get("/models")
    async def models(request: Request) -> Response:
        """What this process serves, and what it refused and why (read scope)."""
        await require_read(request)
        return _json(
            {
                "loaded": [
                    {
                        "version": m.label,
                        "version_id": m.version_id,
                        "kind": m.kind,
                        "symbol": m.symbol,
                        "timeframe": m.timeframe,
                        "alias": m.alias,
                        "beats_baselines": m.beats_baselines,
                        "signal_horizon": m.horizon,
                        "load_seconds": round(m.load_seconds, 3),
                        "model_age_s": round(model_age_s(m), 1),
                    }
                    for m in store.all()
                ],
                "refused": [
                    {"version": r.label, "version_id": r.version_id, "alias": r.alias, "reason": r.reason}
                    for r in store.refused.values()
                ],
                "reloads": store.reload_count,
                "last_swap_s": store.last_swap_s,
            }
        )

    @app.get("/prometheus")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
