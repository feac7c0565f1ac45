"""Serving benchmark: `/predict` of a RandomForest champion from stored history, and the hot swap
under load, against `mt5db serve` in its own process.

One run, loopback only, bounded: its own LocalPostgres (fsync off); the shared EURUSD H1 file in
market_data; two versions trained through the real `mt5db train` (the project's forest: 200 trees,
min_samples_leaf 20, horizons 1/5/10 bundled; 2 folds to keep the run short); v1 promoted; then

1. cached: 16 aiohttp clients × `--requests` GET /predict (the newest bar's prediction is computed
   once per (version, series, bar); a request costs the auth check and one indexed read);
2. uncached: POST /predict with 600 candles, one at a time (features + three 200-tree forests);
3. hot swap: 16 clients keep polling GET /predict while the champion is re-pointed v1 → v2 → v1 …
   (`mt5db models promote`, NOTIFY, load + checks, one assignment): failed requests, time from the
   alias change to the first answer from the new version, p99 during the swaps.

Targets: cached p99 < 25 ms at 16 clients; zero failed requests during the swaps.

    .venv/bin/python bench/serving.py [--requests 400] [--swaps 4] [--trees 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pandas as pd

from mt5db_api.db import api_keys
from mt5db_api.db.migrations import migrate
from mt5db_core import apikeys
from mt5db_core.net import free_port, wait_for_http
from mt5db_local.postgres import LocalPostgres
from mt5db_training.sources import read_candle_file

CLIENTS = 16
REPO = Path(__file__).resolve().parents[1]
CSV = REPO.parent / "shared" / "data" / "EURUSD_H1_2021-10-18_2024-12-31.csv"
PREDICT = "/predict?symbol=EURUSD&timeframe=H1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def hammer(session: aiohttp.ClientSession, url: str, load: Load, *, requests: int | None,
                 stop: asyncio.Event | None) -> None:  # fmt: skip
    done = 0
    while (requests is None or done < requests) and not (stop and stop.is_set()):
        t0 = time.perf_counter()
        try:
            async with session.get(url + PREDICT) as resp:
                body = await resp.read()
                status = resp.status
        except aiohttp.ClientError as exc:
            load.failures.append(repr(exc))
            continue
        load.latencies.append(time.perf_counter() - t0)
        load.statuses[status] = load.statuses.get(status, 0) + 1
        done += 1
        if status != 200:
            load.failures.append(f"{status} {body[:100]!r}")
            continue
        version = orjson.loads(body)["model_version"]
        load.versions[version] = load.versions.get(version, 0) + 1
        load.first_seen.setdefault(version, time.perf_counter())


def mt5db(*args: str, env: dict[str, str] | None = None, quiet: bool = True) -> None:
    done = subprocess.run([sys.executable, "-m", "mt5db_core.cli", *args], capture_output=quiet, text=True,
                          env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"mt5db {args[0]} failed: {(done.stdout or '')[-2000:]}{(done.stderr or '')[-2000:]}"
        )


async def seed(dsn: str) -> tuple[str, list[dict[str, Any]]]:
    """market_data from the shared file; a read+admin key; the last 600 candles as a POST body."""
    candles = read_candle_file(CSV)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        key = apikeys.generate_key()
        await api_keys.insert_key(
            conn, key_id=key.key_id, name="bench", key_hash=key.key_hash, scopes=["admin"]
        )
        records = [("EURUSD", "H1", pd.Timestamp(ts).to_pydatetime().replace(tzinfo=UTC), r.open, r.high, r.low,
                    r.close, int(r.volume)) for ts, r in zip(candles.index, candles.itertuples(index=False), strict=True)]  # fmt: skip
        await conn.copy_records_to_table(
            "market_data",
            records=records,
            columns=["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"],
        )
    finally:
        await conn.close()
    body = [{"ts": pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ"), "open": r.open, "high": r.high, "low": r.low,
             "close": r.close, "volume": int(r.volume)}
            for ts, r in zip(candles.index[-601:-1], candles.iloc[-601:-1].itertuples(index=False), strict=True)]  # fmt: skip
    return key.secret_key, body


async def main_async(args: argparse.Namespace) -> int:
    pg = LocalPostgres()
    pg.start()
    server: subprocess.Popen[bytes] | None = None
    work = pg.base / "bench-runs"
    try:
        dsn = pg.create_database("bench")
        key, post_candles = await seed(dsn)
        env = {**os.environ, "MT5DB_RUN_NAME": ""}
        train = ["train", "--model", "rf", "--database-url", dsn, "--symbol", "EURUSD", "--timeframe", "H1",
                 "--n-estimators", str(args.trees), "--min-samples-leaf", "20", "--folds", "2", "--horizons", "1,5,10",
                 "--bootstrap-reps", "100", "--no-leakage-check", "--n-jobs", "2", "--promote", "never"]  # fmt: skip
        t0 = time.perf_counter()
        for i in (1, 2):
            mt5db(*train, "--run", f"bench-v{i}", "--out", str(work / f"v{i}"), "--seed", str(i), env=env)
        train_s = time.perf_counter() - t0
        promote = ["models", "promote", "--database-url", dsn, "--actor", "bench", "--reason", "benchmark"]
        mt5db(*promote[:2], "rf_ret_EURUSD_H1:v1", *promote[2:])
        port = free_port()
        senv = {**env, "MT5DB_RATE_LIMIT_PER_S": "0", "MT5DB_POOL_MAX_SIZE": "16", "MT5DB_LOG_LEVEL": "warning",
                "MT5DB_RELOAD_POLL_S": "5"}  # fmt: skip
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
            [sys.executable, "-m", "mt5db_core.cli", "serve", "--database-url", dsn, "--host", "127.0.0.1",
             "--port", str(port), "--no-signals"], env=senv,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/ready", 120)
        headers = {"X-API-Key": key, "Accept": "application/json"}
        connector = aiohttp.TCPConnector(limit=CLIENTS * 2)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            warm = Load()
            await asyncio.gather(
                *(hammer(session, url, warm, requests=20, stop=None) for _ in range(CLIENTS))
            )
            cached = Load()
            t0 = time.perf_counter()
            await asyncio.gather(
                *(hammer(session, url, cached, requests=args.requests, stop=None) for _ in range(CLIENTS))
            )
            cached_s = time.perf_counter() - t0

            uncached: list[float] = []
            body = orjson.dumps({"symbol": "EURUSD", "timeframe": "H1", "candles": post_candles})
            for _ in range(args.uncached):
                t1 = time.perf_counter()
                async with session.post(url + "/predict", data=body) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                uncached.append(time.perf_counter() - t1)

            swap = Load()
            stop = asyncio.Event()
            workers = [
                asyncio.create_task(hammer(session, url, swap, requests=None, stop=stop))
                for _ in range(CLIENTS)
            ]
            await asyncio.sleep(1.0)
            swap_times: list[float] = []
            for n in range(args.swaps):
                target = "rf_ret_EURUSD_H1:v2" if n % 2 == 0 else "rf_ret_EURUSD_H1:v1"
                before = swap.versions.get(target, 0)
                swap.first_seen.pop(target, None)
                changed = time.perf_counter()
                await asyncio.to_thread(mt5db, *promote[:2], target, *promote[2:])
                deadline = time.perf_counter() + 60
                # Polls what the client tasks record; the answer time is stamped by them, not here.
                while swap.versions.get(target, 0) == before and time.perf_counter() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                swap_times.append(swap.first_seen.get(target, float("nan")) - changed)
                await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*workers)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        pg.destroy()

    n = len(cached.latencies)
    print()
    print(f"mt5db serving benchmark: {os.cpu_count()} CPU cores, PostgreSQL fsync=off, `mt5db serve` (one process), "
          f"{CLIENTS} aiohttp clients; RF {args.trees} trees x horizons 1/5/10 on {CSV.name} (trained in {train_s:.0f} s)")  # fmt: skip
    print(f"cached GET /predict (stored history): {n} requests in {cached_s:.2f} s = {n / cached_s:,.0f} req/s, "
          f"p50 {pct(cached.latencies, 0.5):.2f} ms, p95 {pct(cached.latencies, 0.95):.2f} ms, "
          f"p99 {pct(cached.latencies, 0.99):.2f} ms (target < 25 ms), statuses {cached.statuses}")  # fmt: skip
    print(f"uncached POST /predict (600 candles: features + 3 forests), one at a time: {len(uncached)} requests, "
          f"p50 {pct(uncached, 0.5):.1f} ms, p99 {pct(uncached, 0.99):.1f} ms")  # fmt: skip
    print(f"hot swap under load: {args.swaps} alias changes while {CLIENTS} clients polled: {len(swap.latencies)} "
          f"requests, failed {len(swap.failures)} (target 0), p99 {pct(swap.latencies, 0.99):.1f} ms; "
          f"answers per version {swap.versions}")  # fmt: skip
    print(
        "alias change → first answer from the new version (promote command, NOTIFY, load + checks, swap): "
        + ", ".join(f"{t:.2f} s" for t in swap_times)
    )
    if swap.failures:
        print(f"first failures: {swap.failures[:5]}")
    return 0 if not swap.failures and set(cached.statuses) == {200} else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=400, help="cached GET /predict per client (default 400)"
    )
    parser.add_argument("--uncached", type=int, default=30, help="POST /predict requests (default 30)")
    parser.add_argument("--swaps", type=int, default=4, help="alias changes under load (default 4)")
    parser.add_argument(
        "--trees", type=int, default=200, help="trees per horizon (default 200, the project's forest)"
    )
    args = parser.parse_args()
    import uvloop

    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
