"""Monitoring builders: rules, ServiceMonitor and dashboards over the API's real metric names."""

from __future__ import annotations

import json
from pathlib import Path

from mt5db_operator.resources import monitoring as mon
from mt5db_operator.resources import tradingstack as ts
from mt5db_operator.resources.dashboard_files import FILES
from mt5db_operator.specs import Meta, TradingStackSpec

from ..helpers import assert_child, stack


def test_service_monitor_matches_the_api_service_port_and_labels() -> None:
    s = stack(monitoring={"extraLabels": {"release": "kps"}})
    sm = mon.build_service_monitor(s)
    assert_child(sm, "ServiceMonitor", "demo-api")
    assert sm["metadata"]["labels"]["release"] == "kps"
    svc = ts.build_api_service(s)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert sm["spec"]["endpoints"][0]["path"] == "/prometheus"


def test_rules_take_every_threshold_from_the_spec() -> None:
    s = stack(monitoring={"thresholds": {"errorRatio": 0.1, "latencyP95Seconds": 1.5, "stallMinutes": 30,
                                         "duplicateRatio": 0.8}})  # fmt: skip
    rules = {r.get("alert") or r["record"]: r for g in mon.rule_groups(s) for r in g["rules"]}
    error = rules["MT5DBIngestErrorRatioHigh"]["expr"]
    assert "> 0.1" in error and "/ clamp_min(" in error
    assert "> 1.5" in rules["MT5DBIngestLatencyHigh"]["expr"]
    assert "> 1800 and on()" in rules["MT5DBSymbolNoData"]["expr"]
    assert "> 0.8 and on()" in rules["MT5DBDuplicateRatioHigh"]["expr"]
    assert (
        "day_of_week()" in rules["MT5DBIngestStalled"]["expr"] and rules["MT5DBIngestStalled"]["for"] == "30m"
    )
    # every rule is scoped to this stack's own targets (the API, or serving for the champion's age)
    assert all(
        'namespace="trading", job="demo-api"' in r["expr"]
        for n, r in rules.items()
        if n != "MT5DBChampionStale"
    )
    assert 'namespace="trading", job="demo-serving"' in rules["MT5DBChampionStale"]["expr"]


def test_the_seeds_six_alerts_are_there_with_stack_labels() -> None:
    alerts = [r for g in mon.rule_groups(stack()) for r in g["rules"] if "alert" in r]
    names = {r["alert"] for r in alerts}
    assert {"MT5DBApiDown", "MT5DBIngestLatencyHigh", "MT5DBIngestErrorRatioHigh", "MT5DBSymbolNoData",
            "MT5DBDatabaseUnavailable", "MT5DBDuplicateRatioHigh"} <= names  # fmt: skip
    for rule in alerts:
        assert rule["labels"]["stack"] == "demo" and rule["labels"]["namespace"] == "trading"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    durations = {r["alert"]: r["for"] for r in alerts}
    assert durations["MT5DBApiDown"] == "1m"
    assert durations["MT5DBIngestLatencyHigh"] == durations["MT5DBIngestErrorRatioHigh"] == "5m"


def test_the_configmap_carries_the_grafana_files_adjusted_per_stack() -> None:
    cm = mon.build_dashboards_configmap(stack())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(cm["data"]) == set(FILES)
    other = mon.build_dashboards_configmap(TradingStackSpec.parse({}, Meta(name="demo", namespace="other")))
    for name, text in cm["data"].items():
        board, source = json.loads(text), json.loads(FILES[name])
        assert board["uid"].startswith(source["uid"]) and len(board["uid"]) <= 40
        assert board["uid"] != json.loads(other["data"][name])["uid"], "two stacks, two uids"
        assert board["title"] == f"{source['title']} (trading/demo)"
        current = {v["name"]: v.get("current") for v in board["templating"]["list"]}
        assert current["namespace"] == {"text": "trading", "value": "trading"}
        assert current["job"] == {"text": "demo-api", "value": "demo-api"}
        if name == "mt5db-trading.json":  # its serving panels start on the stack's serving job
            assert current["serving"] == {"text": "demo-serving", "value": "demo-serving"}
        # Nothing else differs from the file.
        for key in ("uid", "title", "templating"):
            board.pop(key), source.pop(key)
        assert board == source
    assert sum(len(t) for t in cm["data"].values()) < 1_000_000  # a ConfigMap holds at most 1 MiB


def test_dashboard_label_is_configurable() -> None:
    cm = mon.build_dashboards_configmap(stack(monitoring={"dashboardLabel": {"key": "dash", "value": "yes"}}))
    assert cm["metadata"]["labels"]["dash"] == "yes"


def test_trading_alerts_read_what_serving_and_the_api_export() -> None:
    """The metric names are the exporters' own (mt5db_serving.metrics, mt5db_api.prometheus)."""
    s = stack(
        monitoring={"thresholds": {"championMaxAgeDays": 10, "unackedMinutes": 20}}, serving={"enabled": True}
    )
    rules = {r["alert"]: r for g in mon.rule_groups(s) for r in g["rules"] if "alert" in r}
    stale, unacked = rules["MT5DBChampionStale"], rules["MT5DBSignalsUnacked"]
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
