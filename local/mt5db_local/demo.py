"""`mt5db demo`: the main job on one machine, every printed figure read from the live API.

LocalPostgres (embedded default) -> migrate -> an ingest+read key -> the API on a free loopback
port -> replay the shared EURUSD H1 export -> /metrics stats and resampled D1 candles -> a second
replay (all duplicates) -> clean shutdown.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_CSV = Path("..") / "shared" / "data" / "EURUSD_H1_2021-10-18_2024-12-31.csv"


def _default_csv() -> Path:
    """../shared/data/... relative to the checkout root (or to the working directory)."""
    repo_root = Path(__file__).resolve().parents[2]
    for base in (repo_root, Path.cwd()):
        candidate = (base / DEFAULT_CSV).resolve()
        if candidate.is_file():
            return candidate
    return (repo_root / DEFAULT_CSV).resolve()


def _get(url: str, key: str) -> Any:
    request = urllib.request.Request(url, headers={"X-API-Key": key})  # noqa: S310 - loopback URL we built
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(*, data_dir: str | None, keep: bool, csv: str | None, batch: int = 500) -> int:
    """Run the demo; returns the process exit code."""
    import asyncpg

    from mt5db_api.db import api_keys as keys_db
    from mt5db_api.db.migrations import migrate
    from mt5db_api.replay import ReplayError, replay_file
    from mt5db_api.server import ThreadedServer
    from mt5db_api.settings import Settings
    from mt5db_core import apikeys
    from mt5db_core.net import free_port
    from mt5db_local.postgres import LocalPostgres

    csv_path = Path(csv).resolve() if csv else _default_csv()
    if not csv_path.is_file():
        print(f"error: history file not found: {csv_path} (pass --csv)", file=sys.stderr)
        return 2
    created = False
    if data_dir:
        base = Path(data_dir).resolve()
        created = not base.exists()
        base.mkdir(parents=True, exist_ok=True)
        pg = LocalPostgres(base)
    else:
        pg = LocalPostgres()  # its own temp directory, readable by the server user
        base = pg.base
        created = True
    _say(f"1. starting PostgreSQL {pg.bindir.parent.name} on 127.0.0.1:{pg.port} (data under {base})")
    try:
        pg.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: PostgreSQL did not start: {exc}", file=sys.stderr)
        print(
            "hint: as root the cluster runs as the 'postgres' user, which must be able to enter --data-dir",
            file=sys.stderr,
        )
        pg.destroy()
        return 1
    server: ThreadedServer | None = None
    try:
        dsn = pg.create_database("mt5db")
        key = apikeys.generate_key()

        async def prepare() -> Any:
            conn = await asyncpg.connect(dsn)
            try:
                report = await migrate(conn)
                await keys_db.insert_key(
                    conn, key_id=key.key_id, name="demo", key_hash=key.key_hash, scopes=["ingest", "read"]
                )
                return report
            finally:
                await conn.close()

        report = asyncio.run(prepare())
        _say(f"2. schema version {report.version}; timescaledb: {report.timescale}")
        for line in report.skipped:
            _say(f"   skipped: {line}")
        _say(f"3. API key (ingest,read): mt5_{key.key_id}_{'*' * 12}")
        settings = Settings(database_url=dsn, port=free_port(), rate_limit_per_s=0)  # type: ignore[arg-type]  # str -> SecretStr
        server = ThreadedServer(settings).start()
        url = server.url
        _say(f"4. API listening on {url}")

        def replay(label: str) -> Any:
            summary = asyncio.run(
                replay_file(csv_path, url=url, api_key=key.secret_key, batch=batch, concurrency=4)
            )
            _say(f"{label}: {summary.line()}")
            return summary

        first = replay(f"5. replay of {csv_path.name}")
        stats = _get(f"{server.url}/metrics", key.secret_key)
        _say("6. /metrics (per series, from the API):")
        for s in stats["series"]:
            _say(
                f"   {s['symbol']} {s['timeframe']}: count={s['count']} first={s['first']} last={s['last']} "
                f"gaps={s['gaps']} last_arrival={s['last_arrival']}"
            )
        symbol = stats["series"][0]["symbol"] if stats["series"] else "EURUSD"
        page = _get(f"{server.url}/candles?symbol={symbol}&timeframe=D1&limit=5", key.secret_key)
        _say(f"7. /candles {symbol} D1 (resampled from {page['source_timeframe']}), last {page['count']}:")
        for c in page["data"]:
            _say(
                f"   {c['ts']} open={c['open']} high={c['high']} low={c['low']} close={c['close']} volume={c['volume']}"
            )
        second = replay("8. second replay (idempotent)")
        all_dupes = second.duplicates == second.received and second.inserted == 0 and second.updated == 0
        _say(f"   every candle of the second replay counted as duplicate: {all_dupes}")
        ok = first.failed_requests == 0 and second.failed_requests == 0 and all_dupes
        return 0 if ok else 1
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if keep:
            pg.stop()
            _say(f"9. stopped; data kept under {base}")
        else:
            pg.destroy()
            if created:
                shutil.rmtree(base, ignore_errors=True)
            _say("9. stopped and removed the demo database")
