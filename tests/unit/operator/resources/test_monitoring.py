"""Monitoring builders: rules, ServiceMonitor and dashboards over the API's real metric names."""

from __future__ import annotations

import json
from pathlib import Path

from mt5db_operator.resources import monitoring as mon
from mt5db_operator.resources import tradingstack as ts

from ..helpers import assert_child, stack

API_METRICS = {
    "ingest_candles_inserted_total",
    "ingest_requests_total",
    "ingest_latency_seconds_bucket",
    "ingest_duplicates_total",
    "up",
}


def test_service_monitor_matches_the_api_service_port_and_labels() -> None:
    s = stack(monitoring={"extraLabels": {"release": "kps"}})
    sm = mon.build_service_monitor(s)
    assert_child(sm, "ServiceMonitor", "demo-api")
    assert sm["metadata"]["labels"]["release"] == "kps"
    svc = ts.build_api_service(s)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert sm["spec"]["endpoints"][0]["path"] == "/prometheus"


def test_rules_use_thresholds_ratios_and_market_days() -> None:
    s = stack(monitoring={"thresholds": {"errorRatio": 0.1, "latencyP95Seconds": 1.5, "stallMinutes": 30}})
    rules = {r.get("alert") or r["record"]: r for g in mon.rule_groups(s) for r in g["rules"]}
    assert (
        "> 0.1" in rules["DemoIngestErrorRatioHigh"]["expr"]
        and "/ clamp_min(" in rules["DemoIngestErrorRatioHigh"]["expr"]
    )
    assert "> 1.5" in rules["DemoIngestLatencyHigh"]["expr"]
    assert (
        "day_of_week()" in rules["DemoIngestStalled"]["expr"] and rules["DemoIngestStalled"]["for"] == "30m"
    )
    # every rule is scoped to this stack's own targets (the API, or serving for the champion's age)
    assert all(
        'namespace="trading", job="demo-api"' in r["expr"]
        for n, r in rules.items()
        if n != "DemoChampionStale"
    )
    assert 'namespace="trading", job="demo-serving"' in rules["DemoChampionStale"]["expr"]


def test_dashboard_queries_only_exported_metrics() -> None:
    cm = mon.build_dashboards_configmap(stack())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(cm["data"]["mt5db-ingest.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        assert any(name in expr for name in API_METRICS), expr
    assert len(json.dumps(board)) < 1_000_000


def test_dashboard_label_is_configurable() -> None:
    cm = mon.build_dashboards_configmap(stack(monitoring={"dashboardLabel": {"key": "dash", "value": "yes"}}))
    assert cm["metadata"]["labels"]["dash"] == "yes"


def test_trading_alerts_read_what_serving_and_the_api_export() -> None:
    """The metric names are the exporters' own (mt5db_serving.metrics, mt5db_api.prometheus)."""
    s = stack(
        monitoring={"thresholds": {"championMaxAgeDays": 10, "unackedMinutes": 20}}, serving={"enabled": True}
    )
    rules = {r["alert"]: r for g in mon.rule_groups(s) for r in g["rules"] if "alert" in r}
    stale, unacked = rules["DemoChampionStale"], rules["DemoSignalsUnacked"]
    assert 'model_age_seconds{namespace="trading", job="demo-serving", alias="champion"}' in stale["expr"]
    assert stale["expr"].endswith(f"> {10 * 86400}")
    assert 'signals_unacked_deliveries{namespace="trading", job="demo-api"}' in unacked["expr"]
    assert unacked["for"] == "20m"
    sm = mon.build_serving_service_monitor(s)
    assert_child(sm, "ServiceMonitor", "demo-serving")
    svc = ts.build_serving_service(s)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]


def test_the_alerts_metric_names_exist_in_the_exporters() -> None:
    from mt5db_api.prometheus import ApiMetrics

    api_names = {m.name for m in ApiMetrics(lambda: None).registry.collect()}
    assert "signals_unacked_deliveries" in api_names
    serving_source = (
        Path(__file__).resolve().parents[4] / "serving" / "mt5db_serving" / "metrics.py"
    ).read_text()
    assert '"model_age_seconds"' in serving_source and '"champion_info"' in serving_source
