"""Monitoring children: ServiceMonitors and the PrometheusRule (Prometheus Operator) and Grafana
dashboard ConfigMaps for the sidecar. Queries use only metrics the API exports:
ingest_candles_inserted_total, ingest_requests_total{method,status}, ingest_latency_seconds
(histogram), ingest_duplicates_total and signals_unacked_deliveries; and serving's
model_age_seconds (the trading alerts).
"""

from __future__ import annotations

import json
from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.resources.labels import labels, meta, selector
from mt5db_operator.specs import TradingStackSpec


def _selector(stack: TradingStackSpec) -> str:
    # The ServiceMonitor's targets carry `job=<service>` and `namespace` (Prometheus Operator
    # defaults), which scopes every rule and panel to this one stack.
    return f'namespace="{stack.namespace}", job="{stack.api_name()}"'


def _serving_selector(stack: TradingStackSpec) -> str:
    return f'namespace="{stack.namespace}", job="{stack.serving_name()}"'


def _monitor_labels(stack: TradingStackSpec) -> dict[str, str]:
    return labels(stack.name, "monitoring", **stack.monitoring.extra_labels)


def build_service_monitor(stack: TradingStackSpec) -> dict[str, Any]:
    return {
        "apiVersion": c.MONITORING_GROUP_VERSION,
        "kind": "ServiceMonitor",
        "metadata": meta(stack.api_name(), stack.namespace, _monitor_labels(stack)),
        "spec": {
            "selector": {"matchLabels": selector(stack.name, "api")},
            "namespaceSelector": {"matchNames": [stack.namespace]},
            "endpoints": [{"port": "http", "path": "/prometheus", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    }


def build_serving_service_monitor(stack: TradingStackSpec) -> dict[str, Any]:
    """Scrapes `mt5db serve` (predictions, model age, champion info, model signals)."""
    return {
        "apiVersion": c.MONITORING_GROUP_VERSION,
        "kind": "ServiceMonitor",
        "metadata": meta(stack.serving_name(), stack.namespace, _monitor_labels(stack)),
        "spec": {
            "selector": {"matchLabels": selector(stack.name, "serving")},
            "namespaceSelector": {"matchNames": [stack.namespace]},
            "endpoints": [{"port": "http", "path": "/prometheus", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    }


def trading_rules(stack: TradingStackSpec) -> dict[str, Any]:
    """The trading loop's alerts: a stale champion (serving's `model_age_seconds`) and delivered
    signals nobody acknowledged (the API sweeper's `signals_unacked_deliveries`)."""
    mon = stack.monitoring
    prefix = "".join(part.capitalize() for part in stack.name.replace("_", "-").split("-"))
    max_age = mon.champion_max_age_days * 86400
    unacked = f"{mon.unacked_minutes}m"
    return {
        "name": f"{stack.name}.trading.alerts",
        "rules": [
            {
                "alert": f"{prefix}ChampionStale",
                "expr": f'max by (model) (model_age_seconds{{{_serving_selector(stack)}, alias="champion"}}) > {max_age}',
                "for": "1h",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": f"A champion of stack {stack.name} was trained more than {mon.champion_max_age_days} days ago.",
                    "description": "Retrain (mt5db train --promote ifBetter or a TrainingRun); serving stops "
                    "trading a champion older than its max model age.",
                },
            },
            {
                "alert": f"{prefix}SignalsUnacked",
                "expr": f"max(signals_unacked_deliveries{{{_selector(stack)}}}) > 0",
                "for": unacked,
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": f"Signals of stack {stack.name} were delivered and not acknowledged for {unacked}.",
                    "description": "An executor EA polls /signals/next but never calls /signals/ack: check its log.",
                },
            },
        ],
    }


def rule_groups(stack: TradingStackSpec) -> list[dict[str, Any]]:
    """Prometheus rule groups (also what `promtool check rules` sees in the tests)."""
    sel = _selector(stack)
    mon = stack.monitoring
    prefix = "".join(part.capitalize() for part in stack.name.replace("_", "-").split("-"))
    stall = f"{mon.stall_minutes}m"
    total = f"sum(rate(ingest_requests_total{{{sel}}}[5m]))"
    errors = f'sum(rate(ingest_requests_total{{{sel}, status=~"5.."}}[5m]))'
    return [
        {
            "name": f"{stack.name}.ingest.recording",
            "interval": "30s",
            "rules": [
                {
                    "record": "mt5db:ingest_candles_inserted:rate5m",
                    "expr": f"sum by (namespace, job) (rate(ingest_candles_inserted_total{{{sel}}}[5m]))",
                },
                {
                    "record": "mt5db:ingest_latency_seconds:p95_5m",
                    "expr": "histogram_quantile(0.95, sum by (namespace, job, le) "
                    f"(rate(ingest_latency_seconds_bucket{{{sel}}}[5m])))",
                },
            ],
        },
        {
            "name": f"{stack.name}.ingest.alerts",
            "rules": [
                {
                    "alert": f"{prefix}ApiDown",
                    "expr": f"absent(up{{{sel}}} == 1)",
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {
                        "summary": f"No API replica of stack {stack.name} is being scraped successfully.",
                        "description": "Prometheus has no healthy scrape of the API for 5 minutes.",
                    },
                },
                {
                    # FX markets close at the weekend: only alert on a stall Monday to Friday.
                    "alert": f"{prefix}IngestStalled",
                    "expr": f"sum(rate(ingest_candles_inserted_total{{{sel}}}[{stall}])) == 0 "
                    "and on() (day_of_week() > 0 and day_of_week() < 6)",
                    "for": stall,
                    "keep_firing_for": "5m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": f"Stack {stack.name} stored no candles for {stall} on a market day.",
                        "description": "Check the collector EAs and the API's /ingest error list.",
                    },
                },
                {
                    # A ratio, not an absolute rate: 5 % of 10 req/s and of 1000 req/s alike.
                    "alert": f"{prefix}IngestErrorRatioHigh",
                    "expr": f"{errors} / clamp_min({total}, 1e-9) > {mon.error_ratio}",
                    "for": "10m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": f"More than {mon.error_ratio:.0%} of /ingest requests fail with 5xx.",
                        "description": "Server errors on ingest; the database may be unavailable.",
                    },
                },
                {
                    "alert": f"{prefix}IngestLatencyHigh",
                    "expr": "histogram_quantile(0.95, sum by (le) "
                    f"(rate(ingest_latency_seconds_bucket{{{sel}}}[5m]))) > {mon.latency_p95_seconds}",
                    "for": "10m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": f"p95 ingest latency above {mon.latency_p95_seconds}s.",
                        "description": "The API histogram's buckets must extend above this threshold.",
                    },
                },
            ],
        },
        trading_rules(stack),
    ]


def build_prometheus_rule(stack: TradingStackSpec) -> dict[str, Any]:
    return {
        "apiVersion": c.MONITORING_GROUP_VERSION,
        "kind": "PrometheusRule",
        "metadata": meta(stack.rules_name(), stack.namespace, _monitor_labels(stack)),
        "spec": {"groups": rule_groups(stack)},
    }


def _panel(
    panel_id: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def dashboard(stack: TradingStackSpec) -> dict[str, Any]:
    """The ingest dashboard (cheap rate() queries over the API's metrics only)."""
    sel = _selector(stack)
    lat = f"sum by (le) (rate(ingest_latency_seconds_bucket{{{sel}}}[5m]))"
    return {
        "uid": f"mt5db-{stack.namespace}-{stack.name}"[:40],
        "title": f"MT5 Trading DB / {stack.namespace}/{stack.name} / ingest",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["mt5db", "ingest"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}
            ]
        },
        "panels": [
            _panel(1, "Candles stored / s", [(f"sum(rate(ingest_candles_inserted_total{{{sel}}}[5m]))", "stored")], "ops", 0, 0),
            _panel(2, "Requests / s by status", [(f"sum by (status) (rate(ingest_requests_total{{{sel}}}[5m]))", "{{status}}")], "reqps", 12, 0),
            _panel(3, "Ingest latency", [(f"histogram_quantile({q}, {lat})", f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], "s", 0, 8),
            _panel(4, "Duplicates / s", [(f"sum(rate(ingest_duplicates_total{{{sel}}}[5m]))", "duplicates")], "ops", 12, 8),
        ],
    }  # fmt: skip


def build_dashboards_configmap(stack: TradingStackSpec) -> dict[str, Any]:
    mon = stack.monitoring
    body = meta(
        stack.dashboards_name(),
        stack.namespace,
        labels(stack.name, "monitoring", **{mon.dashboard_label: mon.dashboard_label_value}),
        annotations={c.GRAFANA_FOLDER_ANNOTATION: "MT5 Trading DB"},
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": body,
        "data": {"mt5db-ingest.json": json.dumps(dashboard(stack), indent=2, sort_keys=True)},
    }
