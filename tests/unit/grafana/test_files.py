"""The Grafana files: generated and current, copied byte for byte into the operator, and held to
the rules of Grafana's dashboard linter (its module is not served by the proxy here, so its
rules that apply are checked below; tests/integration/grafana/ adds the Go SDK's strict schema
check and runs every query against real servers)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from mt5db_api.prometheus import ApiMetrics
from mt5db_core.market import tables
from mt5db_operator.instruments import OperatorMetrics
from mt5db_operator.resources.dashboard_files import FILES
from mt5db_serving.metrics import ServingMetrics

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "grafana" / "dashboards"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", REPO / "grafana" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def targets(board: dict[str, Any], kind: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in board["panels"] for t in p["targets"] if t["datasource"]["type"] == kind]


def exported_names() -> set[str]:
    """Every sample name the API, serving and the operator really export (from their own registries)."""
    names = {"up"}
    registries = (
        ApiMetrics(lambda: None).registry,
        ServingMetrics(list).registry,
        OperatorMetrics().registry,
    )
    for registry in registries:
        for family in registry.collect():
            base = family.name
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


def test_generated_files_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert generator().main(["--check"]) == 0, capsys.readouterr().out


def test_the_operator_carries_the_files_byte_for_byte() -> None:
    on_disk = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert on_disk and on_disk == FILES


def test_uids_are_pinned_and_unique_and_panels_well_formed() -> None:
    uids = []
    for name, board in boards().items():
        assert board["uid"] == name.removesuffix(".json") and len(board["uid"]) <= 31, name
        uids.append(board["uid"])
        assert board["editable"] is False and board["title"] and board["description"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            assert panel["title"] and panel["description"], panel["title"]
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, f"{panel['title']} overlaps another panel"
            cells |= mine
    assert len(uids) == len(set(uids))


def test_no_hard_coded_datasource() -> None:
    for name, board in boards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert (
            variables["datasource"]["type"] == "datasource"
            and variables["datasource"]["query"] == "prometheus"
        )
        for panel in board["panels"]:
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                match = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
                assert match, f"{name}: {panel['title']} names a datasource uid {ref['uid']!r}"
                assert variables[match.group(1)]["type"] == "datasource"
                assert variables[match.group(1)]["query"] == ref["type"]


def test_prometheus_queries_are_scoped_use_rate_interval_and_exported_metrics() -> None:
    names = exported_names()
    for name, board in boards().items():
        variables = {v["name"] for v in board["templating"]["list"]}
        assert {"namespace", "job"} <= variables, name
        for panel, target in targets(board, "prometheus"):
            expr = target["expr"]
            operator_metric = "mt5db_operator_" in expr
            assert 'namespace=~"$namespace"' in expr, panel["title"]
            # serving's panels select its own job (`mt5db serve` is a separate workload)
            job = 'job=~"$serving"' if 'job=~"$serving"' in expr and "serving" in variables else 'job=~"$job"'
            assert operator_metric or job in expr, panel["title"]
            for window in re.findall(r"(?:rate|increase)\([^\[]+\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "$__range"), (panel["title"], window)
            used = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\{", expr))
            assert used and used <= names, (panel["title"], used - names)


def test_sql_reads_only_the_platforms_tables_and_never_counts_the_whole_hypertable() -> None:
    ours = {tables.MARKET_DATA, tables.TICKS, tables.MODEL_VERSIONS, tables.MODEL_ALIASES,
            tables.MODEL_ALIAS_HISTORY, tables.SIGNALS}  # fmt: skip
    catalogs = {"pg_stat_user_tables", "pg_inherits"}
    for board in boards().values():
        for panel, target in targets(board, "grafana-postgresql-datasource"):
            sql = target["rawSql"]
            assert target["rawQuery"] is True and target["format"] in ("table", "time_series")
            read = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b(?!\s*\()", sql)) - {
                "pairs",
                "syms",
                "newest",
            }
            assert read and read <= ours | catalogs, (panel["title"], read)
            # market_data is read through its primary key only: per (symbol, timeframe) pair found by
            # the loose index scan, or with symbol and timeframe fixed.
            if tables.MARKET_DATA in read:
                assert "m.symbol = p.symbol AND m.timeframe = p.timeframe" in sql or (
                    "symbol IN ($symbol) AND timeframe = '$timeframe'" in sql
                ), panel["title"]


def test_the_seeds_ten_panels_and_the_platforms_additions_exist() -> None:
    titles = {p["title"] for b in boards().values() for p in b["panels"]}
    seed = {"Candles inserted", "API up", "Records in the database", "Active symbols", "Ingestion rate",
            "Records per minute", "Last data received per symbol (top 20)", "Distribution by symbol",
            "Price: major pairs", "Latest market data (last 50)"}  # fmt: skip
    added = {"Ingest latency", "Rejected items by reason", "Staleness per symbol", "Model champion and age",
             "Last successful backup", "Last verified restore", "Predictions by model version",
             "Prediction latency p95", "Signals per minute", "Model age"}  # fmt: skip
    assert seed <= titles and added <= titles


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    rules = yaml.safe_load((REPO / "grafana" / "alerts" / "mt5db-alerts.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((REPO / "grafana" / "alerts" / "mt5db-alerts.test.yaml").read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts == fires == quiet
