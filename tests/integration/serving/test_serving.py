"""`/predict`, the hot reload and the signal loop against real PostgreSQL, a real champion and the
real API: online features equal offline features row for row; a hot swap under 16 concurrent
clients fails no request; a tampered artifact is refused and the version before keeps serving; a
live champion's signal is polled, filled and acked by the executor."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mt5db_api.executor import run_executor
from mt5db_core.market.tables import select_series
from mt5db_serving.bars import frame_from_rows
from mt5db_training.features import compute_features
from mt5db_training.sources import load_candles

from .conftest import SYMBOL, Stack

pytestmark = pytest.mark.postgres


def _wait(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_predict_answers_the_champion_and_refuses_with_reasons(stack: Stack) -> None:
    client = stack.serving_http()
    reply = client.get(f"/predict?symbol={SYMBOL}&timeframe=H1")
    assert reply.status == 200, reply.body
    body = reply.json()
    newest = pd.Timestamp(stack.candles.index[-1])
    assert body["bar_ts"] == (newest - pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the closed one
    assert body["model_version"] == "rf_ret_PLANT_H1:v1" and body["alias"] == "champion"
    assert set(body["returns"]) == {"1", "5"} and all(isinstance(v, float) for v in body["returns"].values())
    assert body["signal_horizon"] == 1 and body["beats_baselines"] is True
    assert 0 <= body["model_age_s"] < 3600 and isinstance(body["ood"], bool)
    again = client.get(f"/predict?symbol={SYMBOL}&timeframe=16385").json()  # the MT5 code of H1
    assert again["cached"] is True and again["returns"] == body["returns"]
    cases = [
        ("/predict?symbol=GBPUSD&timeframe=H1", 404, "no_champion"),
        (f"/predict?symbol={SYMBOL}&timeframe=H1&alias=challenger", 404, "no_challenger"),
        (f"/predict?symbol={SYMBOL}&timeframe=H7", 400, "invalid_timeframe"),
        ("/predict?symbol=EUR/USD&timeframe=H1", 400, "invalid_symbol"),
        (f"/predict?symbol={SYMBOL}&timeframe=H1&alias=staging", 400, "invalid_alias"),
    ]
    for path, status, detail in cases:
        got = client.get(path)
        assert (got.status, got.json()["detail"]) == (status, detail), path
    assert "mt5db models promote" in client.get("/predict?symbol=GBPUSD&timeframe=H1").json()["reason"]
    assert stack.serving_http(key=None).get(f"/predict?symbol={SYMBOL}&timeframe=H1").status == 401
    assert stack.serving_http(key=stack.ea_key).get(f"/predict?symbol={SYMBOL}&timeframe=H1").status == 200
    # POST with the candles up to that bar: the same prediction as from the stored history
    closed = stack.candles[stack.candles.index < newest].iloc[-600:]
    items = [{"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": r.open, "high": r.high, "low": r.low,
              "close": r.close, "volume": int(r.volume)} for ts, r in zip(closed.index, closed.itertuples(), strict=True)]  # fmt: skip
    posted = client.post("/predict", orjson.dumps({"symbol": SYMBOL, "timeframe": "H1", "candles": items}))
    assert posted.status == 200, posted.body
    assert posted.json()["returns"] == body["returns"] and posted.json()["bar_ts"] == body["bar_ts"]
    short = client.post(
        "/predict", orjson.dumps({"symbol": SYMBOL, "timeframe": "H1", "candles": items[-100:]})
    )
    assert (short.status, short.json()["detail"]) == (422, "insufficient_history")
    bad = client.post("/predict", orjson.dumps({"symbol": SYMBOL, "timeframe": "H1",
                                                 "candles": [*items[:-1], items[-1] | {"high": 0.5}]}))  # fmt: skip
    assert bad.status == 400 and bad.json()["detail"] == "invalid_candles"
    assert bad.json()["errors"][0]["index"] == len(items) - 1
    assert client.post("/predict", b"[1,2]").status == 400
    assert client.post("/predict", b'{"symbol":"PLANT","timeframe":"H1"}').json()["field"] == "candles"
    metrics = client.get("/prometheus").body.decode()
    assert 'predictions_total{cached="true",model_version="rf_ret_PLANT_H1:v1"}' in metrics
    assert "prediction_latency_seconds_bucket" in metrics and 'model_age_seconds{alias="champion"' in metrics
    assert 'champion_info{kind="rf",live_eligible="true",model="rf_ret_PLANT_H1",version="1"} 1.0' in metrics


def test_online_features_equal_offline_features_row_for_row(stack: Stack) -> None:
    """Serving's path (the newest `history_bars` rows before each bar through select_series) against
    training's (load_candles over the whole series): the same values at every one of 48 bars."""
    offline = compute_features(load_candles(stack.dsn, SYMBOL, "H1"))
    history = stack.serving.settings.history_bars
    bars = list(offline.index[-49:-1])
    for bar in bars:
        end = pd.Timestamp(bar).to_pydatetime().replace(tzinfo=UTC) + timedelta(seconds=1)
        rows = stack.fetch(select_series(newest_first=True), SYMBOL, "H1", None, end, history)
        online = compute_features(frame_from_rows(rows)).iloc[-1]
        assert online.name == bar
        np.testing.assert_allclose(online.to_numpy(), offline.loc[bar].to_numpy(), rtol=1e-9, atol=1e-12)
    assert len(bars) == 48


def test_a_live_champions_signal_reaches_the_executor(stack: Stack) -> None:
    """The champion beats its baselines and its bar closed minutes ago: its signal is live."""
    rows = _wait("the champion's signal", lambda: stack.fetch(
        "SELECT id, side, delivery, shadow_reason, bar_ts, sl_pips, tp_pips, meta FROM signals "
        "WHERE source = 'model' AND model_version_id = 1"))  # fmt: skip
    (signal,) = rows
    assert signal["delivery"] == "live" and signal["shadow_reason"] is None, signal["shadow_reason"]
    assert (
        signal["side"] in ("BUY", "SELL") and signal["sl_pips"] > 0 and signal["tp_pips"] > signal["sl_pips"]
    )
    meta = orjson.loads(signal["meta"])
    assert meta["version"] == "rf_ret_PLANT_H1:v1" and meta["horizon"] == 1 and meta["source"] == "model"
    time.sleep(1.0)  # further passes find the bar signalled already: still one signal
    assert len(stack.fetch("SELECT id FROM signals WHERE model_version_id = 1")) == 1
    summary = asyncio.run(run_executor(url=stack.api.url, api_key=stack.ea_key, account_id="42", symbols=[SYMBOL],
                                       timeframe="H1", polls=1, echo=False, fill_wait_s=5))  # fmt: skip
    (outcome,) = summary.outcomes
    assert outcome.status == "FILLED" and outcome.signal_id == str(signal["id"])
    assert outcome.bar_ts == pd.Timestamp(stack.candles.index[-1]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert outcome.price == pytest.approx(float(stack.candles["open"].iloc[-1]))
    (state,) = stack.fetch("SELECT state FROM signals WHERE id = $1", signal["id"])
    assert state["state"] == "ACKED"
    assert (
        stack.fetch("SELECT status FROM signal_acks WHERE signal_id = $1", signal["id"])[0]["status"]
        == "FILLED"
    )


def _hammer(stack: Stack, stop: threading.Event, seen: dict[str, int], failures: list[str]) -> None:
    client = stack.serving_http()
    try:
        while not stop.is_set():
            try:
                reply = client.get(f"/predict?symbol={SYMBOL}&timeframe=H1")
            except OSError as exc:
                failures.append(repr(exc))
                client = stack.serving_http()
                continue
            if reply.status != 200:
                failures.append(f"{reply.status} {reply.body[:200]!r}")
                continue
            version = reply.json()["model_version"]
            seen[version] = seen.get(version, 0) + 1
    finally:
        client.close()


def test_hot_swap_under_load_and_a_tampered_artifact_refused(stack: Stack) -> None:
    stop = threading.Event()
    seen: dict[str, int] = {}
    failures: list[str] = []
    threads = [threading.Thread(target=_hammer, args=(stack, stop, seen, failures)) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        # v2: another recipe, promoted over the gate; serving hears the NOTIFY and swaps
        assert stack.train("champion-2", "--promote", "always", "--n-estimators", "10") == 0
        _wait("v2 to serve", lambda: seen.get("rf_ret_PLANT_H1:v2", 0) > 50)
        # v3: registered only, then its stored bytes are altered (as only a superuser could:
        # the table refuses UPDATE), then promoted by a person
        assert stack.train("tampered-3", "--promote", "never", "--seed", "3") == 0
        stack.sql(
            "ALTER TABLE model_artifacts DISABLE TRIGGER model_artifacts_immutable; "
            "UPDATE model_artifacts SET bytes = bytes || '\\x00'::bytea WHERE sha256 = "
            "(SELECT artifact_sha256 FROM model_versions WHERE version = 3); "
            "ALTER TABLE model_artifacts ENABLE TRIGGER model_artifacts_immutable"
        )
        from mt5db_core.cli import main

        assert (
            main(["models", "promote", "rf_ret_PLANT_H1:v3", "--database-url", stack.dsn, "--reason", "test"])
            == 0
        )
        models = _wait(
            "the refusal", lambda: (m := stack.serving_http().get("/models").json())["refused"] and m
        )
        (refused,) = models["refused"]
        assert refused["version"] == "rf_ret_PLANT_H1:v3" and "sha256" in refused["reason"]
        assert [m["version"] for m in models["loaded"]] == ["rf_ret_PLANT_H1:v2"]  # the one before serves on
        before = seen.get("rf_ret_PLANT_H1:v2", 0)
        _wait("v2 to keep answering", lambda: seen.get("rf_ret_PLANT_H1:v2", 0) > before + 100)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert "rf_ret_PLANT_H1:v3" not in seen and seen["rf_ret_PLANT_H1:v1"] > 0
    metrics = stack.serving_http().get("/prometheus").body.decode()
    assert 'model_reloads_total{outcome="refused"} 1.0' in metrics
