"""The dashboards pass the Grafana Foundation SDK's strict schema check (built from its Go module;
Grafana's own dashboard linter is not served by the module proxy here), and the alert rules file
passes the real promtool's `check rules` and its unit tests in grafana/alerts/."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mt5db_harness.prometheus import LocalPrometheus

from .helpers import DASHBOARDS, REPO

ALERTS = REPO / "grafana" / "alerts"


def test_dashboards_pass_the_sdks_strict_unmarshal_and_validate(
    go_tool: Callable[[str], Path], tmp_path: Path
) -> None:
    dashcheck = go_tool("dashcheck")
    files = sorted(DASHBOARDS.glob("*.json"))
    done = subprocess.run([str(dashcheck), *map(str, files)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == len(files) >= 3

    # The check is not vacuous: an unknown panel option and a misspelt query field are refused.
    board = json.loads(files[0].read_text())
    board["panels"][0]["options"]["legendd"] = {}
    board["panels"][0]["targets"][0]["expression"] = "up"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(board))
    done = subprocess.run([str(dashcheck), str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "legendd" in done.stdout and "expression" in done.stdout, done.stdout


@pytest.mark.prometheus
def test_alert_rules_file_checks_and_its_unit_tests_pass(prometheus: LocalPrometheus) -> None:
    checked = prometheus.promtool("check", "rules", str(ALERTS / "mt5db-alerts.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = [
        r for g in yaml.safe_load((ALERTS / "mt5db-alerts.yaml").read_text())["groups"] for r in g["rules"]
    ]
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
    # Every alert of the file has a unit test case (where it fires, and where it does not).
    cases = (ALERTS / "mt5db-alerts.test.yaml").read_text()
    untested = [r["alert"] for r in rules if "alert" in r and f"alertname: {r['alert']}" not in cases]
    assert not untested, untested
    tested = prometheus.promtool("test", "rules", str(ALERTS / "mt5db-alerts.test.yaml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
