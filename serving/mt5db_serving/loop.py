"""The signal loop: one signal per newly closed bar of every loaded version (champions and
challengers), derived by rule.py and stored through the API's signal SQL (the one owner of the
`signals` table). The unique index on (version, series, bar) makes a bar's signal appear once
however many serving replicas derive it, so a pass is idempotent and cheap (the predictions are
cached per bar)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mt5db_api.db import signals as signals_db
from mt5db_serving.metrics import ServingMetrics
from mt5db_serving.predict import PredictError, Predictions
from mt5db_serving.rule import derive
from mt5db_serving.settings import ServingSettings
from mt5db_serving.store import ModelStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Created:
    signal_id: str
    label: str
    side: str
    delivery: str
    shadow_reason: str | None


async def signal_pass(
    pool: Any, store: ModelStore, predictions: Predictions, settings: ServingSettings, metrics: ServingMetrics
) -> list[Created]:
    """Derive and store the signal of the newest closed bar of every loaded version (once per bar)."""
    created: list[Created] = []
    for loaded in store.all():
        try:
            prediction, _ = await predictions.stored(pool, loaded, loaded.symbol, loaded.timeframe)
        except PredictError:
            continue  # no data yet, or not enough of it: nothing to signal
        derived = derive(loaded, prediction, settings, datetime.now(UTC))
        async with pool.acquire(timeout=settings.db_acquire_timeout_s) as conn:
            row = await signals_db.insert_signal(
                conn, symbol=loaded.symbol, timeframe=loaded.timeframe, side=derived.side,
                confidence=derived.confidence, ttl_sec=derived.ttl_sec, sl_pips=derived.sl_pips,
                tp_pips=derived.tp_pips, meta=derived.meta, delivery=derived.delivery, source="model",
                shadow_reason=derived.shadow_reason, model_version_id=loaded.version_id, bar_ts=prediction.bar_ts,
            )  # fmt: skip
        if row is None:
            continue  # this bar's signal exists already
        metrics.signals_created.labels("model", derived.delivery).inc()
        created.append(
            Created(str(row["id"]), loaded.label, derived.side, derived.delivery, derived.shadow_reason)
        )
        log.info("signal %s %s %s %s: %s", loaded.label, loaded.symbol, derived.side, derived.delivery,
                 derived.shadow_reason or "live")  # fmt: skip
    return created


async def run_signal_loop(
    pool: Any, store: ModelStore, predictions: Predictions, settings: ServingSettings, metrics: ServingMetrics
) -> None:
    """A pass every `signal_interval_s` until cancelled; a failed pass is counted and retried."""
    while True:
        if store.ready:
            try:
                await signal_pass(pool, store, predictions, settings, metrics)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away: try again next interval
                metrics.signal_loop_errors.inc()
                log.warning("signal pass failed: %s", type(exc).__name__)
        await asyncio.sleep(settings.signal_interval_s)
