"""Monitoring builders: rules, ServiceMonitor and dashboards over the API's real metric names."""

from __future__ import annotations

import json

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
    assert all('namespace="trading", job="demo-api"' in r["expr"] for r in rules.values())


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
