"""`mt5db` subcommands of the api component: api, migrate, keys, replay, executor.

Kept cheap to import (every `mt5db` invocation loads it): FastAPI, asyncpg etc. are imported
inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mt5db_core import apikeys


def _db_url(args: argparse.Namespace) -> str | None:
    url: str | None = args.database_url or os.environ.get("MT5DB_DATABASE_URL")
    if not url:
        print(
            "error: a database URL is required: pass --database-url or set MT5DB_DATABASE_URL",
            file=sys.stderr,
        )
    return url


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="postgresql://... (default: $MT5DB_DATABASE_URL)")


def register(subparsers: Any) -> None:
    """Add this component's subcommands; keep imports inside handlers (cheap start-up)."""
    p = subparsers.add_parser("api", help="serve the HTTP data plane (uvicorn)")
    _add_db(p)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 18001)")
    p.add_argument("--workers", type=int, default=None, help="uvicorn worker processes (default 1)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(handler=_api)

    p = subparsers.add_parser("migrate", help="create or upgrade the schema (idempotent, lock-protected)")
    _add_db(p)
    p.add_argument(
        "--retention-days", type=int, default=None,
        help="TimescaleDB retention (default: $MT5DB_RETENTION_DAYS, else off)",
    )  # fmt: skip
    p.add_argument(
        "--compress-after-days", type=int, default=None,
        help="TimescaleDB compression (default: $MT5DB_COMPRESS_AFTER_DAYS unless $MT5DB_COMPRESSION=false, else off)",
    )  # fmt: skip
    p.add_argument(
        "--training-window-days", type=int, default=None,
        help="refuse a retention shorter than this (default: $MT5DB_TRAINING_WINDOW_DAYS)",
    )  # fmt: skip
    p.add_argument("--no-timescale", action="store_true", help="plain PostgreSQL even if TimescaleDB exists")
    p.set_defaults(handler=_migrate)

    keys = subparsers.add_parser("keys", help="create, revoke and list API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("create", help="create a key; prints it once on stdout (only the key)")
    _add_db(p)
    p.add_argument("--name", required=True)
    p.add_argument("--scopes", default="ingest,read", help="comma list of ingest,read,signals,admin")
    p.set_defaults(handler=_keys_create)
    p = ksub.add_parser("revoke", help="revoke a key by id or name")
    _add_db(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--key-id")
    who.add_argument("--name")
    p.set_defaults(handler=_keys_revoke)
    p = ksub.add_parser("list", help="list keys (ids, names, scopes; never secrets)")
    _add_db(p)
    p.set_defaults(handler=_keys_list)

    p = subparsers.add_parser("replay", help="post an MT5 history CSV or EA JSONL file to /ingest")
    p.add_argument("file", help="MT5 export (Date,Time,Open,...) or PDC_*.jsonl")
    p.add_argument("--url", required=True, help="API base URL, e.g. http://127.0.0.1:18001")
    p.add_argument("--api-key", default=os.environ.get("MT5DB_API_KEY"), help="default: $MT5DB_API_KEY")
    p.add_argument("--batch", type=int, default=500, help="candles per request (default 500)")
    p.add_argument("--symbol", help="default: from a file name like EURUSD_H1_....csv")
    p.add_argument("--timeframe", help="default: from the file name")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_replay)

    p = subparsers.add_parser(
        "executor", help="the executor EA's poll/fill/ack loop in Python (--dry-run: fills are simulated)"
    )
    p.add_argument("--url", required=True, help="API base URL, e.g. http://127.0.0.1:18001")
    p.add_argument(
        "--api-key", default=os.environ.get("MT5DB_API_KEY"), help="signals+read key ($MT5DB_API_KEY)"
    )
    p.add_argument("--account-id", required=True, help="the MT5 login the signals are for")
    p.add_argument("--symbols", required=True, help="comma list, as the EA's input")
    p.add_argument("--timeframe", default="M1", help="name or MT5 code (default M1, as §11.3)")
    p.add_argument("--dry-run", action="store_true", help="simulate fills at the next bar's open (required)")
    p.add_argument("--polls", type=int, default=None, help="stop after N polls (default: run until stopped)")
    p.add_argument("--until-idle", type=int, default=None, help="stop after N empty polls in a row")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between empty polls (default 1)")
    p.add_argument(
        "--fill-wait", type=float, default=30.0, help="seconds to wait for the next bar (default 30)"
    )
    p.set_defaults(handler=_executor)


def _api(args: argparse.Namespace) -> int:
    from mt5db_api.server import serve
    from mt5db_api.settings import SettingsError, load_settings

    try:
        settings = load_settings(
            database_url=args.database_url, host=args.host, port=args.port, workers=args.workers
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(settings, access_log=args.access_log)
    return 0


async def _connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url, timeout=10, server_settings={"application_name": "mt5db-cli"})


def _migrate(args: argparse.Namespace) -> int:
    url = _db_url(args)
    if not url:
        return 2

    try:
        options = migrate_options(args, os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        from mt5db_api.db import api_keys
        from mt5db_api.db.migrations import migrate

        conn = await _connect(url)
        try:
            report = await migrate(
                conn,
                retention_days=options.retention_days,
                compress_after_days=options.compress_after_days,
                use_timescale=False if args.no_timescale else None,
            )
            if options.role_passwords is not None:
                from mt5db_api.db.roles import ensure_roles

                app_pw, ro_pw = options.role_passwords
                for line in await ensure_roles(conn, app_password=app_pw, readonly_password=ro_pw):
                    print(line)
            if options.bootstrap_key is not None:
                key_id, key_hash, scopes = options.bootstrap_key
                new = await api_keys.register_key_hash(
                    conn, key_id=key_id, name=f"bootstrap-{key_id}", key_hash=key_hash, scopes=scopes
                )
                print(f"bootstrap key {key_id}: {'registered' if new else 'already registered'}")
        finally:
            await conn.close()
        applied = ",".join(map(str, report.applied)) or "none"
        print(f"schema version {report.version} (applied: {applied}); timescaledb: {report.timescale}")
        for line in report.skipped:
            print(f"skipped: {line}")
        for line in report.policies:
            print(f"policy: {line}")
        return 0

    return asyncio.run(run())


@dataclass(frozen=True)
class MigrateOptions:
    retention_days: int | None
    compress_after_days: int | None
    bootstrap_key: tuple[str, str, list[str]] | None  # (key id, sha256 hash, scopes)
    role_passwords: tuple[str, str] | None = None  # (application, read-only): ensure both roles


def migrate_options(args: argparse.Namespace, env: Mapping[str, str]) -> MigrateOptions:
    """Flags first, then the environment the operator's migration Job sets (TradingStack spec):
    retention/compression, the training window retention may not undercut, and the first API
    key's id + hash + scopes (the key itself never reaches this process)."""

    def number(flag: int | None, name: str) -> int | None:
        if flag is not None:
            return flag
        raw = env.get(name, "").strip()
        if not raw:
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"${name} must be a positive integer, got {raw!r}")
        return int(raw)

    retention = number(args.retention_days, "MT5DB_RETENTION_DAYS")
    compression_on = env.get("MT5DB_COMPRESSION", "true").strip().lower() != "false"
    compress = args.compress_after_days
    if compress is None and compression_on:
        compress = number(None, "MT5DB_COMPRESS_AFTER_DAYS")
    window = number(args.training_window_days, "MT5DB_TRAINING_WINDOW_DAYS")
    if retention is not None and window is not None and retention < window:
        raise ValueError(
            f"retention of {retention} days would delete training data (training window {window} days)"
        )
    bootstrap = None
    key_id, key_hash = env.get("MT5DB_BOOTSTRAP_KEY_ID", ""), env.get("MT5DB_BOOTSTRAP_KEY_HASH", "")
    if key_id or key_hash:
        if not (
            len(key_id) == 8 and len(key_hash) == 64 and all(ch in "0123456789abcdef" for ch in key_hash)
        ):
            raise ValueError("$MT5DB_BOOTSTRAP_KEY_ID/_HASH must be an 8-char id and a sha256 hex digest")
        scopes = apikeys.parse_scopes(env.get("MT5DB_BOOTSTRAP_KEY_SCOPES", "ingest,read"))
        bootstrap = (key_id, key_hash, sorted(scopes))
    app_pw, ro_pw = env.get("MT5DB_APP_PASSWORD", ""), env.get("MT5DB_READONLY_PASSWORD", "")
    if bool(app_pw) != bool(ro_pw):
        raise ValueError("$MT5DB_APP_PASSWORD and $MT5DB_READONLY_PASSWORD go together")
    return MigrateOptions(retention, compress, bootstrap, (app_pw, ro_pw) if app_pw else None)


def _keys_create(args: argparse.Namespace) -> int:
    from mt5db_core import apikeys

    url = _db_url(args)
    if not url:
        return 2
    try:
        scopes = apikeys.parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    key = apikeys.generate_key()

    async def run() -> None:
        from mt5db_api.db import api_keys

        conn = await _connect(url)
        try:
            await api_keys.insert_key(
                conn, key_id=key.key_id, name=args.name, key_hash=key.key_hash, scopes=sorted(scopes)
            )
        finally:
            await conn.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"error: could not store the key: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"created key {key.key_id} ({args.name}, scopes {','.join(sorted(scopes))}); shown once:",
        file=sys.stderr,
    )
    print(key.secret_key)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    url = _db_url(args)
    if not url:
        return 2

    async def run() -> int:
        from mt5db_api.db import api_keys

        conn = await _connect(url)
        try:
            return await api_keys.revoke_key(conn, key_id=args.key_id, name=args.name)
        finally:
            await conn.close()

    changed = asyncio.run(run())
    if not changed:
        print("error: no such active key", file=sys.stderr)
        return 1
    print(f"revoked {changed} key(s); running APIs stop accepting it within the auth cache TTL (5 s default)")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    url = _db_url(args)
    if not url:
        return 2

    async def run() -> list[Any]:
        from mt5db_api.db import api_keys

        conn = await _connect(url)
        try:
            return await api_keys.list_keys(conn)
        finally:
            await conn.close()

    for row in asyncio.run(run()):
        state = f"revoked {row['revoked_at']:%Y-%m-%dT%H:%M:%SZ}" if row["revoked_at"] else "active"
        print(f"{row['key_id']}\t{row['name']}\t{','.join(row['scopes'])}\t{state}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from mt5db_api.replay import ReplayError, replay_file

    if not args.api_key:
        print("error: --api-key (or $MT5DB_API_KEY) is required", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(
            replay_file(
                args.file, url=args.url, api_key=args.api_key, batch=args.batch, symbol=args.symbol,
                timeframe=args.timeframe, concurrency=args.concurrency, progress=not args.quiet,
            )
        )  # fmt: skip
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0 if summary.failed_requests == 0 else 1


def _executor(args: argparse.Namespace) -> int:
    from mt5db_api.executor import ExecutorError, run_executor
    from mt5db_core.market.timeframes import canonical

    if not args.dry_run:
        print("error: only --dry-run exists here: the executor that trades is the MQL5 EA", file=sys.stderr)
        return 2
    if not args.api_key:
        print("error: --api-key (or $MT5DB_API_KEY) is required", file=sys.stderr)
        return 2
    timeframe = canonical(args.timeframe)
    if timeframe is None:
        print(f"error: unknown timeframe {args.timeframe!r}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(
            run_executor(
                url=args.url, api_key=args.api_key, account_id=args.account_id,
                symbols=[s for s in args.symbols.split(",") if s], timeframe=timeframe, polls=args.polls,
                interval_s=args.interval, idle_polls=args.until_idle, fill_wait_s=args.fill_wait,
            )
        )  # fmt: skip
    except ExecutorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0
