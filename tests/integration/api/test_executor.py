"""`mt5db executor --dry-run` against a real API: poll, fill at the next bar's open, ack; a late
(expired) signal is refused, an id is never opened twice, an ack is retried until it is accepted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from mt5db_api.executor import DryRunExecutor, run_executor
from mt5db_core.cli import main

from .conftest import ApiEnv

pytestmark = pytest.mark.postgres

BARS = [
    {"ts": "2025-03-12T12:00:00Z", "open": 1.0850, "high": 1.0870, "low": 1.0840, "close": 1.0860},
    {"ts": "2025-03-12T13:00:00Z", "open": 1.0861, "high": 1.0880, "low": 1.0855, "close": 1.0875},
    {"ts": "2025-03-12T14:00:00Z", "open": 1.0874, "high": 1.0890, "low": 1.0866, "close": 1.0882},
]


def _seed(env: ApiEnv) -> None:
    items = [b | {"symbol": "EURUSD", "timeframe": "H1", "volume": 100} for b in BARS]
    assert env.client().post("/ingest", orjson.dumps({"items": items})).status == 200


def _manual(env: ApiEnv, **fields: Any) -> str:
    body = {"symbol": "EURUSD", "timeframe": "H1", "side": "BUY", "confidence": 0.62, "sl_pips": 15,
            "tp_pips": 30, "account_id": "7730215"} | fields  # fmt: skip
    reply = env.client(env.keys.admin).post("/signals", orjson.dumps(body))
    assert reply.status == 201, reply.body
    return str(reply.json()["id"])


def test_the_cli_fills_at_the_next_bars_open_and_acks(
    clean: ApiEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(clean)
    clean.sql("TRUNCATE signals, signal_deliveries, signal_acks")
    sid = _manual(clean, meta={"bar_ts": "2025-03-12T12:00:00Z"})
    argv = ["executor", "--url", f"http://127.0.0.1:{clean.port}", "--api-key", clean.keys.signals_read,
            "--account-id", "7730215", "--symbols", "EURUSD,GBPUSD", "--timeframe", "H1", "--dry-run",
            "--until-idle", "1", "--interval", "0.1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"FILLED BUY EURUSD id={sid} at 1.0861 (open of 2025-03-12T13:00:00Z)" in out
    assert "polls=2 received=1 filled=1 rejected=0 ignored=0" in out
    ack = orjson.loads(clean.value("SELECT body FROM signal_acks WHERE signal_id = $1", uuid.UUID(sid)))
    assert ack["status"] == "FILLED" and ack["price"] == 1.0861 and ack["ts_exec"] == "2025-03-12T13:00:00Z"
    assert ack["mt5_ticket"] > 9_000_000 and ack["account_id"] == "7730215"
    assert clean.value("SELECT state FROM signals WHERE id = $1", uuid.UUID(sid)) == "ACKED"
    assert main([*argv[:-5], "--until-idle", "1"]) == 2  # without --dry-run: refused, nothing to trade with


def test_late_signals_are_refused_and_no_id_opens_twice(clean: ApiEnv) -> None:
    _seed(clean)
    clean.sql("TRUNCATE signals, signal_deliveries, signal_acks")
    sid = _manual(clean, meta={"bar_ts": "2025-03-12T13:00:00Z"})
    newest = _manual(clean)  # no bar_ts: the bar after the newest stored one (not there yet)

    async def go() -> list[Any]:
        async with aiohttp.ClientSession(headers={"X-API-Key": clean.keys.admin}) as session:
            ex = DryRunExecutor(session, url=f"http://127.0.0.1:{clean.port}", account_id="7730215",
                                symbols=["EURUSD"], timeframe="H1", fill_wait_s=0.5, echo=False)  # fmt: skip
            first = await ex.poll()
            assert first is not None and first["id"] == newest
            waited = await ex.handle(first)
            second = await ex.poll()
            assert second is not None and second["id"] == sid
            # as if it had sat in a queue past its TTL: refused and acked REJECTED
            late = second | {"meta": second["meta"] | {"generated_at": (datetime.now(UTC) - timedelta(hours=1))
                                                       .strftime("%Y-%m-%dT%H:%M:%SZ")}}  # fmt: skip
            refused = await ex.handle(late)
            again = await ex.handle(second)  # the same id delivered twice would not open twice
            return [waited, refused, again]

    waited, refused, again = asyncio.run(go())
    assert (waited.status, waited.reason) == ("REJECTED", "no next bar within 0s")
    assert refused.status == "REJECTED" and refused.reason.startswith("expired on arrival")
    assert again.status == "IGNORED"
    statuses = clean.sql("SELECT string_agg(status, ',' ORDER BY status) FROM signal_acks")
    assert statuses == "REJECTED,REJECTED"


def test_an_ack_is_retried_until_the_api_accepts_it(api_factory: Any) -> None:
    env = api_factory(rate_limit_per_s=1.0, rate_limit_burst=1.0)  # the second request within 1 s gets 429
    _seed(env)
    sid = _manual(env, meta={"bar_ts": "2025-03-12T12:00:00Z"})

    async def go() -> Any:
        return await run_executor(url=f"http://127.0.0.1:{env.port}", api_key=env.keys.signals_read,
                                  account_id="7730215", symbols=["EURUSD"], timeframe="H1", polls=1,
                                  echo=False)  # fmt: skip

    summary = asyncio.run(go())
    (outcome,) = summary.outcomes
    assert outcome.status == "FILLED" and outcome.ack_attempts > 1
    assert env.value("SELECT count(*) FROM signal_acks WHERE signal_id = $1", uuid.UUID(sid)) == 1
