"""The MQL5 sources in ea/ against the API's contract, from their source text (MQL5 cannot be
compiled here): every request body, query and header the EAs can produce is built from the
templates of their WIRE FORMAT block, the way their StringReplace calls fill them, and checked
against docs/ea-contract.md and the API's own request parser. tests/integration/ea/ posts them
to a live API."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mt5db_api.ingest import parse_candles
from mt5db_api.schemas import IngestResult
from mt5db_core.market.candles import SYMBOL_PATTERN
from mt5db_harness import mql5

REPO = Path(__file__).resolve().parents[3]
COLLECTOR = mql5.read(REPO / "ea" / "MT5DB_Collector.mq5")
EXECUTOR = mql5.read(REPO / "ea" / "MT5DB_Executor.mq5")
CANDLE_KEYS = ["ts", "symbol", "timeframe", "open", "high", "low", "close", "volume"]  # §3.1, in order
SIGNAL_FIELDS = {
    "id",
    "symbol",
    "timeframe",
    "side",
    "confidence",
    "ttl_sec",
    "sl_pips",
    "tp_pips",
    "meta",
}  # §11
ACK_REQUIRED = {"id": str, "status": str, "symbol": str, "side": str}  # §11.2
ACK_OPTIONAL = {"mt5_ticket": int, "price": float, "ts_exec": str, "account_id": str}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity tokens (strict parsers reject the whole body)."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("wire", [COLLECTOR, EXECUTOR], ids=["collector", "executor"])
def test_every_format_lives_in_the_block_and_the_code_uses_it(wire: mql5.WireFormat) -> None:
    # No JSON is written outside the block: no literal carries a key, an object or an array.
    for literal in wire.outside:
        assert not re.search(r'"\s*:|\{\s*"|"\s*\}|\[\s*\{', literal), f"{wire.path.name}: {literal!r}"
    # Every template is used by the code, and every placeholder in it is filled by the code.
    for name, text in wire.defines.items():
        assert re.search(rf"\b{name}\b", wire.code), f"{name} is never used"
        missing = set(re.findall(r"%([A-Z]+)%", text)) - wire.filled
        assert not missing, f"{name}: placeholders never filled: {missing}"


def test_collector_batches_are_what_the_api_parses_item_for_item() -> None:
    rng = random.Random(13)
    for n in (1, 2, 28, 500):
        body, values = mql5.collector_batch(COLLECTOR, rng, n)
        assert " " not in body and "\n" not in body, "compact, as the EAs send it"
        parsed = strict_json(body)
        assert list(parsed) == ["items"] and len(parsed["items"]) == n
        for item in parsed["items"]:
            assert list(item) == CANDLE_KEYS
            assert ISO_Z.match(item["ts"]) and re.fullmatch(SYMBOL_PATTERN, item["symbol"])
            assert isinstance(item["volume"], int) and all(type(item[k]) is float for k in CANDLE_KEYS[3:7])
        # Prices keep exactly SYMBOL_DIGITS decimals in the text (trailing zeros kept, §3.1).
        for v in values:
            digits = mql5.SYMBOLS[json.loads(f'"{v["SYMBOL"]}"')]
            for key in ("OPEN", "HIGH", "LOW", "CLOSE"):
                assert re.fullmatch(rf"\d+\.\d{{{digits}}}" if digits else r"\d+", v[key]), v[key]
        # The API's own request parser accepts every item.
        batch = parse_candles(body.encode(), time.time(), 5000)
        assert batch.errors == [] and batch.received == n == len(batch)
        sent = {(json.loads(f'"{v["SYMBOL"]}"'), canonical(v["TIMEFRAME"])) for v in values}
        assert set(zip(batch.symbol, batch.timeframe, strict=True)) == sent


def canonical(code: str) -> str:
    return {"2": "M2", "10": "M10", "16386": "H2", "16390": "H6", "16396": "H12"}.get(code, code)


def test_collector_headers_and_the_answer_it_reads() -> None:
    values = {"REQID": "7", "COUNT": "28", "CLIENTTIME": "2025-03-12T14:08:00Z", "BUILD": "4755", "ACCOUNT": "7730215",
              "NSYMBOLS": "28", "KEY": "mt5_1a2b3c4d_example"}  # fmt: skip
    sent = mql5.headers(COLLECTOR, values)
    assert sent["Content-Type"] == "application/json" and sent["Accept"] == "application/json"
    assert (
        sent["X-API-Key"] == values["KEY"]
        and sent["X-Client-Items"] == "28"
        and sent["X-Client-ReqId"] == "7"
    )
    assert ISO_Z.match(sent["X-Client-Time"]) and sent["User-Agent"].startswith("MT5DB-Collector/1.00 (")
    assert COLLECTOR.defines["MT5DB_INGEST_PATH"] == "/ingest"  # exact path, no prefix, no slash (§1)
    # The keys it greps are keys of the API's answer (docs/api.md), in the compact form it greps.
    answer = set(COLLECTOR.defines["MT5DB_ANSWER_KEYS"].split(","))
    assert answer <= set(IngestResult.model_fields)
    assert COLLECTOR.fill("MT5DB_VALUE", {"NAME": "inserted"}) == '"inserted":'
    assert COLLECTOR.defines["MT5DB_RETRY_AFTER"] == "retry-after:"  # compared on a lower-cased copy


def test_executor_poll_query_is_the_contracts() -> None:
    symbols = ["#US30", "EURUSD", "AUDUSD.m", "BTCUSD+"]
    query = EXECUTOR.fill("MT5DB_NEXT_QUERY", {
        "ACCOUNT": "7730215",
        "SYMBOLS": ",".join(urllib.parse.quote(s, safe="-_.~") for s in symbols),  # the EA's UrlEncode
        "TIMEFRAME": "M15",
    })  # fmt: skip
    url = urllib.parse.urlsplit(query)
    assert url.path == "/signals/next" and not url.fragment, "a '#' in a symbol must be encoded"
    params = urllib.parse.parse_qs(url.query, strict_parsing=True)
    assert params == {"account_id": ["7730215"], "symbols": [",".join(symbols)], "timeframe": ["M15"]}
    assert EXECUTOR.defines["MT5DB_ACK_PATH"] == "/signals/ack"


def test_executor_reads_exactly_the_signal_fields() -> None:
    keys = {v for k, v in EXECUTOR.defines.items() if k.startswith("MT5DB_KEY_") and k != "MT5DB_KEY_HEADER"}
    assert keys == SIGNAL_FIELDS
    answer = '{"signals":[{"id":"5b0e4c1e-2f7a-4a51-9a8e-0c3d7f2b9e61","symbol":"USDCAD"}]}'  # §13 (f)
    assert EXECUTOR.defines["MT5DB_SIGNALS_ARRAY"] in answer
    assert EXECUTOR.fill("MT5DB_STRING_VALUE", {"NAME": "symbol"}) + "USDCAD" in answer
    assert EXECUTOR.defines["MT5DB_ACK_OK"] in '{"ok":true}' and EXECUTOR.defines["MT5DB_ACK_OK"] in (
        '{"ok":true,"known":false}'
    )


def ack_values(rng: random.Random) -> dict[str, str]:
    digits = rng.choice([2, 3, 5])
    return {"ID": str(uuid.UUID(int=rng.getrandbits(128))), "SYMBOL": mql5.json_escape(rng.choice(list(mql5.SYMBOLS))),
            "SIDE": rng.choice(["BUY", "SELL", "CLOSE", "NONE"]), "TICKET": str(rng.randrange(0, 2**63)),
            "PRICE": mql5.price(rng.uniform(0.5, 2000), digits), "TS": mql5.iso_z(datetime(2025, 3, 12, 14, 16, 4, tzinfo=UTC)),
            "ACCOUNT": str(rng.randrange(10**6, 10**9))}  # fmt: skip


@pytest.mark.parametrize("template", ["MT5DB_ACK_FILLED", "MT5DB_ACK_REJECTED"])
def test_executor_acks_are_the_contracts(template: str) -> None:
    rng = random.Random(template)
    for _ in range(200):
        body = EXECUTOR.fill(template, ack_values(rng))
        ack = strict_json(body)
        assert " " not in body
        for key, kind in ACK_REQUIRED.items():
            assert isinstance(ack[key], kind), (key, body)
        for key, kind in ACK_OPTIONAL.items():
            if key in ack:
                assert isinstance(ack[key], kind), (key, body)
        assert set(ack) <= set(ACK_REQUIRED) | set(ACK_OPTIONAL), body
        assert ack["status"] == ("FILLED" if template.endswith("FILLED") else "REJECTED")
        assert ack["side"] in ("BUY", "SELL", "CLOSE", "NONE") and ISO_Z.match(ack["ts_exec"])
        assert uuid.UUID(ack["id"]) and 0 <= ack.get("mt5_ticket", 0) < 2**63  # int64
    assert EXECUTOR.fill("MT5DB_JSON_HEADER", {}) == "Content-Type: application/json\r\n"
    assert mql5.headers(EXECUTOR, {"KEY": "k"})["X-API-Key"] == "k"


def test_extraction_is_not_vacuous(tmp_path: Path) -> None:
    """A JSON fragment written outside the block, or a placeholder the code never fills, is seen."""
    source = (REPO / "ea" / "MT5DB_Collector.mq5").read_text()
    leaked = source.replace("string body = MT5DB_BATCH_JSON;", 'string body = "{\\"items\\":[%ITEMS%]}";')
    (tmp_path / "leak.mq5").write_text(leaked)
    wire = mql5.read(tmp_path / "leak.mq5")
    assert any('{"items"' in literal for literal in wire.outside)
    unfilled = source.replace('StringReplace(item, "%VOLUME%", ', 'StringReplace(item, "%VOL%", ')
    (tmp_path / "unfilled.mq5").write_text(unfilled)
    assert "VOLUME" not in mql5.read(tmp_path / "unfilled.mq5").filled
