#!/usr/bin/env python3
"""Writes the Grafana dashboards and the alert rules of MT5 Trading DB from the definitions below.

    .venv/bin/python grafana/generate.py           # (re)write every generated file
    .venv/bin/python grafana/generate.py --check   # exit 1 and name the files that are stale

What it writes (never edit these by hand; edit this script and run it):

- `grafana/dashboards/*.json`: the dashboards, the one source Grafana users import and the
  operator ships (`docs/decisions/0007-grafana-dashboards-are-files.md`);
- `operator/mt5db_operator/resources/dashboard_files.py`: the same files' text, byte for byte, as
  a Python module, so they travel inside the operator's wheel and image without package-data
  rules (a unit test compares the two);
- `grafana/alerts/mt5db-alerts.yaml`: the alert and recording rules the operator generates
  (`mt5db_operator.resources.monitoring.rule_groups`), rendered for a TradingStack `mt5db` in
  namespace `mt5db` with the CRD's default thresholds, for a Prometheus without the Prometheus
  Operator; `grafana/alerts/mt5db-alerts.test.yaml` (hand-written) is its `promtool test rules`.

Every Prometheus query uses only metrics the API, `mt5db serve` or the operator exports, scoped by
the `$namespace`/`$job` variables (`$serving` for serving's own job); every SQL query reads only tables of the migration chain and is
cheap on large tables (loose index scans over the primary key, no count(*) over the hypertable).
Both are run against real servers in tests/integration/grafana/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "grafana" / "dashboards"
ALERTS = REPO / "grafana" / "alerts" / "mt5db-alerts.yaml"
OPERATOR_COPY = REPO / "operator" / "mt5db_operator" / "resources" / "dashboard_files.py"

PROM = {"type": "prometheus", "uid": "${datasource}"}
PG = {"type": "grafana-postgresql-datasource", "uid": "${postgres}"}
SEL = 'namespace=~"$namespace", job=~"$job"'
RI = "$__rate_interval"

# The (symbol, timeframe) pairs of market_data by a loose index scan over its primary key
# (symbol, timeframe, ts): one index probe per pair instead of a scan of every row.
PAIRS = """WITH RECURSIVE pairs AS (
  (SELECT symbol, timeframe FROM market_data ORDER BY symbol, timeframe LIMIT 1)
  UNION ALL
  SELECT nxt.symbol, nxt.timeframe FROM pairs p CROSS JOIN LATERAL (
    SELECT m.symbol, m.timeframe FROM market_data m
    WHERE (m.symbol, m.timeframe) > (p.symbol, p.timeframe)
    ORDER BY m.symbol, m.timeframe LIMIT 1) nxt
)"""


# -- building blocks -------------------------------------------------------------------------------


def prom(expr: str, legend: str = "__auto", *, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": PROM, "expr": expr, "legendFormat": legend, "range": not instant}
    if instant:
        target["instant"] = True
        target["format"] = "table"
    return target


def sql(raw: str, fmt: str = "table") -> dict[str, Any]:
    return {"datasource": PG, "editorMode": "code", "format": fmt, "rawQuery": True, "rawSql": raw.strip()}


LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
TOOLTIP = {"mode": "multi", "sort": "desc"}
REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _stat_options(color_mode: str = "value") -> dict[str, Any]:
    return {
        "reduceOptions": REDUCE, "orientation": "auto", "textMode": "auto", "colorMode": color_mode,
        "graphMode": "none", "justifyMode": "auto", "wideLayout": True, "showPercentChange": False,
        "percentChangeColorMode": "standard",
    }  # fmt: skip


def _options(kind: str) -> dict[str, Any]:
    if kind == "timeseries":
        return {"legend": LEGEND, "tooltip": TOOLTIP}
    if kind == "stat":
        return _stat_options()
    if kind == "table":
        return {"showHeader": True, "frameIndex": 0, "cellHeight": "sm"}
    if kind == "piechart":
        return {
            "pieType": "pie", "reduceOptions": {**REDUCE, "calcs": ["lastNotNull"]}, "tooltip": TOOLTIP,
            "orientation": "auto", "displayLabels": ["name", "percent"],
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": [],
                       "values": ["value", "percent"]},
        }  # fmt: skip
    if kind == "bargauge":
        return {
            "reduceOptions": REDUCE, "orientation": "horizontal", "displayMode": "basic", "valueMode": "color",
            "legend": {**LEGEND, "showLegend": False},
            "namePlacement": "left", "showUnfilled": True, "sizing": "auto", "minVizWidth": 8,
            "minVizHeight": 16, "maxVizHeight": 300,
        }  # fmt: skip
    raise ValueError(kind)


def _thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


class Board:
    """Lays panels out left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(
        self, kind: str, title: str, description: str, targets: list[dict[str, Any]], *, w: int, h: int,
        unit: str = "short", thresholds: dict[str, Any] | None = None, decimals: int | None = None,
        overrides: list[dict[str, Any]] | None = None, transformations: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        datasource = targets[0]["datasource"]
        defaults: dict[str, Any] = {"unit": unit}
        if thresholds:
            defaults["thresholds"] = thresholds
            defaults["color"] = {"mode": "thresholds"}
        if decimals is not None:
            defaults["decimals"] = decimals
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": _options(kind),
            "targets": [{"refId": chr(ord("A") + i), **t} for i, t in enumerate(targets)],
        }
        if transformations:
            panel["transformations"] = transformations
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def _datasource_var(name: str, label: str, plugin: str) -> dict[str, Any]:
    return {"type": "datasource", "name": name, "label": label, "query": plugin, "hide": 0,
            "refresh": 1, "regex": "", "options": []}  # fmt: skip


def _prom_var(name: str, label: str, query: str) -> dict[str, Any]:
    return {"type": "query", "name": name, "label": label, "datasource": PROM, "query": query,
            "definition": query, "refresh": 2, "sort": 1, "hide": 0, "multi": False, "includeAll": False,
            "options": []}  # fmt: skip


STACK_VARS = [
    _datasource_var("datasource", "Prometheus", "prometheus"),
    _prom_var("namespace", "Namespace", "label_values(ingest_requests_total, namespace)"),
    _prom_var("job", "API (job)", 'label_values(ingest_requests_total{namespace=~"$namespace"}, job)'),
]
POSTGRES_VAR = _datasource_var("postgres", "PostgreSQL", "grafana-postgresql-datasource")
SYMBOLS_SQL = """WITH RECURSIVE syms AS (
  (SELECT symbol FROM market_data ORDER BY symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT m.symbol FROM market_data m WHERE m.symbol > s.symbol ORDER BY m.symbol LIMIT 1)
  FROM syms s WHERE s.symbol IS NOT NULL
)
SELECT symbol FROM syms WHERE symbol IS NOT NULL"""
MAJORS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF"]
SYMBOL_VAR = {
    "type": "query", "name": "symbol", "label": "Symbols (price chart)", "datasource": PG,
    "query": SYMBOLS_SQL, "definition": SYMBOLS_SQL, "refresh": 1, "sort": 1, "hide": 0, "multi": True,
    "includeAll": False, "options": [], "current": {"text": MAJORS, "value": MAJORS},
}  # fmt: skip
TIMEFRAMES = ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "MN1"]
TIMEFRAME_VAR = {
    "type": "custom", "name": "timeframe", "label": "Timeframe (price chart)", "query": ",".join(TIMEFRAMES),
    "hide": 0, "multi": False, "includeAll": False, "current": {"text": "H1", "value": "H1"},
    "options": [{"text": tf, "value": tf, "selected": tf == "H1"} for tf in TIMEFRAMES],
}  # fmt: skip


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict[str, Any]],
              tags: list[str]) -> dict[str, Any]:  # fmt: skip
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mt5db", *tags],
        # Candle times are the broker's clock labelled Z (docs/ea-contract.md §5): shown as stored.
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "title": "MT5 Trading DB",
                "tags": ["mt5db"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "tooltip": "",
                "url": "",
                "targetBlank": False,
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": board.panels,
    }


# -- the seed's ten panels ---------------------------------------------------------------------------


def overview() -> dict[str, Any]:
    b = Board()
    b.add("stat", "Candles inserted", "New candle keys stored in the selected time range (API counter).",
          [prom(f"sum(increase(ingest_candles_inserted_total{{{SEL}}}[$__range]))", "inserted", instant=True)],
          w=6, h=4, decimals=0)  # fmt: skip
    b.add("stat", "API up", "API replicas Prometheus scrapes successfully.",
          [prom(f"sum(up{{{SEL}}})", "replicas up", instant=True)], w=6, h=4, decimals=0,
          thresholds=_thresholds((None, "red"), (1, "green")))  # fmt: skip
    b.add("stat", "Records in the database",
          "Live rows of market_data and ticks (and their TimescaleDB chunks) from PostgreSQL's statistics: "
          "cheap at any size, exact to within the statistics' flush interval.",
          [sql("""SELECT
  coalesce(sum(s.n_live_tup) FILTER (WHERE s.relid = 'market_data'::regclass OR i.inhparent = 'market_data'::regclass), 0)::bigint AS candles,
  coalesce(sum(s.n_live_tup) FILTER (WHERE s.relid = 'ticks'::regclass OR i.inhparent = 'ticks'::regclass), 0)::bigint AS ticks
FROM pg_stat_user_tables s
LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
WHERE s.relid IN ('market_data'::regclass, 'ticks'::regclass)
   OR i.inhparent IN ('market_data'::regclass, 'ticks'::regclass)""")],
          w=6, h=4, decimals=0)  # fmt: skip
    b.add("stat", "Active symbols", "Symbols whose newest bar of some timeframe changed in the last 24 hours.",
          [sql(f"""{PAIRS}
SELECT count(DISTINCT p.symbol) AS "active symbols"
FROM pairs p CROSS JOIN LATERAL (
  SELECT m.updated_at FROM market_data m
  WHERE m.symbol = p.symbol AND m.timeframe = p.timeframe ORDER BY m.ts DESC LIMIT 1) newest
WHERE newest.updated_at > now() - interval '24 hours'""")], w=6, h=4, decimals=0)  # fmt: skip
    b.add("timeseries", "Ingestion rate", "HTTP requests per second on the ingest routes, by route and status.",
          [prom(f'sum by (route, status) (rate(ingest_requests_total{{{SEL}, route=~"/ingest.*"}}[{RI}]))',
                "{{route}} {{status}}")], w=12, h=8, unit="reqps")  # fmt: skip
    b.add("timeseries", "Records per minute",
          "Candles and ticks per minute by outcome: inserted (new bar), updated (a newer snapshot merged), "
          "duplicate (a resend that changed nothing), rejected (invalid item), ticks stored.",
          [prom(f"60 * sum(rate(ingest_candles_inserted_total{{{SEL}}}[{RI}]))", "inserted"),
           prom(f"60 * sum(rate(ingest_candles_updated_total{{{SEL}}}[{RI}]))", "updated"),
           prom(f"60 * sum(rate(ingest_duplicates_total{{{SEL}}}[{RI}]))", "duplicate"),
           prom(f"60 * sum(rate(ingest_rejected_total{{{SEL}}}[{RI}]))", "rejected"),
           prom(f"60 * sum(rate(ingest_ticks_inserted_total{{{SEL}}}[{RI}]))", "ticks")],
          w=12, h=8, unit="short")  # fmt: skip
    b.add("table", "Last data received per symbol (top 20)",
          "Per symbol: when its newest bar last changed (server clock), that bar's time (broker clock) "
          "and the timeframes stored. Newest first.",
          [sql(f"""{PAIRS},
newest AS (
  SELECT p.symbol, p.timeframe, last.ts, last.updated_at FROM pairs p CROSS JOIN LATERAL (
    SELECT m.ts, m.updated_at FROM market_data m
    WHERE m.symbol = p.symbol AND m.timeframe = p.timeframe ORDER BY m.ts DESC LIMIT 1) last
)
SELECT symbol, max(updated_at) AS "last update", max(ts) AS "newest bar (broker clock)",
  extract(epoch FROM now() - max(updated_at))::bigint AS "seconds ago",
  string_agg(timeframe, ',' ORDER BY timeframe) AS timeframes
FROM newest GROUP BY symbol ORDER BY max(updated_at) DESC LIMIT 20""")], w=12, h=9)  # fmt: skip
    b.add("piechart", "Distribution by symbol", "Bars stored per symbol with a bar time in the selected range.",
          [sql(f"""{PAIRS}
SELECT p.symbol AS metric, sum(n.bars)::bigint AS bars
FROM pairs p CROSS JOIN LATERAL (
  SELECT count(*) AS bars FROM market_data m
  WHERE m.symbol = p.symbol AND m.timeframe = p.timeframe AND $__timeFilter(m.ts)) n
GROUP BY p.symbol HAVING sum(n.bars) > 0 ORDER BY 2 DESC""")], w=12, h=9)  # fmt: skip
    b.add("timeseries", "Price: major pairs", "Close of the selected symbols and timeframe (stored bars).",
          [sql("""SELECT ts AS time, symbol AS metric, close
FROM market_data
WHERE symbol IN ($symbol) AND timeframe = '$timeframe' AND $__timeFilter(ts)
ORDER BY 1""", "time_series")], w=24, h=9, unit="none")  # fmt: skip
    b.add("table", "Latest market data (last 50)", "The 50 most recently changed bars over every series.",
          [sql(f"""{PAIRS}
SELECT b.updated_at AS updated, p.symbol, p.timeframe, b.ts AS "bar (broker clock)",
  b.open, b.high, b.low, b.close, b.volume
FROM pairs p CROSS JOIN LATERAL (
  SELECT m.ts, m.open, m.high, m.low, m.close, m.volume, m.updated_at FROM market_data m
  WHERE m.symbol = p.symbol AND m.timeframe = p.timeframe ORDER BY m.ts DESC LIMIT 50) b
ORDER BY b.updated_at DESC, b.ts DESC LIMIT 50""")], w=24, h=10)  # fmt: skip
    return dashboard(
        "mt5db-overview", "MT5 Trading DB / Overview",
        "What arrives and what is stored: the API's ingest counters (Prometheus) and the candles in "
        "PostgreSQL. Bar times are the broker's clock, shown as stored.",
        b, [*STACK_VARS, POSTGRES_VAR, SYMBOL_VAR, TIMEFRAME_VAR], ["overview"],
    )  # fmt: skip


# -- what the platform adds: the ingest path ---------------------------------------------------------


def ingest() -> dict[str, Any]:
    b = Board()
    lat = f'rate(ingest_latency_seconds_bucket{{{SEL}, route=~"/ingest.*"}}[{RI}])'
    b.add("timeseries", "Ingest latency", "p50, p95 and p99 of the ingest routes (every outcome is observed).",
          [prom(f"histogram_quantile({q}, sum by (le) ({lat}))", f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)],
          w=12, h=8, unit="s")  # fmt: skip
    b.add(
        "timeseries",
        "Ingest latency p95 by route",
        "p95 per ingest route.",
        [prom(f"histogram_quantile(0.95, sum by (le, route) ({lat}))", "{{route}}")],
        w=12,
        h=8,
        unit="s",
    )
    b.add("timeseries", "Rejected items by reason",
          "Items refused one by one (their neighbours are stored), by the stable reason code.",
          [prom(f"sum by (reason) (rate(ingest_rejected_total{{{SEL}}}[{RI}]))", "{{reason}}")],
          w=12, h=8, unit="ops")  # fmt: skip
    b.add("timeseries", "Refused requests by reason",
          "Whole requests refused or failed: invalid_json, too_many_items, database_unavailable, ...",
          [prom(f"sum by (reason) (rate(ingest_errors_total{{{SEL}}}[{RI}]))", "{{reason}}"),
           prom(f"sum(rate(ingest_rate_limited_total{{{SEL}}}[{RI}]))", "rate_limited"),
           prom(f"sum by (reason) (rate(auth_failures_total{{{SEL}}}[{RI}]))", "auth {{reason}}")],
          w=12, h=8, unit="reqps")  # fmt: skip
    b.add("bargauge", "Staleness per symbol",
          "Seconds since any API replica last accepted a candle or tick of the symbol (newest of all "
          "replicas). The per-symbol no-data alert fires above the stack's stallMinutes in market hours.",
          [prom(f"sort_desc(time() - max by (symbol) (ingest_symbol_last_received_timestamp_seconds{{{SEL}}}))",
                "{{symbol}}", instant=True)],
          w=12, h=9, unit="s", thresholds=_thresholds((None, "green"), (300, "yellow"), (900, "red")))  # fmt: skip
    # "or vector(0)": without any 5xx series the ratio is 0, not "No data".
    b.add("timeseries", "Duplicate and error ratios",
          "Share of candles that changed nothing (resends; routine for the PRO collector) and share of "
          "requests answered 5xx.",
          [prom(f"sum(rate(ingest_duplicates_total{{{SEL}}}[{RI}])) / clamp_min(sum(rate(ingest_candles_inserted_total{{{SEL}}}[{RI}])) + sum(rate(ingest_candles_updated_total{{{SEL}}}[{RI}])) + sum(rate(ingest_duplicates_total{{{SEL}}}[{RI}])), 1e-9)", "duplicate ratio"),
           prom(f'(sum(rate(ingest_requests_total{{{SEL}, status=~"5.."}}[{RI}])) or vector(0)) / clamp_min(sum(rate(ingest_requests_total{{{SEL}}}[{RI}])), 1e-9)', "5xx ratio")],
          w=12, h=9, unit="percentunit")  # fmt: skip
    b.add("stat", "Database ready", "Replicas whose last readiness check reached the database (db_ready).",
          [prom(f"sum(db_ready{{{SEL}}})", "ready", instant=True),
           prom(f"count(db_ready{{{SEL}}})", "checked", instant=True)],
          w=6, h=5, decimals=0)  # fmt: skip
    b.add("timeseries", "Database pool", "asyncpg pool per replica: open, idle and maximum connections.",
          [prom(f"sum(db_pool_size{{{SEL}}})", "open"), prom(f"sum(db_pool_idle{{{SEL}}})", "idle"),
           prom(f"sum(db_pool_max_size{{{SEL}}})", "max")], w=9, h=5)  # fmt: skip
    b.add("timeseries", "Items per request", "p50 and p95 of the items per ingest request, candles and ticks.",
          [prom(f"histogram_quantile({q}, sum by (le, kind) (rate(ingest_batch_size_bucket{{{SEL}}}[{RI}])))",
                f"{{{{kind}}}} p{int(q * 100)}") for q in (0.5, 0.95)], w=9, h=5)  # fmt: skip
    return dashboard(
        "mt5db-ingest", "MT5 Trading DB / Ingest",
        "The ingest path in operation: latency, rejects and refusals by reason, per-symbol staleness, "
        "duplicate and error ratios, the database.",
        b, STACK_VARS, ["ingest"],
    )  # fmt: skip


# -- what the platform adds: models and backups -------------------------------------------------------


# `mt5db serve` is its own scrape job (the TradingStack's `<name>-serving` Service).
SERVING_VAR = _prom_var(
    "serving", "Serving (job)", 'label_values(model_load_seconds_count{namespace=~"$namespace"}, job)'
)
SSEL = 'namespace=~"$namespace", job=~"$serving"'
MAX_MODEL_AGE_S = 90 * 86400  # serving's default max_model_age_s: older champions trade no more


def trading() -> dict[str, Any]:
    b = Board()
    b.add("table", "Model champion and age",
          "The registry's aliases: per (symbol, timeframe, model kind) the champion and the challenger, "
          "with the version's verdict, whether its report beats its baselines after costs (only then "
          "may a champion trade live), when the alias last moved and how old the version is.",
          [sql("""SELECT a.symbol, a.timeframe, a.model_kind AS kind, a.alias,
  v.name || ':v' || v.version AS model, v.version, v.verdict, v.beats_baselines,
  a.updated_at AS "alias set", v.created_at AS registered,
  extract(epoch FROM now() - v.created_at)::bigint AS "age (s)"
FROM model_aliases a JOIN model_versions v ON v.id = a.version_id
ORDER BY a.symbol, a.timeframe, a.model_kind, a.alias""")], w=16, h=8)  # fmt: skip
    b.add("stat", "Newest model version", "Age of the newest registered model version, and how many exist.",
          [sql("""SELECT extract(epoch FROM now() - max(created_at))::bigint AS "newest version age",
  count(*) AS versions
FROM model_versions""")], w=8, h=8, unit="s")  # fmt: skip
    b.add("table", "Alias changes (last 20)",
          "Every promotion, challenger, rollback and override with who or what did it and why "
          "(the gate's reason is printed here as `mt5db models show` prints it).",
          [sql("""SELECT h.changed_at AS changed, h.symbol, h.timeframe, h.model_kind AS kind, h.alias, h.action,
  v.name || ':v' || v.version AS version, p.name || ':v' || p.version AS previous, h.actor, h.reason
FROM model_alias_history h
LEFT JOIN model_versions v ON v.id = h.version_id
LEFT JOIN model_versions p ON p.id = h.previous_version_id
ORDER BY h.id DESC LIMIT 20""")], w=24, h=8)  # fmt: skip
    b.add("timeseries", "Predictions by model version",
          "Predictions per second answered by `mt5db serve`, by model version (GET/POST /predict and the "
          "signal loop's cached reads).",
          [prom(f"sum by (model_version) (rate(predictions_total{{{SSEL}}}[{RI}]))", "{{model_version}}")],
          w=12, h=8, unit="ops")  # fmt: skip
    b.add("timeseries", "Prediction latency p95",
          "p95 time to answer a prediction (features from the stored history or the body, then the "
          "model), by source (stored | body).",
          [prom(f"histogram_quantile(0.95, sum by (le, source) (rate(prediction_latency_seconds_bucket{{{SSEL}}}[{RI}])))",
                "{{source}} p95")], w=12, h=8, unit="s")  # fmt: skip
    b.add("timeseries", "Signals per minute",
          "Signals created (model ones by serving, manual ones by the API; shadow ones are stored and "
          "never delivered), delivered to pollers, acked by status, and expired by the sweeper.",
          [prom(f'60 * sum by (delivery) (rate(signals_created_total{{{SSEL}, source="model"}}[{RI}]))',
                "created model {{delivery}}"),
           prom(f'60 * sum by (delivery) (rate(signals_created_total{{{SEL}, source="manual"}}[{RI}]))',
                "created manual {{delivery}}"),
           prom(f"60 * sum(rate(signals_delivered_total{{{SEL}}}[{RI}]))", "delivered"),
           prom(f"60 * sum by (status) (rate(signals_acked_total{{{SEL}}}[{RI}]))", "acked {{status}}"),
           prom(f"60 * sum by (delivery) (rate(signals_expired_total{{{SEL}}}[{RI}]))", "expired {{delivery}}")],
          w=12, h=8, unit="short")  # fmt: skip
    b.add("bargauge", "Model age",
          "Seconds since each loaded version was trained, per model and alias (serving's model_age_seconds). "
          "A champion past its max model age keeps answering /predict but trades no more; the "
          "champion-stale alert fires at the stack's championMaxAgeDays.",
          [prom(f"max by (model, alias) (model_age_seconds{{{SSEL}}})", "{{model}} {{alias}}", instant=True)],
          w=12, h=8, unit="s",
          thresholds=_thresholds((None, "green"), (MAX_MODEL_AGE_S / 2, "yellow"), (MAX_MODEL_AGE_S, "red")))  # fmt: skip
    b.add("table", "Signals by state",
          "Signals created in the selected range by delivery (live | shadow), source and state "
          "(PENDING, SENT, ACKED, EXPIRED).",
          [sql("""SELECT symbol, timeframe, delivery, source, state, count(*) AS signals, max(ts) AS newest
FROM signals WHERE $__timeFilter(ts)
GROUP BY symbol, timeframe, delivery, source, state ORDER BY symbol, timeframe, delivery, source, state""")],
          w=12, h=8)  # fmt: skip
    b.add("table", "Shadow signals and why (last 20)",
          "Signals recorded but never delivered, with the version that derived them and every reason it "
          "may not trade (a challenger, a report that does not beat its baselines, a stale model or bar).",
          [sql("""SELECT s.ts AS created, s.symbol, s.timeframe, s.side, s.confidence,
  v.name || ':v' || v.version AS model, s.shadow_reason AS reason
FROM signals s LEFT JOIN model_versions v ON v.id = s.model_version_id
WHERE s.delivery = 'shadow'
ORDER BY s.ts DESC LIMIT 20""")], w=12, h=8)  # fmt: skip
    b.add("stat", "Deliveries left unacked",
          "Signals delivered within the last day that no ack answered within the API's ack deadline "
          "(the signals-unacked alert).",
          [prom(f"max(signals_unacked_deliveries{{{SEL}}})", "unacked", instant=True)],
          w=6, h=5, decimals=0, thresholds=_thresholds((None, "green"), (1, "red")))  # fmt: skip
    backup = 'namespace=~"$namespace"'
    b.add("stat", "Last successful backup", "Time since the newest successful backup Job of any policy.",
          [prom(f"time() - max(mt5db_operator_last_backup_success_timestamp_seconds{{{backup}}})", "age",
                instant=True)],
          w=6, h=5, unit="s", thresholds=_thresholds((None, "green"), (90000, "red")))  # fmt: skip
    b.add("stat", "Last verified restore",
          "Time since the newest successful backup of a policy with verify: true (its dump was restored "
          "into a scratch database and compared).",
          [prom(f"time() - max(mt5db_operator_last_backup_verified_timestamp_seconds{{{backup}}})", "age",
                instant=True)],
          w=6, h=5, unit="s", thresholds=_thresholds((None, "green"), (8 * 86400, "red")))  # fmt: skip
    b.add("table", "Backups per policy", "Newest successful and newest verified backup per BackupPolicy.",
          [prom(f"max by (policy) (mt5db_operator_last_backup_success_timestamp_seconds{{{backup}}}) * 1000",
                "succeeded", instant=True),
           prom(f"max by (policy) (mt5db_operator_last_backup_verified_timestamp_seconds{{{backup}}}) * 1000",
                "verified", instant=True)],
          w=6, h=5, unit="dateTimeAsIso",
          transformations=[{"id": "merge", "options": {}}])  # fmt: skip
    return dashboard(
        "mt5db-trading", "MT5 Trading DB / Models and backups",
        "The trading loop: the registry's champions and challengers and their history (PostgreSQL), "
        "serving's predictions and model age, the signals' life (created, delivered, acked, expired, "
        "shadow), and the BackupPolicies (the operator's metrics).",
        b, [*STACK_VARS, SERVING_VAR, POSTGRES_VAR], ["models", "signals", "backups"],
    )  # fmt: skip


def dashboards() -> dict[str, dict[str, Any]]:
    return {"mt5db-overview.json": overview(), "mt5db-ingest.json": ingest(), "mt5db-trading.json": trading()}


# -- rendering ---------------------------------------------------------------------------------------


def render_json(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def render_operator_copy(files: dict[str, str]) -> str:
    lines = [
        '"""The Grafana dashboards of grafana/dashboards/, byte for byte: written by grafana/generate.py,',
        "never by hand (tests/unit/grafana/test_files.py compares them), so they ship inside the",
        'operator\'s wheel and image without package-data rules (docs/decisions/0007)."""',
        "",
        "FILES: dict[str, str] = {",
    ]
    for name, text in sorted(files.items()):
        lines.append(f"    {json.dumps(name)}: {json.dumps(text, ensure_ascii=False)},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_alerts() -> str:
    sys.path[:0] = [str(REPO / "operator"), str(REPO / "core")]
    from mt5db_operator.resources.monitoring import rule_groups
    from mt5db_operator.specs import Meta, TradingStackSpec

    stack = TradingStackSpec.parse({}, Meta(name="mt5db", namespace="mt5db"))
    header = (
        "# Generated by grafana/generate.py from mt5db_operator.resources.monitoring.rule_groups for a\n"
        "# TradingStack `mt5db` in namespace `mt5db` with the default thresholds. Do not edit; the\n"
        "# operator renders the same rules per stack into a PrometheusRule. Tests: mt5db-alerts.test.yaml\n"
    )
    return header + yaml.safe_dump({"groups": rule_groups(stack)}, sort_keys=False, width=1000)


def outputs() -> dict[Path, str]:
    files = {name: render_json(board) for name, board in dashboards().items()}
    out = {DASHBOARDS / name: text for name, text in files.items()}
    out[OPERATOR_COPY] = render_operator_copy(files)
    out[ALERTS] = render_alerts()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that would change")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(REPO))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    orphans = sorted(p.relative_to(REPO) for p in DASHBOARDS.glob("*.json") if p.name not in dashboards())
    for name in stale:
        print(f"{'stale' if args.check else 'wrote'}: {name}")
    for name in orphans:
        print(f"not generated (remove it): {name}")
    return 1 if args.check and (stale or orphans) else 0


if __name__ == "__main__":
    sys.exit(main())
