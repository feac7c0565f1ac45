"""Signal polling benchmark: 16 executor EAs polling `GET /signals/next` against `mt5db api`.

One run, loopback only, bounded: its own LocalPostgres (fsync off) and `mt5db api` subprocess,
1,000 queued live signals on one symbol. 16 aiohttp clients poll as the Executer does
(`account_id=<login>&symbols=EURUSD&timeframe=H1`), in two phases:

1. drain: every client polls until it finds nothing: with `--mode account` (the default) the
   signals are for one account and the 16 clients are 16 pollers of it, so the 1,000 signals are
   shared out and each is delivered once; with `--mode broadcast` they are broadcast and each client
   is its own account, so every account receives every signal once (16,000 leases; each poll also
   skips the signals its account has already had: the worst case for the lease's anti-join);
2. steady: 16 × `--steady` polls more that find nothing (what an EA's poll usually finds).

Printed: polls/s, p50/p95/p99 per phase, CPU of the API and PostgreSQL, and the duplicate check
(targets: ≥ 2,000 polls/s, p99 < 10 ms, zero duplicates).

    .venv/bin/python bench/signals.py [--signals 1000] [--steady 500] [--pool 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import orjson

from mt5db_api.db import api_keys
from mt5db_api.db.migrations import migrate
from mt5db_core import apikeys
from mt5db_core.net import free_port, wait_for_http
from mt5db_local.postgres import LocalPostgres

CLIENTS = 16
MODE = "account"
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (PostgreSQL backends), live and reaped."""

    def one(p: int, reaped: bool) -> float:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if reaped else 0)) / TICKS

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return one(pid, True) + sum(one(int(c), False) for c in children)


@dataclass
class Phase:
    name: str
    polls: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    api_cpu: float
    db_cpu: float

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def phase(name: str, session: aiohttp.ClientSession, url: str, stop_when_empty: bool, polls: int,
                delivered: list[list[str]], api_pid: int, pg_pid: int, symbol: str = "EURUSD") -> Phase:  # fmt: skip
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(i: int) -> None:
        account = 7730215 if MODE == "account" else 1000 + i
        target = f"{url}/signals/next?account_id={account}&symbols={symbol}&timeframe=H1"
        done = 0
        while stop_when_empty or done < polls:
            t0 = time.perf_counter()
            async with session.get(target) as resp:
                body = await resp.read()
            latencies.append(time.perf_counter() - t0)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            done += 1
            signals = orjson.loads(body)["signals"] if resp.status == 200 else []
            if signals:
                delivered[i].append(signals[0]["id"])
            elif stop_when_empty and resp.status == 200:
                return

    a0, d0 = tree_cpu(api_pid), tree_cpu(pg_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    seconds = time.perf_counter() - t0
    return Phase(
        name, len(latencies), seconds, latencies, statuses, tree_cpu(api_pid) - a0, tree_cpu(pg_pid) - d0
    )


async def main_async(args: argparse.Namespace) -> int:
    pg = LocalPostgres()
    pg.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        dsn = pg.create_database("bench")
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        key = apikeys.generate_key()
        await api_keys.insert_key(
            conn, key_id=key.key_id, name="ea", key_hash=key.key_hash, scopes=["signals"]
        )
        await conn.execute(
            "INSERT INTO signals (id, symbol, timeframe, side, confidence, ttl_sec, sl_pips, tp_pips, meta, ts, "
            "expires_at, delivery, source, account_id) SELECT gen_random_uuid(), 'EURUSD', 'H1', 'BUY', 0.6, 3600, 20, 40, "
            "'{\"model\":\"bench\"}', now() - g * interval '1 millisecond', now() + interval '1 hour', 'live', "
            "'manual', $2::text FROM generate_series(1, $1) g",
            args.signals,
            "7730215" if args.mode == "account" else None,
        )
        await conn.close()
        port = free_port()
        env = {**os.environ, "MT5DB_RATE_LIMIT_PER_S": "0", "MT5DB_POOL_MAX_SIZE": str(args.pool),
               "MT5DB_POOL_MIN_SIZE": str(min(args.pool, 4)), "MT5DB_LOG_LEVEL": "warning",
               "MT5DB_SIGNAL_SWEEP_INTERVAL_S": "5"}  # fmt: skip
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
            [sys.executable, "-m", "mt5db_core.cli", "api", "--database-url", dsn, "--host", "127.0.0.1",
             "--port", str(port)], env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/ready", 60)
        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        delivered: list[list[str]] = [[] for _ in range(CLIENTS)]
        headers = {"X-API-Key": key.secret_key, "Accept": "application/json"}
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            # warm-up outside the timing: connections, prepared statements, the key cache
            await phase("warm-up", session, url, False, 20, [[] for _ in range(CLIENTS)], server.pid, pg_pid,
                        symbol="GBPUSD")  # fmt: skip
            what = "1 account, 16 pollers" if args.mode == "account" else f"{CLIENTS} accounts"
            drain = await phase(f"drain {args.signals} signals, {what}", session, url, True, 0,
                                delivered, server.pid, pg_pid)  # fmt: skip
            steady = await phase(f"steady polls ({args.steady} per client)", session, url, False, args.steady,
                                 [[] for _ in range(CLIENTS)], server.pid, pg_pid)  # fmt: skip
        conn = await asyncpg.connect(dsn)
        rows = await conn.fetchval("SELECT count(*) FROM signal_deliveries")
        await conn.close()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        pg.destroy()

    if args.mode == "account":  # one account: no id twice across all its pollers
        ids = [i for got in delivered for i in got]
        duplicates, per_account = len(ids) - len(set(ids)), [len(ids)]
    else:
        duplicates = sum(len(got) - len(set(got)) for got in delivered)
        per_account = [len(got) for got in delivered]
    print()
    print(f"mt5db signal polling benchmark ({args.mode}): {os.cpu_count()} CPU cores, PostgreSQL fsync=off, "
          f"one uvicorn worker, pool max {args.pool}, {CLIENTS} aiohttp clients")  # fmt: skip
    header = f"{'phase':<40} {'polls':>7} {'sec':>6} {'polls/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'api cpu':>7} {'db cpu':>6}"
    print(header)
    print("-" * len(header))
    for p in (drain, steady):
        ok = "" if set(p.statuses) == {200} else f"  statuses={p.statuses}"
        print(f"{p.name:<40} {p.polls:>7} {p.seconds:>6.2f} {p.polls / p.seconds:>8,.0f} {p.pct(0.5):>7.2f} "
              f"{p.pct(0.95):>7.2f} {p.pct(0.99):>7.2f} {p.api_cpu:>7.1f} {p.db_cpu:>6.1f}{ok}")  # fmt: skip
    total_polls = drain.polls + steady.polls
    total_s = drain.seconds + steady.seconds
    print()
    print(f"signals delivered per account: min {min(per_account)} max {max(per_account)} (of {args.signals}; the "
          f"rest in the steady phase); delivery rows {rows}; duplicate deliveries per (account, id): {duplicates}")  # fmt: skip
    print(f"all polls: {total_polls / total_s:,.0f} polls/s (target >= 2,000); "
          f"p99 drain {drain.pct(0.99):.2f} ms, steady {steady.pct(0.99):.2f} ms (target < 10 ms); "
          f"duplicates {duplicates} (target 0)")  # fmt: skip
    return 0 if duplicates == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=1000, help="queued live signals (default 1000)")
    parser.add_argument("--steady", type=int, default=500, help="empty polls per client after the drain")
    parser.add_argument("--pool", type=int, default=16, help="asyncpg pool max size (default 16)")
    parser.add_argument("--mode", choices=["account", "broadcast"], default="account")
    args = parser.parse_args()
    global MODE
    MODE = args.mode
    import uvloop

    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
