"""The generated alert rules, unit-tested with the real `promtool test rules` (no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mt5db_harness.prometheus import LocalPrometheus
from mt5db_operator.resources.monitoring import rule_groups
from mt5db_operator.specs import Meta, TradingStackSpec

pytestmark = pytest.mark.prometheus

STACK = TradingStackSpec.parse({"monitoring": {"thresholds": {"errorRatio": 0.1, "stallMinutes": 15}}},
                               Meta("demo", "trading"))  # fmt: skip
SEL = 'namespace="trading", job="demo-api"'


def _alert(name: str) -> dict[str, Any]:
    return next(r for g in rule_groups(STACK) for r in g["rules"] if r.get("alert") == name)


def _expected(name: str) -> list[dict[str, Any]]:
    rule = _alert(name)
    return [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]


def test_generated_rules_fire_when_they_should(prometheus: LocalPrometheus, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(STACK)}))
    three_days = 3 * 24 * 60
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {   # 20 % of requests fail: above the 10 % ratio; 5 % would not be.
                "interval": "1m",
                "input_series": [
                    {"series": f'ingest_requests_total{{{SEL}, status="500"}}', "values": "0+2x60"},
                    {"series": f'ingest_requests_total{{{SEL}, status="200"}}', "values": "0+8x60"},
                    {"series": f"ingest_candles_inserted_total{{{SEL}}}", "values": "0+100x60"},
                    {"series": f"up{{{SEL}}}", "values": "1x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "DemoIngestErrorRatioHigh", "exp_alerts": _expected("DemoIngestErrorRatioHigh")},
                    {"eval_time": "30m", "alertname": "DemoIngestStalled", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "DemoApiDown", "exp_alerts": []},
                ],
            },
            {   # Nothing stored: fires on a market day (1970-01-01 is a Thursday), never on Saturday.
                "interval": "1m",
                "input_series": [
                    {"series": f"ingest_candles_inserted_total{{{SEL}}}", "values": f"0x{three_days}"},
                    {"series": f'ingest_requests_total{{{SEL}, status="200"}}', "values": f"0+1x{three_days}"},
                ],
                "alert_rule_test": [
                    {"eval_time": "2h", "alertname": "DemoIngestStalled", "exp_alerts": _expected("DemoIngestStalled")},
                    {"eval_time": "2d12h", "alertname": "DemoIngestStalled", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "DemoIngestErrorRatioHigh", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "DemoApiDown", "exp_alerts": _expected("DemoApiDown")},
                ],
            },
        ],
    }  # fmt: skip
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))
    checked = prometheus.promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = prometheus.promtool("test", "rules", str(test_file))
    assert done.returncode == 0, done.stdout + done.stderr


def test_trading_alerts_fire_when_they_should(prometheus: LocalPrometheus, tmp_path: Path) -> None:
    """A champion older than championMaxAgeDays (30) fires, a fresh one does not; delivered signals
    left unacked for unackedMinutes (15) fire, none left unacked does not."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(STACK)}))
    serving = 'namespace="trading", job="demo-serving"'
    stale = _expected("DemoChampionStale")
    stale[0]["exp_labels"] = stale[0]["exp_labels"] | {"model": "rf_ret_EURUSD_H1"}
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'model_age_seconds{{{serving}, alias="champion", model="rf_ret_EURUSD_H1"}}',
                     "values": f"{31 * 86400}+60x180"},
                    {"series": f'model_age_seconds{{{serving}, alias="challenger", model="rf_ret_GBPUSD_H1"}}',
                     "values": f"{99 * 86400}+60x180"},  # a challenger's age alerts nobody
                    {"series": f"signals_unacked_deliveries{{{SEL}}}", "values": "3x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "DemoChampionStale", "exp_alerts": []},  # `for: 1h`
                    {"eval_time": "90m", "alertname": "DemoChampionStale", "exp_alerts": stale},
                    {"eval_time": "10m", "alertname": "DemoSignalsUnacked", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "DemoSignalsUnacked", "exp_alerts": _expected("DemoSignalsUnacked")},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'model_age_seconds{{{serving}, alias="champion", model="rf_ret_EURUSD_H1"}}',
                     "values": f"{2 * 86400}+60x180"},
                    {"series": f"signals_unacked_deliveries{{{SEL}}}", "values": "0x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "150m", "alertname": "DemoChampionStale", "exp_alerts": []},
                    {"eval_time": "50m", "alertname": "DemoSignalsUnacked", "exp_alerts": []},
                ],
            },
        ],
    }  # fmt: skip
    test_file = tmp_path / "trading_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))
    checked = prometheus.promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = prometheus.promtool("test", "rules", str(test_file))
    assert done.returncode == 0, done.stdout + done.stderr
