"""Prometheus instruments of one app instance (own registry: no module-level global state).

Scraped at GET /prometheus (routes/metrics.py, which also serves the unrelated JSON /metrics stats).
Names follow the original author's server so its dashboards and alerts translate
(docs/architecture.md). Labels are bounded: route and method come from our route table, status
from HTTP, reason from the fixed reason codes (ingest/fields.py REASONS, framing's BodyError
reasons). No symbol, account or key labels (clients control those).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Up to 30 s: above every alert threshold (p95 > 1 s, > 2.5 s) and the EA's 5-6 s timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2000, 5000)


class _PoolCollector(Collector):
    """DB pool gauges read at scrape time from the live asyncpg pool."""

    def __init__(self, pool_getter: Callable[[], Any]) -> None:
        self._pool_getter = pool_getter

    def collect(self) -> Iterator[Metric]:
        pool = self._pool_getter()
        size = GaugeMetricFamily("db_pool_size", "Connections currently open in the asyncpg pool")
        idle = GaugeMetricFamily("db_pool_idle", "Idle connections in the asyncpg pool")
        max_size = GaugeMetricFamily("db_pool_max_size", "Configured maximum pool size")
        if pool is not None:
            size.add_metric([], pool.get_size())
            idle.add_metric([], pool.get_idle_size())
            max_size.add_metric([], pool.get_max_size())
        yield size
        yield idle
        yield max_size


class ApiMetrics:
    """Every metric the API exports, registered in one private registry."""

    def __init__(self, pool_getter: Callable[[], Any]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ingest_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "ingest_latency_seconds", "Request latency by route (every outcome)", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "ingest_batch_size", "Items per ingest request", ["kind"], buckets=BATCH_BUCKETS, registry=r
        )
        self.inserted = Counter("ingest_candles_inserted", "Candles inserted (new keys)", registry=r)
        self.updated = Counter("ingest_candles_updated", "Candles merged with a newer snapshot", registry=r)
        self.duplicates = Counter("ingest_duplicates", "Candles that changed nothing (resends)", registry=r)
        self.rejected = Counter("ingest_rejected", "Items rejected by validation", ["reason"], registry=r)
        self.optimistic_fallbacks = Counter(
            "ingest_optimistic_fallbacks", "Large batches whose optimistic COPY hit existing keys", registry=r
        )
        self.statements = Counter(
            "ingest_db_statements", "Candle upsert statements by path (coalesced = shared by requests)",
            ["path"], registry=r,
        )  # fmt: skip
        self.ticks = Counter("ingest_ticks_inserted", "Ticks stored", registry=r)
        self.errors = Counter(
            "ingest_errors", "Requests failed on our side or refused as a whole", ["reason"], registry=r
        )
        self.rate_limited = Counter("ingest_rate_limited", "Requests refused with 429", registry=r)
        self.auth_failures = Counter("auth_failures", "Requests refused with 401/403", ["reason"], registry=r)
        # Signals for the executor EA (docs/ea-contract.md §11). Model signals are created (and
        # counted) by the serving process; the API counts manual ones, deliveries, acks, expiry.
        self.signals_created = Counter(
            "signals_created", "Signals created, by source (model|manual) and delivery (live|shadow)",
            ["source", "delivery"], registry=r,
        )  # fmt: skip
        self.signals_delivered = Counter(
            "signals_delivered", "Signals handed to a poller (leases)", registry=r
        )
        self.signals_acked = Counter(
            "signals_acked", "Acks recorded (repeats are not counted), by status", ["status"], registry=r
        )
        self.signals_expired = Counter(
            "signals_expired",
            "Pending signals the sweeper marked expired, by delivery",
            ["delivery"],
            registry=r,
        )
        self.signals_unacked = Gauge(
            "signals_unacked_deliveries",
            "Deliveries of the last day older than the ack deadline that no ack answered",
            registry=r,
        )
        r.register(_PoolCollector(pool_getter))
