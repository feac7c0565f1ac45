"""/prometheus text scraped by a real Prometheus; promtool accepts the exposition."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus]


def test_scraped_by_real_prometheus(api, prometheus, ea_body):
    c = api.client()
    assert c.post("/ingest", ea_body("b_rebuild_batch")).status == 200
    assert c.post("/ingest", ea_body("b_rebuild_batch")).status == 200
    assert c.post("/ingest", b"not json").status == 400
    assert c.post("/ingest", b"{}", key="wrong").status == 401
    prometheus.scrape("mt5db-api", api.port, "/prometheus")
    series = prometheus.wait_for_series('ingest_candles_inserted_total{job="mt5db-api"}')
    assert series and float(series[0]["value"][1]) >= 3
    assert prometheus.wait_for_series('ingest_duplicates_total{job="mt5db-api"} >= 3')
    assert prometheus.wait_for_series('ingest_requests_total{job="mt5db-api",route="/ingest",status="400"}')
    assert prometheus.wait_for_series('ingest_latency_seconds_bucket{job="mt5db-api",le="30.0"}')
    assert prometheus.wait_for_series('auth_failures_total{job="mt5db-api",reason="malformed_key"}')
    assert prometheus.wait_for_series('db_pool_size{job="mt5db-api"}')
    # The one client-controlled label is the capped freshness gauge's symbol (decision 0008).
    labelled = prometheus.query('{job="mt5db-api",symbol!=""}')
    assert {s["metric"]["__name__"] for s in labelled} == {"ingest_symbol_last_received_timestamp_seconds"}
    stored = {item["symbol"] for item in json.loads(ea_body("b_rebuild_batch"))["items"]}
    assert {s["metric"]["symbol"] for s in labelled} == stored


def test_exposition_passes_promtool_and_has_bounded_labels(api, prometheus):
    text = api.client().get("/prometheus", key=None).body
    done = subprocess.run(
        [str(prometheus.promtool_bin), "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {
        line.split("{")[0].split(" ")[0] for line in text.decode().splitlines() if line and line[0] != "#"
    }
    for expected in ("ingest_candles_inserted_total", "ingest_duplicates_total", "ingest_candles_updated_total",
                     "ingest_latency_seconds_bucket", "db_pool_idle", "ingest_rate_limited_total"):  # fmt: skip
        assert expected in names or expected.endswith("_total"), expected
    labelled = {line.split("{")[0] for line in text.decode().splitlines() if "symbol=" in line}
    assert labelled <= {"ingest_symbol_last_received_timestamp_seconds"}, labelled
