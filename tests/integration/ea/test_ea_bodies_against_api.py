"""Every kind of request the MQL5 EAs in ea/ can send, built from their source text, posted to a
live API on a real PostgreSQL: 2xx, and the rows stored are exactly the values the EA printed;
a resend is all duplicates; a 429 carries the Retry-After the collector reads. The executor's
poll and ack run against the signal routes when the API serves them."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from mt5db_core.net import free_port, wait_for_http
from mt5db_harness import mql5

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[3]
COLLECTOR = mql5.read(REPO / "ea" / "MT5DB_Collector.mq5")
EXECUTOR = mql5.read(REPO / "ea" / "MT5DB_Executor.mq5")
MT5DB = [sys.executable, "-m", "mt5db_core.cli"]
CANONICAL = {"2": "M2", "10": "M10", "16386": "H2", "16390": "H6", "16396": "H12"}


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key

    def call(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> tuple[int, str, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, headers=headers,
                                     data=body.encode() if body is not None else None)  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 - loopback
                return r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(), err.headers


def start_api(database_url: str, **env: str) -> subprocess.Popen[bytes]:
    port = free_port()
    proc = subprocess.Popen([*MT5DB, "api", "--database-url", database_url, "--port", str(port)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    proc.port = port  # type: ignore[attr-defined]
    wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
    return proc


@pytest.fixture
def api(migrated_with_key: tuple[str, str]) -> Iterator[Api]:
    proc = start_api(migrated_with_key[0])
    try:
        yield Api(proc.port, migrated_with_key[1])  # type: ignore[attr-defined]
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def collector_headers(key: str, count: int, request_id: int) -> dict[str, str]:
    return mql5.headers(COLLECTOR, {
        "REQID": str(request_id), "COUNT": str(count), "CLIENTTIME": mql5.iso_z(datetime.now(UTC)),
        "BUILD": "4755", "ACCOUNT": "7730215", "NSYMBOLS": "28", "KEY": key,
    })  # fmt: skip


async def stored(database_url: str) -> dict[tuple[str, str, str], asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT symbol, timeframe, ts, open, high, low, close, volume, source FROM market_data"
        )
    finally:
        await conn.close()
    return {(r["symbol"], r["timeframe"], mql5.iso_z(r["ts"].astimezone(UTC))): r for r in rows}


def test_collector_batches_are_stored_exactly_and_a_resend_is_all_duplicates(
    api: Api, migrated_with_key: tuple[str, str]
) -> None:
    rng = random.Random(1313)
    sent: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for request_id, n in enumerate((1, 28, 500), start=1):
        body, values = mql5.collector_batch(COLLECTOR, rng, n, seen)
        headers = collector_headers(api.key, n, request_id)
        status, text, _ = api.call("POST", COLLECTOR.defines["MT5DB_INGEST_PATH"], body, headers)
        assert status == 200, text
        answer = json.loads(text)
        assert answer["inserted"] + answer["updated"] == n and answer["rejected"] == 0, answer
        for key in COLLECTOR.defines["MT5DB_ANSWER_KEYS"].split(","):  # what the EA greps is there
            assert re.search(COLLECTOR.fill("MT5DB_VALUE", {"NAME": key}) + r"\d+", text), key
        again = json.loads(
            api.call("POST", "/ingest", body, collector_headers(api.key, n, request_id + 10))[1]
        )
        assert again["duplicates"] == n and again["inserted"] == again["updated"] == 0  # the EA re-sends
        sent += values

    rows = asyncio.run(stored(migrated_with_key[0]))
    latest = {
        (json.loads(f'"{v["SYMBOL"]}"'), CANONICAL.get(v["TIMEFRAME"], v["TIMEFRAME"]), v["TS"]): v
        for v in sent
    }
    assert len(latest) == len(sent)
    assert set(rows) == set(latest)
    for key, v in latest.items():
        row = rows[key]
        assert (row["open"], row["high"], row["low"], row["close"]) == tuple(
            float(v[k]) for k in ("OPEN", "HIGH", "LOW", "CLOSE")
        ), key
        assert row["volume"] == int(v["VOLUME"])
        assert row["source"] == "MT5DB-Collector/1.00"  # the product token of the EA's User-Agent


def test_the_collectors_default_batch_fits_the_api_and_a_429_says_when_to_retry(
    migrated_with_key: tuple[str, str],
) -> None:
    default = re.search(r"input int\s+MaxItemsPerPost\s*=\s*(\d+);", COLLECTOR.path.read_text())
    assert default and int(default.group(1)) <= 5000  # MT5DB_MAX_ITEMS: no 413 at the default
    proc = start_api(migrated_with_key[0], MT5DB_RATE_LIMIT_PER_S="0.1", MT5DB_RATE_LIMIT_BURST="1")
    try:
        api = Api(proc.port, migrated_with_key[1])  # type: ignore[attr-defined]
        body, _ = mql5.collector_batch(COLLECTOR, random.Random(7), 3)
        codes = [api.call("POST", "/ingest", body, collector_headers(api.key, 3, i)) for i in range(3)]
        limited = [c for c in codes if c[0] == 429]
        assert limited, [c[0] for c in codes]
        raw_headers = "".join(f"{k}: {v}\r\n" for k, v in limited[0][2].items()).lower()
        at = raw_headers.find(COLLECTOR.defines["MT5DB_RETRY_AFTER"])  # the EA's RetryAfterSeconds()
        assert at >= 0
        seconds = re.match(r"\s*(\d+)", raw_headers[at + len(COLLECTOR.defines["MT5DB_RETRY_AFTER"]) :])
        assert seconds and int(seconds.group(1)) >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_executor_poll_and_ack_against_the_signal_routes(api: Api) -> None:
    status, text, _ = api.call("GET", "/openapi.json", None, {})
    paths = json.loads(text)["paths"]
    if "/signals/next" not in paths or "/signals/ack" not in paths:
        pytest.skip("this API does not serve /signals/next and /signals/ack yet (issue 10)")
    headers = mql5.headers(EXECUTOR, {"KEY": api.key})
    signal = {"symbol": "USDCAD", "timeframe": "M15", "side": "SELL", "confidence": 0.41, "ttl_sec": 90,
              "sl_pips": 20, "tp_pips": 40, "meta": {"model": "rf_ret_h5", "ver": "3"}}  # fmt: skip
    created = api.call(
        "POST", "/signals", json.dumps(signal), {**headers, "Content-Type": "application/json"}
    )
    assert created[0] in (200, 201), created[1]

    query = EXECUTOR.fill(
        "MT5DB_NEXT_QUERY", {"ACCOUNT": "7730215", "SYMBOLS": "AUDUSD,USDCAD", "TIMEFRAME": "M15"}
    )
    status, text, _ = api.call("GET", query, None, headers)
    assert status == 200 and EXECUTOR.defines["MT5DB_SIGNALS_ARRAY"] in text, text
    (got,) = json.loads(text)["signals"]
    for name, key in EXECUTOR.defines.items():  # every key the EA reads is in the answer
        if name.startswith("MT5DB_KEY_") and name != "MT5DB_KEY_HEADER":
            assert key in got, key
    assert EXECUTOR.fill("MT5DB_STRING_VALUE", {"NAME": "id"}) + got["id"] in text

    ack = EXECUTOR.fill("MT5DB_ACK_FILLED", {
        "ID": got["id"], "SYMBOL": got["symbol"], "SIDE": got["side"], "TICKET": "884120337", "PRICE": "1.44196",
        "TS": "2025-03-12T14:16:04Z", "ACCOUNT": "7730215",
    })  # fmt: skip
    ack_headers = {**headers, **mql5.headers(EXECUTOR, {"KEY": api.key}), "Content-Type": "application/json"}
    for _ in range(2):  # the EA retries until it sees {"ok":true}; a repeat changes nothing
        status, text, _ = api.call("POST", EXECUTOR.defines["MT5DB_ACK_PATH"], ack, ack_headers)
        assert status == 200 and EXECUTOR.defines["MT5DB_ACK_OK"] in text, text
    rejected = EXECUTOR.fill("MT5DB_ACK_REJECTED", {"ID": str(uuid.uuid4()), "SYMBOL": "USDCAD", "SIDE": "BUY",
                                                   "TS": "2025-03-12T14:16:04Z", "ACCOUNT": "7730215"})  # fmt: skip
    status, text, _ = api.call("POST", "/signals/ack", rejected, ack_headers)
    assert status == 200 and EXECUTOR.defines["MT5DB_ACK_OK"] in text, text  # unknown id: ok, known:false
    status, text, _ = api.call("GET", query, None, headers)
    assert status == 200 and json.loads(text)["signals"] == [], "a delivered signal is not delivered again"
