"""The generated alert rules with non-default thresholds from a TradingStack spec, unit-tested
with the real `promtool test rules` (no cluster): each threshold moves where its alert fires.
(grafana/alerts/mt5db-alerts.test.yaml covers every alert at the default thresholds.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mt5db_harness.prometheus import LocalPrometheus
from mt5db_operator.resources.monitoring import rule_groups
from mt5db_operator.specs import Meta, TradingStackSpec

pytestmark = pytest.mark.prometheus

STACK = TradingStackSpec.parse(
    {"monitoring": {"thresholds": {"errorRatio": 0.1, "stallMinutes": 30, "latencyP95Seconds": 2.0,
                                   "duplicateRatio": 0.95}}},
    Meta("demo", "trading"),
)  # fmt: skip
SEL = 'namespace="trading", job="demo-api"'


def _alert(name: str) -> dict[str, Any]:
    return next(r for g in rule_groups(STACK) for r in g["rules"] if r.get("alert") == name)


def _expected(name: str, value: str = "") -> list[dict[str, Any]]:
    """The alert as it fires, its annotations rendered (`value` is what {{ $value | ... }} prints)."""
    rule = _alert(name)
    annotations = {k: re.sub(r"\{\{ \$value \| \w+ \}\}", value, v) for k, v in rule["annotations"].items()}
    return [{"exp_labels": rule["labels"], "exp_annotations": annotations}]


def test_generated_rules_fire_when_they_should(prometheus: LocalPrometheus, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(STACK)}))
    three_days = 3 * 24 * 60
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {   # 20 % of requests fail: above the 10 % ratio; 8 % (the next case) is not.
                "interval": "1m",
                "input_series": [
                    {"series": f'ingest_requests_total{{{SEL}, status="500"}}', "values": "0+2x60"},
                    {"series": f'ingest_requests_total{{{SEL}, status="200"}}', "values": "0+8x60"},
                    {"series": f"ingest_candles_inserted_total{{{SEL}}}", "values": "0+100x60"},
                    {"series": f"up{{{SEL}}}", "values": "1x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "MT5DBIngestErrorRatioHigh", "exp_alerts": _expected("MT5DBIngestErrorRatioHigh", "20%")},
                    {"eval_time": "30m", "alertname": "MT5DBIngestStalled", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "MT5DBApiDown", "exp_alerts": []},
                ],
            },
            {   # Below every moved threshold: 8 % 5xx, p95 0.975 s (< 2 s), 90 % duplicates (< 95 %),
                # a symbol silent for 20 minutes (< 30).
                "interval": "1m",
                "input_series": [
                    {"series": f'ingest_requests_total{{{SEL}, status="500"}}', "values": "0+8x60"},
                    {"series": f'ingest_requests_total{{{SEL}, status="200"}}', "values": "0+92x60"},
                    {"series": f'ingest_latency_seconds_bucket{{{SEL}, route="/ingest", le="0.5"}}', "values": "0x60"},
                    {"series": f'ingest_latency_seconds_bucket{{{SEL}, route="/ingest", le="1"}}', "values": "0+10x60"},
                    {"series": f'ingest_latency_seconds_bucket{{{SEL}, route="/ingest", le="+Inf"}}', "values": "0+10x60"},
                    {"series": f"ingest_duplicates_total{{{SEL}}}", "values": "0+90x60"},
                    {"series": f"ingest_candles_inserted_total{{{SEL}}}", "values": "0+10x60"},
                    {"series": f"ingest_candles_updated_total{{{SEL}}}", "values": "0x60"},
                    {"series": f'ingest_symbol_last_received_timestamp_seconds{{{SEL}, symbol="EURUSD"}}', "values": "0x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": "MT5DBIngestErrorRatioHigh", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "MT5DBIngestLatencyHigh", "exp_alerts": []},
                    {"eval_time": "40m", "alertname": "MT5DBDuplicateRatioHigh", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "MT5DBSymbolNoData", "exp_alerts": []},
                    {"eval_time": "40m", "alertname": "MT5DBSymbolNoData",
                     "exp_alerts": [{"exp_labels": {**_alert("MT5DBSymbolNoData")["labels"], "symbol": "EURUSD"},
                                     "exp_annotations": {
                                         "summary": "No data for EURUSD on stack trading/demo for more than 30m.",
                                         "description": "The last candle or tick of EURUSD arrived 40m 0s ago, in "
                                         "market hours. Check the collector EA's chart and its Journal."}}]},
                ],
            },
            {   # Nothing stored: fires on a market day (1970-01-01 is a Thursday), never on Saturday.
                "interval": "1m",
                "input_series": [
                    {"series": f"ingest_candles_inserted_total{{{SEL}}}", "values": f"0x{three_days}"},
                    {"series": f'ingest_requests_total{{{SEL}, status="200"}}', "values": f"0+1x{three_days}"},
                ],
                "alert_rule_test": [
                    {"eval_time": "2h", "alertname": "MT5DBIngestStalled", "exp_alerts": _expected("MT5DBIngestStalled")},
                    {"eval_time": "2d12h", "alertname": "MT5DBIngestStalled", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "MT5DBIngestErrorRatioHigh", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "MT5DBApiDown", "exp_alerts": _expected("MT5DBApiDown")},
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
    stale = _expected("MT5DBChampionStale")
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
                    {"eval_time": "30m", "alertname": "MT5DBChampionStale", "exp_alerts": []},  # `for: 1h`
                    {"eval_time": "90m", "alertname": "MT5DBChampionStale", "exp_alerts": stale},
                    {"eval_time": "10m", "alertname": "MT5DBSignalsUnacked", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "MT5DBSignalsUnacked", "exp_alerts": _expected("MT5DBSignalsUnacked")},
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
                    {"eval_time": "150m", "alertname": "MT5DBChampionStale", "exp_alerts": []},
                    {"eval_time": "50m", "alertname": "MT5DBSignalsUnacked", "exp_alerts": []},
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
