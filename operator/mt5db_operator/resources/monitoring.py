"""Monitoring children: ServiceMonitor and PrometheusRule (Prometheus Operator) and the Grafana
dashboard ConfigMap for the sidecar; a second ServiceMonitor for `mt5db serve` when serving is on.

The rules are built here from the stack's thresholds (and rendered for the default stack into
grafana/alerts/ by grafana/generate.py); the dashboards are the files of grafana/dashboards/
(carried in `dashboard_files.FILES`), never built here. Every query uses metrics the API or serving exports.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.resources.dashboard_files import FILES
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


# FX trades from Sunday about 21:00-22:00 UTC to Friday about 21:00-22:00 UTC (the hour moves with
# daylight saving). Only Monday 00:00 to Friday 20:59 UTC counts as market hours for the no-data
# alerts, so neither the Sunday open nor the Friday close alerts in either season.
MARKET_HOURS = "((day_of_week() >= 1 and day_of_week() <= 4) or (day_of_week() == 5 and hour() < 21))"


def _alert(
    stack: TradingStackSpec, name: str, expr: str, duration: str, severity: str, summary: str, description: str,
    keep_firing: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    rule: dict[str, Any] = {
        "alert": name,
        "expr": expr,
        "for": duration,
        # Alert names are the same for every stack; the stack and its namespace are labels.
        "labels": {"severity": severity, "namespace": stack.namespace, "stack": stack.name},
        "annotations": {"summary": summary, "description": description},
    }
    if keep_firing:
        rule["keep_firing_for"] = keep_firing
    return rule


def trading_rules(stack: TradingStackSpec) -> dict[str, Any]:
    """The trading loop's alerts: a stale champion (serving's `model_age_seconds`) and delivered
    signals nobody acknowledged (the API sweeper's `signals_unacked_deliveries`)."""
    mon = stack.monitoring
    unacked = f"{mon.unacked_minutes}m"
    who = f"stack {stack.namespace}/{stack.name}"
    return {
        "name": f"{stack.name}.trading.alerts",
        "rules": [
            _alert(
                stack,
                "MT5DBChampionStale",
                f'max by (model) (model_age_seconds{{{_serving_selector(stack)}, alias="champion"}}) '
                f"> {mon.champion_max_age_days * 86400}",
                "1h",
                "warning",
                f"A champion of {who} was trained more than {mon.champion_max_age_days} days ago.",
                "Retrain (mt5db train --promote ifBetter or a TrainingRun); serving stops trading a "
                "champion older than its max model age.",
            ),
            _alert(
                stack,
                "MT5DBSignalsUnacked",
                f"max(signals_unacked_deliveries{{{_selector(stack)}}}) > 0",
                unacked,
                "warning",
                f"Signals of {who} were delivered and not acknowledged for {unacked}.",
                "An executor EA polls /signals/next but never calls /signals/ack: check its Journal.",
            ),
        ],
    }


def rule_groups(stack: TradingStackSpec) -> list[dict[str, Any]]:
    """Prometheus rule groups for one stack, thresholds from its spec (also rendered into
    grafana/alerts/mt5db-alerts.yaml by grafana/generate.py, and what the promtool tests see)."""
    sel = _selector(stack)
    mon = stack.monitoring
    stall = f"{mon.stall_minutes}m"
    total = f"sum(rate(ingest_requests_total{{{sel}}}[5m]))"
    errors = f'sum(rate(ingest_requests_total{{{sel}, status=~"5.."}}[5m]))'
    candles = " + ".join(
        f"sum(rate({m}{{{sel}}}[15m]))"
        for m in ("ingest_candles_inserted_total", "ingest_candles_updated_total", "ingest_duplicates_total")
    )
    duplicate_ratio = f"sum(rate(ingest_duplicates_total{{{sel}}}[15m])) / clamp_min({candles}, 1e-9)"
    p95 = (
        "histogram_quantile(0.95, sum by (le) "
        f'(rate(ingest_latency_seconds_bucket{{{sel}, route=~"/ingest.*"}}[5m])))'
    )
    who = f"stack {stack.namespace}/{stack.name}"
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
                {
                    "record": "mt5db:ingest_duplicate_ratio:rate15m",
                    "expr": f"sum by (namespace, job) (rate(ingest_duplicates_total{{{sel}}}[15m])) / clamp_min("
                    + " + ".join(
                        f"sum by (namespace, job) (rate({m}{{{sel}}}[15m]))"
                        for m in (
                            "ingest_candles_inserted_total",
                            "ingest_candles_updated_total",
                            "ingest_duplicates_total",
                        )
                    )
                    + ", 1e-9)",
                },
            ],
        },
        {
            "name": f"{stack.name}.ingest.alerts",
            "rules": [
                _alert(
                    stack,
                    "MT5DBApiDown",
                    f"absent(up{{{sel}}} == 1)",
                    "1m",
                    "critical",
                    f"No API replica of {who} is scraped successfully.",
                    "Prometheus has had no healthy scrape of the API for a minute: the EAs' posts are failing.",
                ),
                _alert(
                    stack,
                    "MT5DBIngestLatencyHigh",
                    f"{p95} > {mon.latency_p95_seconds}",
                    "5m",
                    "warning",
                    f"p95 ingest latency of {who} is above {mon.latency_p95_seconds}s.",
                    "p95 is {{ $value | humanizeDuration }}; the EA times out after about 5 s. "
                    "Check the database and the API's CPU.",
                ),
                # A ratio, not an absolute rate: 5 % of 10 req/s and of 1000 req/s alike.
                _alert(
                    stack,
                    "MT5DBIngestErrorRatioHigh",
                    f"{errors} / clamp_min({total}, 1e-9) > {mon.error_ratio}",
                    "5m",
                    "warning",
                    f"More than {mon.error_ratio:.0%} of the requests to {who} fail with 5xx.",
                    "{{ $value | humanizePercentage }} of requests answer 5xx; the database may be unavailable.",
                ),
                # Per symbol, from the API's capped freshness gauge; the newest of all replicas counts.
                _alert(
                    stack,
                    "MT5DBSymbolNoData",
                    f"(time() - max by (symbol) (ingest_symbol_last_received_timestamp_seconds{{{sel}}})) "
                    f"> {mon.stall_minutes * 60} and on() {MARKET_HOURS}",
                    "1m",
                    "warning",
                    f"No data for {{{{ $labels.symbol }}}} on {who} for more than {stall}.",
                    "The last candle or tick of {{ $labels.symbol }} arrived {{ $value | humanizeDuration }} "
                    "ago, in market hours. Check the collector EA's chart and its Journal.",
                ),
                # No candle stored at all on a market day (e.g. every EA is down, or a restarted API
                # has no symbol to report stale yet).
                _alert(
                    stack,
                    "MT5DBIngestStalled",
                    f"sum(rate(ingest_candles_inserted_total{{{sel}}}[{stall}])) == 0 and on() {MARKET_HOURS}",
                    stall,
                    "warning",
                    f"{who} stored no new candle for {stall} in market hours.",
                    "Check the collector EAs and the API's /ingest answers.",
                    keep_firing="5m",
                ),
                # The database behind the API: readiness failing on every replica, or requests
                # answered 503 database_unavailable.
                _alert(
                    stack,
                    "MT5DBDatabaseUnavailable",
                    f"max(db_ready{{{sel}}}) == 0 or "
                    f'sum(rate(ingest_errors_total{{{sel}, reason="database_unavailable"}}[5m])) > 0',
                    "2m",
                    "critical",
                    f"The database of {who} is unavailable to the API.",
                    "Readiness checks fail or requests are answered 503 database_unavailable; nothing "
                    "unacknowledged is stored. Check the database pod and its volume.",
                ),
                # Routine for the PRO collector while the market is closed, hence market hours only.
                _alert(
                    stack,
                    "MT5DBDuplicateRatioHigh",
                    f"{duplicate_ratio} > {mon.duplicate_ratio} and on() {MARKET_HOURS}",
                    "15m",
                    "info",
                    f"More than {mon.duplicate_ratio:.0%} of the candles sent to {who} are resends.",
                    "{{ $value | humanizePercentage }} of candles changed nothing: an EA may be re-sending "
                    "its history or a fallback file is being replayed.",
                ),
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


def dashboards(stack: TradingStackSpec) -> dict[str, str]:
    """The dashboards of grafana/dashboards/ for this stack: the same files with three changes,
    so several stacks can share one Grafana: the uid gains a suffix unique to the stack, the
    title names the stack, and the namespace/job/serving variables start on the stack's own values."""
    suffix = hashlib.sha256(f"{stack.namespace}/{stack.name}".encode()).hexdigest()[:8]
    current = {"namespace": stack.namespace, "job": stack.api_name(), "serving": stack.serving_name()}
    out = {}
    for name, text in sorted(FILES.items()):
        board = json.loads(text)
        board["uid"] = f"{board['uid'][:31]}-{suffix}"
        board["title"] = f"{board['title']} ({stack.namespace}/{stack.name})"
        for variable in board["templating"]["list"]:
            if variable["name"] in current:
                value = current[variable["name"]]
                variable["current"] = {"text": value, "value": value}
        out[name] = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    return out


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
        "data": dashboards(stack),
    }
