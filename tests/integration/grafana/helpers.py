"""Reading the dashboards of grafana/dashboards/ and interpolating their queries the way Grafana
does for the variables and macros they use, so the tests can run them against real servers.

No Grafana server exists here: this is the one stand-in. It implements only what the dashboards
use (Grafana's documented expansions), and fails on any `$` it does not know.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "grafana" / "dashboards"
PROMETHEUS = "prometheus"
POSTGRES = "grafana-postgresql-datasource"


def boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panel_targets(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(dashboard/panel title, target) for every target of a datasource type in every dashboard."""
    return [
        (f"{name}: {panel['title']} [{target['refId']}]", target)
        for name, board in boards().items()
        for panel in board["panels"]
        for target in panel["targets"]
        if target["datasource"]["type"] == kind
    ]


def variables(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Query variables whose datasource is of `kind`."""
    return [
        (f"{name}: ${v['name']}", v)
        for name, board in boards().items()
        for v in board["templating"]["list"]
        if v["type"] == "query" and v["datasource"]["type"] == kind
    ]


def _no_unknown(text: str) -> str:
    left = re.findall(r"\$\{?\w+", text)
    assert not left, f"not interpolated: {left} in {text}"
    return text


def promql(expr: str, values: dict[str, str], rate_interval: str = "15s", range_: str = "5m") -> str:
    """Grafana's interpolation for the Prometheus data source: single-value variables are put in
    as they are; $__rate_interval and $__range become durations."""
    out = expr.replace("$__rate_interval", rate_interval).replace("$__range", range_)
    for name, value in values.items():
        out = out.replace(f"${name}", value)
    return _no_unknown(out)


def label_values(query: str) -> tuple[str, str]:
    """`label_values(match, label)` -> (match, label)."""
    found = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
    assert found, query
    return found.group(1), found.group(2)


def sql(raw: str, start: str, end: str, values: dict[str, str | list[str]]) -> str:
    """Grafana's interpolation for its PostgreSQL data source: $__timeFilter(col) becomes
    `col BETWEEN 'start' AND 'end'`; a multi-value variable becomes a quoted, comma-separated
    list; a single value is put in as it is."""
    out = re.sub(r"\$__timeFilter\(([\w.]+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", raw)
    for name, value in values.items():
        text = ",".join("'" + v.replace("'", "''") + "'" for v in value) if isinstance(value, list) else value
        out = out.replace(f"${name}", text)
    return _no_unknown(out)
