"""Prometheus instruments of one serving process (own registry), scraped at GET /prometheus.

Labels are bounded: model names and versions come from the registry (admin-controlled, a handful),
aliases and outcomes are fixed sets. `model_age_seconds` and `champion_info` are read from the
live model store at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREDICT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _StoreCollector(Collector):
    """Model age and champion info from the loaded versions."""

    def __init__(self, loaded: Callable[[], list[Any]]) -> None:
        self._loaded = loaded

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "model_age_seconds",
            "Seconds since the loaded version was trained (registered)",
            labels=["model", "alias"],
        )
        info = GaugeMetricFamily(
            "champion_info", "The loaded champion of each series (value 1)",
            labels=["model", "version", "kind", "live_eligible"],
        )  # fmt: skip
        now = time.time()
        for m in self._loaded():
            age.add_metric([m.name, m.alias], now - m.created_at.timestamp())
            if m.alias == "champion":
                info.add_metric(
                    [m.name, str(m.version), m.kind, "true" if m.beats_baselines else "false"], 1.0
                )
        yield age
        yield info


class ServingMetrics:
    """Everything serving exports; also what mt5db_api.deps.require_scope counts on failures."""

    def __init__(self, loaded: Callable[[], list[Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.predictions = Counter(
            "predictions", "Predictions answered, by model version and whether the cache had it",
            ["model_version", "cached"], registry=r,
        )  # fmt: skip
        self.prediction_latency = Histogram(
            "prediction_latency_seconds", "Time to answer a prediction (features + model), by source",
            ["source"], buckets=PREDICT_BUCKETS, registry=r,
        )  # fmt: skip
        self.predict_refused = Counter(
            "predict_refused", "/predict requests answered 4xx, by reason", ["reason"], registry=r
        )
        self.reloads = Counter(
            "model_reloads", "Versions loaded or refused by the hot reload", ["outcome"], registry=r
        )
        self.load_seconds = Histogram(
            "model_load_seconds", "Time to fetch, verify, load and smoke-test one version", registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )  # fmt: skip
        self.signals_created = Counter(
            "signals_created", "Signals created, by source (model|manual) and delivery (live|shadow)",
            ["source", "delivery"], registry=r,
        )  # fmt: skip
        self.signal_loop_errors = Counter("signal_loop_errors", "Signal-loop passes that failed", registry=r)
        # what mt5db_api.deps.require_scope increments
        self.auth_failures = Counter("auth_failures", "Requests refused with 401/403", ["reason"], registry=r)
        self.rate_limited = Counter("serving_rate_limited", "Requests refused with 429", registry=r)
        self.errors = Counter("serving_errors", "Requests failed on our side", ["reason"], registry=r)
        r.register(_StoreCollector(loaded))
