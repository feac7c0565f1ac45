"""The signal sweeper: expiry is the server's (docs/ea-contract.md §11).

A task in each API process marks pending signals past their TTL as EXPIRED (counted in
`signals_expired_total`) and recounts the deliveries nobody acknowledged (`signals_unacked_deliveries`,
the gauge the "signals left unacked" alert reads). Several replicas may sweep at once: the UPDATE
marks each row once, so the counters add up across replicas and the gauge reads the same everywhere.
Delivery never depends on the sweeper: `/signals/next` itself refuses expired signals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mt5db_api.db import signals as signals_db
from mt5db_api.prometheus import ApiMetrics
from mt5db_api.settings import Settings

log = logging.getLogger(__name__)


async def sweep_once(pool: Any, settings: Settings, metrics: ApiMetrics) -> dict[str, int]:
    """One pass: expire what is due, recount unacked deliveries; returns the expired counts."""
    async with asyncio.timeout(settings.db_acquire_timeout_s + settings.db_command_timeout_s):
        async with pool.acquire() as conn:
            expired = await signals_db.expire_due(conn)
            unacked = await signals_db.unacked_deliveries(conn, settings.signal_unacked_after_s)
    for delivery, count in expired.items():
        metrics.signals_expired.labels(delivery).inc(count)
    metrics.signals_unacked.set(unacked)
    return expired


async def run_sweeper(pool_getter: Callable[[], Any], settings: Settings, metrics: ApiMetrics) -> None:
    """Sweep every `signal_sweep_interval_s` until cancelled; a failed pass is logged and retried."""
    while True:
        pool = pool_getter()
        if pool is not None:
            try:
                await sweep_once(pool, settings, metrics)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down or not migrated yet: try again later
                log.warning("signal sweep failed: %s", type(exc).__name__)
        await asyncio.sleep(settings.signal_sweep_interval_s)
