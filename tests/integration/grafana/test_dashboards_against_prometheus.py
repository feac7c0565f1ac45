"""Every Prometheus query of the dashboards in grafana/dashboards/ (panels and variables) and
every recording rule the operator generates returns data from a real Prometheus that scrapes a
live API under load, a live `mt5db serve` with a champion trained by the real `mt5db train
--promote ifBetter`, and a live operator: the queries use metric names and labels the API,
serving and the operator really export, with the labels a ServiceMonitor-discovered target carries.

The load is what the EAs, an executor, an admin and the kubelet do: candles, ticks, bad input,
a manual signal leased by `/signals/next` and acked, signals left to expire, `/predict` calls.

The operator reconciles a TradingStack and a verifying BackupPolicy on the real control plane,
and a backup Job is played to success (no kubelet here), so its backup gauges hold real values.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest

from mt5db_core.cli import main
from mt5db_core.net import free_port, wait_for_http
from mt5db_harness.control_plane import ControlPlane
from mt5db_harness.prometheus import LocalPrometheus
from mt5db_harness.synthetic import planted_candles
from mt5db_operator.context import Options
from mt5db_operator.kubeapi import Kube
from mt5db_operator.launch import EmbeddedOperator
from mt5db_operator.resources import monitoring
from mt5db_operator.specs import Meta, TradingStackSpec
from mt5db_serving.server import ThreadedServing
from mt5db_serving.settings import ServingSettings

from ..operator.helpers import CRDS, EXAMPLES, GV, create, install_crds, load, mark_pods_succeeded, wait_for
from . import helpers

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.kube]

MT5DB = [sys.executable, "-m", "mt5db_core.cli"]
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
PLANT = "PLANT"  # the served series: recent H1 candles with a learnable pattern
FAST = ["--n-estimators", "20", "--folds", "3", "--test-bars", "300", "--bootstrap-reps", "100",
        "--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1", "--horizons", "1,5"]  # fmt: skip


@pytest.fixture
def live_api(migrated_with_key: tuple[str, str]) -> Iterator[tuple[int, str]]:
    """`mt5db api` on a migrated database, with one key of every scope (the EAs', an executor's
    and an admin's calls); the sweeper runs every half second so expiry shows within a test."""
    database_url, secret_key = migrated_with_key
    port = free_port()
    env = {**os.environ, "MT5DB_SIGNAL_SWEEP_INTERVAL_S": "0.5"}
    proc = subprocess.Popen([*MT5DB, "api", "--database-url", database_url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
        yield port, secret_key
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def live_serving(database_url: str, live_api: tuple[int, str], tmp_path: Path) -> Iterator[int]:
    """`mt5db serve` (in a thread) with a champion: recent planted H1 candles in market_data, the
    real `mt5db train --promote ifBetter` on them; yields its port. Its signal loop derives the
    newest closed bar's signal."""
    candles = planted_candles(3000, end=pd.Timestamp.now("UTC").tz_localize(None), seed=4, weekends=True)
    records = [
        (PLANT, "H1", pd.Timestamp(ts).to_pydatetime().replace(tzinfo=UTC), r.open, r.high, r.low, r.close,
         int(r.volume))
        for ts, r in zip(candles.index, candles.itertuples(index=False), strict=True)
    ]  # fmt: skip

    async def store() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            columns = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
            await conn.copy_records_to_table("market_data", records=records, columns=columns)
        finally:
            await conn.close()

    asyncio.run(store())
    argv = ["train", "--model", "rf", "--database-url", database_url, "--symbol", PLANT, "--timeframe", "H1"]
    assert main([*argv, "--run", "dash", "--out", str(tmp_path / "run"), *FAST, "--promote", "ifBetter"]) == 0
    settings = ServingSettings(database_url=database_url, port=free_port(), signal_interval_s=0.5,  # type: ignore[arg-type]
                               reload_poll_s=1.0, rate_limit_per_s=0, closed_after_s=4 * 3600)  # fmt: skip
    with ThreadedServing(settings) as serving:
        yield serving.settings.port


@pytest.fixture
def stack_namespace(kube_api: Any) -> Iterator[str]:
    """A namespace outside the session operator's `t-*`, for this module's own operator."""
    from kubernetes import client

    name = f"g-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def operator_metrics_port(kube: ControlPlane, kube_api: Any) -> Iterator[int]:
    """The operator embedded, watching `g-*`, serving its metrics on a loopback port."""
    install_crds(Kube(kube_api), [d for path in sorted(CRDS.glob("*.yaml")) for d in load(path)])
    port = free_port()
    op = EmbeddedOperator(
        namespaces=["g-*"], kubeconfig=str(kube.kubeconfig), metrics_port=port, metrics_addr="127.0.0.1",
        options=Options(resync_seconds=3.0, discovery_ttl_seconds=1.0, run_poll_seconds=2.0),
    ).start()  # fmt: skip
    try:
        yield port
    finally:
        op.close()


def call(port: int, path: str, key: str | None, body: bytes | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body or None)."""
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers,
                                 method="POST" if body is not None else "GET")  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None


def request(port: int, path: str, key: str | None, body: bytes | None = None) -> int:
    return call(port, path, key, body)[0]


def candle(symbol: str, ts: str, close: float, volume: int) -> dict[str, Any]:
    return {"ts": ts, "symbol": symbol, "timeframe": "M1", "open": 1.1, "high": 1.2, "low": 1.0,
            "close": close, "volume": volume}  # fmt: skip


class Load:
    """What the EAs, an executor, an admin and the kubelet do, in a thread: candle batches (new
    bars, growing snapshots, identical resends), a bad item, ticks, a wrong key, bad JSON,
    readiness probes; a manual signal leased by `/signals/next` and acked FILLED, now and then one
    nobody polls (it expires); `/predict` on serving."""

    def __init__(self, port: int, key: str, serving_port: int) -> None:
        self.port, self.key, self.serving_port = port, key, serving_port
        self.stop = threading.Event()
        self.codes: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _post(self, path: str, body: Any, key: str | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        code = request(self.port, path, key or self.key, raw)
        self.codes[code] = self.codes.get(code, 0) + 1

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            # broker clock (about UTC+2): a new bar per symbol each round (walking back a minute),
            # then the same batch again, and the forming bar of the current minute growing
            now = datetime.now(UTC) + timedelta(hours=2)
            bar = (now - timedelta(minutes=n + 1)).strftime("%Y-%m-%dT%H:%M:00Z")
            batch = [candle(s, bar, 1.1 + (n % 7) / 100, 10 + n) for s in SYMBOLS]
            batch.append({**candle("EURUSD", bar, 1.1, 1), "high": 0.5})  # high below low: rejected
            self._post("/ingest", {"items": batch})  # inserted
            self._post("/ingest", {"items": batch})  # the EA re-sends: duplicates
            forming = now.strftime("%Y-%m-%dT%H:%M:00Z")
            self._post("/ingest", candle("USDCAD", forming, 1.4, n))  # a bare candle: updated
            tick = {"ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002}
            self._post("/ingest/tick", {"ticks": [tick, tick]})
            self._signal_round(n)
            self.codes_of(request(self.serving_port, f"/predict?symbol={PLANT}&timeframe=H1", self.key))
            if n % 5 == 0:
                self._post("/ingest", b"{not json")
                self._post(
                    "/ingest", {"items": []}, key="mt5_" + "0" * 8 + "_" + "w" * 24
                )  # well-formed, unknown
                request(self.port, "/ready", None)  # the kubelet's readiness probe
            n += 1
            self.stop.wait(0.1)

    def codes_of(self, code: int) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1

    def _signal_round(self, n: int) -> None:
        """An admin's signal, an executor's poll and its ack; every 5th round one left to expire."""
        signal = {"symbol": "EURUSD", "timeframe": "M1", "side": "BUY" if n % 2 else "SELL",
                  "confidence": 0.7, "ttl_sec": 600, "sl_pips": 20, "tp_pips": 40}  # fmt: skip
        self._post("/signals", signal)
        if n % 5 == 0:
            self._post("/signals", {**signal, "symbol": "GBPUSD", "ttl_sec": 1})  # nobody polls GBPUSD
        code, body = call(self.port, "/signals/next?account_id=1001&symbols=EURUSD&timeframe=M1", self.key)
        self.codes_of(code)
        for leased in (body or {}).get("signals", []):
            ack = {"id": leased["id"], "status": "FILLED", "symbol": "EURUSD", "side": leased["side"],
                   "mt5_ticket": 9_000_000 + n, "price": 1.1, "ts_exec": "2026.01.05 10:00:01",
                   "account_id": "1001"}  # fmt: skip
            self._post("/signals/ack", ack)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def backup_succeeded(admin: Kube, ns: str) -> None:
    """Reconcile the example stack and verifying policy, and play one backup Job to success."""
    (stack,) = load(EXAMPLES / "tradingstack.yaml")
    (policy,) = load(EXAMPLES / "backuppolicy.yaml")
    assert policy["spec"]["verify"] is True
    create(admin, stack, ns)
    create(admin, policy, ns)
    cron = wait_for(lambda: admin.get("batch/v1", "CronJob", ns, "trading-nightly-backup"), 60, "CronJob")
    template = cron["spec"]["jobTemplate"]
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "trading-nightly-backup-manual", "labels": template["metadata"]["labels"],
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron["metadata"]["name"],
                                             "uid": cron["metadata"]["uid"], "controller": True}]},
           "spec": template["spec"]}  # fmt: skip
    create(admin, job, ns)
    mark_pods_succeeded(admin, ns, "mt5db.io/backup-policy=trading-nightly")
    wait_for(lambda: ((admin.get(GV, "BackupPolicy", ns, "trading-nightly") or {}).get("status") or {})
             .get("lastSuccessTime"), 60, "lastSuccessTime")  # fmt: skip


def test_every_panel_variable_and_recording_rule_returns_data(
    prometheus: LocalPrometheus,
    live_api: tuple[int, str],
    live_serving: int,
    stack_namespace: str,
    operator_metrics_port: int,
    kube_api: Any,
) -> None:
    port, key = live_api
    ns = stack_namespace
    stack = TradingStackSpec.parse({}, Meta(name="trading", namespace=ns))
    backup_succeeded(Kube(kube_api), ns)
    # The labels ServiceMonitor-discovered targets carry: job = the Service, namespace = its namespace.
    prometheus.scrape(stack.api_name(), port, path="/prometheus", labels={"namespace": ns})
    prometheus.scrape(stack.serving_name(), live_serving, path="/prometheus", labels={"namespace": ns})
    prometheus.scrape("mt5db-operator", operator_metrics_port, labels={"namespace": "mt5db-system"},
                      honor_labels=True)  # fmt: skip
    values = {"namespace": ns, "job": stack.api_name(), "serving": stack.serving_name()}
    with Load(port, key, live_serving) as load_:
        sel = f'job="{stack.api_name()}", namespace="{ns}"'
        assert prometheus.wait_for_series(f"ingest_candles_inserted_total{{{sel}}} > 0", timeout=30)
        assert prometheus.wait_for_series(
            f"rate(ingest_candles_inserted_total{{{sel}}}[15s]) > 0", timeout=30
        )
        time.sleep(5)  # a few scrapes of steady load for the ratio and latency windows

        queries = [
            (name, helpers.promql(t["expr"], values)) for name, t in helpers.panel_targets(helpers.PROMETHEUS)
        ]
        queries += [
            (r["record"], r["expr"])
            for g in monitoring.rule_groups(stack)
            for r in g["rules"]
            if "record" in r
        ]
        assert len(queries) >= 30
        empty = [(name, expr) for name, expr in queries
                 if not finite(prometheus.wait_for_series(expr, timeout=20))]  # fmt: skip
        assert not empty, f"queries without a finite value against the live API and operator: {empty}"

        for name, variable in helpers.variables(helpers.PROMETHEUS):
            match, label = helpers.label_values(helpers.promql(variable["query"], values))
            assert values[variable["name"]] in prometheus.label_values(label, match), name

        # The alert expressions are valid PromQL on this server (empty is fine: nothing is wrong).
        for group in monitoring.rule_groups(stack):
            for rule in group["rules"]:
                if "alert" in rule:
                    prometheus.query(rule["expr"])
    # The load really exercised every outcome the panels show.
    assert {200, 201, 400, 401} <= set(load_.codes), load_.codes
