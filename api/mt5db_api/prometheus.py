"""Prometheus instruments of one app instance (own registry: no module-level global state).

Scraped at GET /prometheus (routes/metrics.py, which also serves the unrelated JSON /metrics stats).
Names follow the original author's server so its dashboards and alerts translate
(docs/architecture.md). Labels are bounded: route and method come from our route table, status
from HTTP, reason from the fixed reason codes (ingest/fields.py REASONS, framing's BodyError
reasons). No account or key labels (clients control those); the one symbol label is capped
(SymbolFreshness: at most `max_symbols` series, silent symbols forgotten after a TTL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
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


class SymbolFreshness(Collector):
    """When each symbol last delivered an accepted candle or tick to this replica (wall clock).

    The per-symbol "no data received" alert and the staleness panel need a symbol label, which a
    client controls: the series are capped at `max_symbols` (a symbol beyond the cap is counted in
    `ingest_symbols_untracked_total`, never added), and a symbol silent for `ttl_s` is forgotten
    (its series ends, its alert resolves). The default TTL outlasts a weekend close. A restarted
    replica starts empty; with several replicas the alert takes the newest value of any of them.
    """

    def __init__(self, max_symbols: int, ttl_s: float) -> None:
        self.max_symbols = max_symbols
        self.ttl_s = ttl_s
        self._last: dict[str, float] = {}
        self._untracked = 0

    def seen(self, symbols: Iterable[str], now: float) -> None:
        last = self._last
        for symbol in symbols:
            if symbol not in last and len(last) >= self.max_symbols:
                self._forget(now)
                if len(last) >= self.max_symbols:
                    self._untracked += 1
                    continue
            last[symbol] = now

    def _forget(self, now: float) -> None:
        for symbol in [s for s, at in self._last.items() if now - at > self.ttl_s]:
            del self._last[symbol]

    def collect(self) -> Iterator[Metric]:
        self._forget(time.time())
        last = GaugeMetricFamily(
            "ingest_symbol_last_received_timestamp_seconds",
            "Unix time this replica last accepted a candle or tick of the symbol (capped, see docs/api.md)",
            labels=["symbol"],
        )
        for symbol, at in sorted(self._last.items()):
            last.add_metric([symbol], at)
        yield last
        untracked = CounterMetricFamily(
            "ingest_symbols_untracked", "Symbol sightings not tracked because the symbol cap was full"
        )
        untracked.add_metric([], self._untracked)
        yield untracked


class ReadinessGauge(Collector):
    """`db_ready`: 1 when this replica's last GET /ready reached the database with the current
    schema, 0 when it failed. No sample before the first check (a process nobody probes does not
    report a database it never asked), so the alert needs the kubelet's readiness probe."""

    def __init__(self) -> None:
        self.value: float | None = None

    def set(self, ready: bool) -> None:
        self.value = 1.0 if ready else 0.0

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("db_ready", "1 when the last readiness check reached a current schema")
        if self.value is not None:
            gauge.add_metric([], self.value)
        yield gauge


class ApiMetrics:
    """Every metric the API exports, registered in one private registry."""

    def __init__(
        self, pool_getter: Callable[[], Any], max_symbols: int = 500, symbol_ttl_s: float = 3 * 86400
    ) -> None:
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
        self.db_ready = ReadinessGauge()
        r.register(self.db_ready)
        self.freshness = SymbolFreshness(max_symbols, symbol_ttl_s)
        r.register(self.freshness)
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
