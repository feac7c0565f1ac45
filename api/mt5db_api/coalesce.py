"""Group commit for small ingest requests: concurrent requests share one upsert statement.

A single-candle request spends most of its cost on the database round trip (asyncpg protocol
work in the API, a statement in a PostgreSQL backend) rather than on the candle. Under load, the
requests that arrive while earlier statements run are merged into the next statement: one round
trip for many requests. With no load, a request is flushed at once (no added latency). Every
request is answered only after the statement holding its candles has returned (committed), with
its own counts; a failed statement fails every request in it (503), none is acknowledged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mt5db_api.db import market_data
from mt5db_api.deps import connection
from mt5db_api.ingest import CandleBatch
from mt5db_api.settings import Settings

Counts = tuple[int, int, int]  # inserted, updated, duplicates


class UpsertCoalescer:
    """At most `max_inflight` statements at a time; whatever queues meanwhile goes in the next one."""

    def __init__(self, settings: Settings, pool_getter: Any, metrics: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pool_getter = pool_getter
        self.max_inflight = settings.coalesce_max_inflight
        self.inflight = 0
        self.pending: list[tuple[CandleBatch, str, asyncio.Future[Counts]]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.statements = 0  # for metrics and tests
        self.requests = 0

    async def submit(self, batch: CandleBatch, source: str) -> Counts:
        """Queue a validated batch; returns its (inserted, updated, duplicates) once committed
        (excluding the batch's own in-batch merges, which the caller adds)."""
        future: asyncio.Future[Counts] = asyncio.get_running_loop().create_future()
        self.pending.append((batch, source, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        if self.pending and self.inflight < self.max_inflight:
            self.inflight += 1
            group, self.pending = self.pending, []
            task = asyncio.ensure_future(self._flush(group))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _flush(self, group: list[tuple[CandleBatch, str, asyncio.Future[Counts]]]) -> None:
        try:
            merged = CandleBatch()
            sources: list[str] = []
            owner: list[int] = []  # merged row -> request that brought it first
            counts = [[0, 0, 0] for _ in group]  # in-request merges are counted by the route
            for r, (batch, source, _) in enumerate(group):
                for k in range(len(batch)):
                    outcome = merged.add(
                        batch.ts[k], batch.symbol[k], batch.timeframe[k], batch.open[k], batch.high[k],
                        batch.low[k], batch.close[k], batch.volume[k], batch.spread[k], batch.real_volume[k],
                    )  # fmt: skip
                    if outcome == 0:
                        owner.append(r)
                        sources.append(source)
                    else:  # the same bar from two requests: the later one merges like in one batch
                        counts[r][outcome] += 1
            settings = self.settings
            async with connection(self.pool_getter(), settings.db_acquire_timeout_s) as conn:
                changed = await market_data.upsert_candles_keys(
                    conn, merged, sources=sources, command_timeout=settings.db_command_timeout_s
                )
            self.statements += 1
            self.metrics.statements.labels("coalesced").inc()
            self.requests += len(group)
            for j, r in enumerate(owner):
                inserted = changed.get((merged.symbol[j], merged.timeframe[j], merged.ts[j]))
                counts[r][2 if inserted is None else 0 if inserted else 1] += 1
            for (_, _, future), (ins, upd, dup) in zip(group, counts, strict=True):
                if not future.done():
                    future.set_result((ins, upd, dup))
        except Exception as exc:  # every request in the statement fails; none is acknowledged
            for _, _, future in group:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # cancelled (shutdown): the waiting requests are cancelled too
            for _, _, future in group:
                future.cancel()
            raise
        finally:
            self.inflight -= 1
            self._kick()

    async def drain(self) -> None:
        """Wait for statements in flight (shutdown)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
