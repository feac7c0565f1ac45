"""`mt5db replay`'s reading side: MT5 history exports and EA JSONL files to request-sized candle lists."""

from __future__ import annotations

import orjson
import pytest

from mt5db_api.replay import ReplayError, batches

EXPORT = "Date,Time,Open,High,Low,Close,Volume\n2021.10.18,00:00,1.15976,1.16009,1.15924,1.15994,377\n\n2021.10.18,01:00:30,1.159934,1.16047,1.15972,1.15989,1624\n"


def test_an_export_becomes_ea_candles_with_the_labelled_clock(tmp_path):
    path = tmp_path / "EURUSD_H1_2021-10-18_2024-12-31.csv"
    path.write_text(EXPORT)
    got = list(batches(path, batch=500, symbol=None, timeframe=None))
    assert orjson.dumps(got) == orjson.dumps(
        [
            [
                {"ts": "2021-10-18T00:00:00Z", "symbol": "EURUSD", "timeframe": "H1", "open": 1.15976,
                 "high": 1.16009, "low": 1.15924, "close": 1.15994, "volume": 377},
                {"ts": "2021-10-18T01:00:30Z", "symbol": "EURUSD", "timeframe": "H1", "open": 1.15993,
                 "high": 1.16047, "low": 1.15972, "close": 1.15989, "volume": 1624},
            ]
        ]
    )  # fmt: skip


def test_the_terminals_tab_separated_export_reads_the_same(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2021.10.18\t00:00:00\t1.15976\t1.16009\t1.15924\t1.15994\t377\t0\t5\n"
    )
    [[candle]] = batches(path, batch=500, symbol="EURUSD", timeframe="16385")
    assert candle == {"ts": "2021-10-18T00:00:00Z", "symbol": "EURUSD", "timeframe": "H1", "open": 1.15976,
                      "high": 1.16009, "low": 1.15924, "close": 1.15994, "volume": 377}  # fmt: skip


def test_batches_are_request_sized(tmp_path):
    path = tmp_path / "EURUSD_M1.csv"
    rows = [f"2021.10.18,00:{m:02d},1.1,1.2,1.0,1.15,{m}" for m in range(60)]
    path.write_text("Date,Time,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    assert [len(b) for b in batches(path, batch=25, symbol=None, timeframe=None)] == [25, 25, 10]


def test_not_an_export_or_no_series_is_a_replay_error(tmp_path):
    path = tmp_path / "EURUSD_H1.csv"
    path.write_text("time,price\n1,2\n")
    with pytest.raises(ReplayError, match="expected an MT5 history export"):
        list(batches(path, batch=500, symbol=None, timeframe=None))
    path.write_text(EXPORT.replace("1624", "many"))
    with pytest.raises(ReplayError, match=r"EURUSD_H1.csv:4"):
        list(batches(path, batch=500, symbol=None, timeframe=None))
    unnamed = tmp_path / "history.csv"
    unnamed.write_text(EXPORT)
    with pytest.raises(ReplayError, match="pass --symbol and --timeframe"):
        list(batches(unnamed, batch=500, symbol=None, timeframe=None))


def test_jsonl_bodies_of_every_ea_file_kind(tmp_path):
    candle = {"ts": "2025-03-12T14:37:00Z", "symbol": "USDCAD", "timeframe": "H1", "open": 1.4415,
              "high": 1.44262, "low": 1.44107, "close": 1.44231, "volume": 2174}  # fmt: skip
    path = tmp_path / "PDC_outbound_20250312.jsonl"
    lines = [
        orjson.dumps({"ts": "2025-03-12T14:37:01Z", "kind": "items:batch", "body": {"items": [candle]}}),
        orjson.dumps({"ts": "2025-03-12T14:38:01Z", "kind": "tick:batch", "body": {"ticks": [{}]}}),
        b"\xef\xbb\xbf" + orjson.dumps([candle, candle]) + b"\x00",
        b"not json",
        orjson.dumps(candle),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert list(batches(path, batch=2, symbol=None, timeframe=None)) == [[candle, candle], [candle, candle]]


def test_replay_fails_fast_when_nothing_listens(tmp_path):
    """Issue 12 item 17: with the API down the workers died and the producer blocked on the full
    queue forever. Now a clear message and a non-zero exit within the connect timeout."""
    import subprocess
    import sys
    import time

    from mt5db_api.replay import CONNECT_TIMEOUT_S
    from mt5db_core.net import free_port

    path = tmp_path / "EURUSD_M1.csv"
    rows = [f"2021.10.18,{h:02d}:{m:02d},1.1,1.2,1.0,1.15,{m}" for h in range(2) for m in range(60)]
    path.write_text("Date,Time,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mt5db_core.cli", "replay", str(path), "--url", url, "--api-key", "k",
         "--batch", "2", "--quiet"],
        capture_output=True, text=True, timeout=CONNECT_TIMEOUT_S + 20, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"cannot connect to the API at {url}" in done.stderr
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 10
