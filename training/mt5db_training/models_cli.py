"""`mt5db models list|show|promote|rollback|evaluate`: the registry for people (admin: it talks to
the database directly, like `mt5db keys`).

    mt5db models list [--symbol S] [--timeframe TF]
    mt5db models show rf_ret_EURUSD_H1:v3 [--json]
    mt5db models promote rf_ret_EURUSD_H1:v3 --reason "..." [--alias challenger]
    mt5db models rollback --symbol EURUSD --timeframe H1 [--kind rf] [--to rf_ret_EURUSD_H1:v2] --reason "..."
    mt5db models evaluate rf_ret_EURUSD_H1:v3 (--csv FILE | --start 2025-01-01 [--end ...]) [--json]

Every alias change is recorded in model_alias_history with who (`--actor`, default the local
user), when and why; serving processes reload within seconds (NOTIFY). A manual promotion is
recorded as such: it does not run the gate, and live signals still need a report that beats its
baselines (serving keeps every other champion's signals in shadow).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any


def _db(args: argparse.Namespace) -> str | None:
    url: str | None = args.database_url or os.environ.get("MT5DB_DATABASE_URL")
    if not url:
        print(
            "error: a database URL is required: pass --database-url or set MT5DB_DATABASE_URL",
            file=sys.stderr,
        )
    return url


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    import getpass

    try:
        return f"mt5db models by {getpass.getuser()}"
    except (KeyError, OSError):
        return "mt5db models"


def register(subparsers: Any) -> None:
    """Add `mt5db models`; imports stay inside the handlers (cheap start-up)."""
    models = subparsers.add_parser(
        "models", help="the model registry: list, show, promote, rollback, evaluate"
    )
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", default=None, help="registry database (default $MT5DB_DATABASE_URL)")

    p = sub.add_parser("list", help="versions with their aliases")
    common(p)
    p.add_argument("--symbol")
    p.add_argument("--timeframe")
    p.set_defaults(handler=_list)

    p = sub.add_parser("show", help="one version: card, metrics, aliases, the series' alias history")
    common(p)
    p.add_argument("version", help="NAME:vN (e.g. rf_ret_EURUSD_H1:v3) or the numeric id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)

    p = sub.add_parser("promote", help="point champion (or --alias challenger) at a version, recorded")
    common(p)
    p.add_argument("version")
    p.add_argument("--alias", choices=["champion", "challenger"], default="champion")
    p.add_argument("--reason", required=True, help="why (recorded in the alias history)")
    p.add_argument("--actor", default=None, help="who (default: the local user)")
    p.set_defaults(handler=_promote)

    p = sub.add_parser("rollback", help="re-point champion to the previous (or --to an earlier) version")
    common(p)
    p.add_argument("--symbol", required=True)
    p.add_argument("--timeframe", required=True)
    p.add_argument("--kind", default="rf", choices=["rf", "informer"])
    p.add_argument("--to", default=None, help="NAME:vN of the same series (default: the previous champion)")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor", default=None)
    p.set_defaults(handler=_rollback)

    p = sub.add_parser("evaluate", help="score a version on data it never saw (a CSV or a date range)")
    common(p)
    p.add_argument("version")
    p.add_argument("--csv", default=None, help="an MT5 history export of the version's series")
    p.add_argument("--start", default=None, help="first ts read from market_data (inclusive)")
    p.add_argument("--end", default=None, help="last ts read from market_data (exclusive)")
    p.add_argument("--cost-pips", type=float, default=None, help="default: the version's declared cost")
    p.add_argument("--bootstrap-reps", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print the evaluation as one JSON object")
    p.set_defaults(handler=_evaluate)


async def _connect(url: str) -> Any:
    import asyncpg

    from mt5db_training.registry import require_registry

    conn = await asyncpg.connect(url, timeout=10, server_settings={"application_name": "mt5db-models"})
    await require_registry(conn)
    return conn


def _run(url: str, work: Any) -> Any:
    async def go() -> Any:
        conn = await _connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _guard(fn: Any) -> Any:
    """Registry errors as one line and exit 1 (never a traceback for a person's typo)."""

    def wrapped(args: argparse.Namespace) -> int:
        from mt5db_training.registry import RegistryNotMigrated

        url = _db(args)
        if not url:
            return 2
        try:
            return int(fn(args, url))
        except (RegistryNotMigrated, LookupError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return wrapped


@_guard
def _list(args: argparse.Namespace, url: str) -> int:
    from mt5db_training import registry

    rows = _run(url, lambda conn: registry.list_versions(conn, args.symbol, args.timeframe))
    print(f"{'version':<34}{'kind':<10}{'series':<14}{'h':>4}  {'aliases':<22}{'verdict':<26}created")
    for r in rows:
        aliases = ",".join(r["aliases"]) or "-"
        print(
            f"{registry.label(r):<34}{r['model_kind'] or '-':<10}{r['symbol'] + ' ' + r['timeframe']:<14}"
            f"{r['horizon']:>4}  {aliases:<22}{r['verdict'] or '-':<26}{r['created_at']:%Y-%m-%d %H:%M}"
        )
    return 0


async def _version(conn: Any, ref: str) -> Any:
    from mt5db_training import registry

    row = await registry.find_version(conn, ref)
    if row is None:
        raise LookupError(f"no version {ref!r} (use NAME:vN, e.g. rf_ret_EURUSD_H1:v1, or the numeric id)")
    return row


@_guard
def _show(args: argparse.Namespace, url: str) -> int:
    from mt5db_training import registry

    async def work(conn: Any) -> tuple[Any, list[Any], list[Any]]:
        row = await _version(conn, args.version)
        aliases = await conn.fetch("SELECT alias FROM model_aliases WHERE version_id = $1", row["id"])
        hist = await registry.history(conn, row["symbol"], row["timeframe"], row["model_kind"])
        return row, [a["alias"] for a in aliases], hist

    row, aliases, hist = _run(url, work)
    card = json.loads(row["model_card"]) if row["model_card"] else {}
    if args.json:
        doc: dict[str, Any] = {
            k: (str(v) if not isinstance(v, int | float | str | list | type(None)) else v)
            for k, v in dict(row).items()
        }
        doc["model_card"] = card
        doc["params"] = json.loads(row["params"])
        doc["aliases"] = aliases
        doc["history"] = [
            dict(h) | {"changed_at": str(h["changed_at"]), "gate": json.loads(h["gate"])} for h in hist
        ]
        print(json.dumps(doc, indent=2, default=str))
        return 0
    signal = card.get("signal", {})
    print(f"{registry.label(row)} (id {row['id']}, {row['model_kind']}, {row['symbol']} {row['timeframe']})")
    print(
        f"  created {row['created_at']:%Y-%m-%d %H:%M:%S %Z} by run {row['run_name']}, code {row['code_git_sha']}"
    )
    print(f"  aliases: {', '.join(aliases) or 'none'}")
    print(f"  trained on: {row['train_range']}")
    print(f"  artifact: sha256 {row['artifact_sha256']} ({card.get('artifact', {}).get('fitted_on', '?')})")
    print(f"  features: {row['feature_set_version']} ({len(json.loads(row['features'] or '[]'))} columns), "
          f"hash {row['feature_set_hash']}, warm-up {row['warmup_bars']}")  # fmt: skip
    print(
        f"  signals: h={signal.get('horizon')}, threshold {signal.get('threshold')} ({signal.get('threshold_rule')})"
    )
    print(f"  verdict at h={row['horizon']}: {row['verdict']}")
    for reason in card.get("verdict_reasons", []):
        print(f"    - {reason}")
    print("  alias history of the series (newest first):")
    for h in hist:
        print(f"    {h['changed_at']:%Y-%m-%d %H:%M:%S} {h['alias']:<10} {h['action']:<10} {h['version'] or '-'} "
              f"(was {h['previous'] or '-'}) by {h['actor']}: {h['reason']}")  # fmt: skip
    return 0


@_guard
def _promote(args: argparse.Namespace, url: str) -> int:
    from mt5db_training import registry

    async def work(conn: Any) -> tuple[Any, Any]:
        row = await _version(conn, args.version)
        async with conn.transaction():
            await registry.lock_series(conn, row["symbol"], row["timeframe"], row["model_kind"])
            previous = await registry.set_alias(
                conn, symbol=row["symbol"], timeframe=row["timeframe"], kind=row["model_kind"], alias=args.alias,
                version_id=row["id"], action="manual", actor=_actor(args),
                reason=f"manual {args.alias} by a person (the gate was not run): {args.reason}",
            )  # fmt: skip
        return row, previous

    row, previous = _run(url, work)
    note = (
        ""
        if row["beats_baselines"]
        else " (its report does not beat its baselines: serving keeps its signals in shadow)"
    )
    print(f"{args.alias} of {row['symbol']} {row['timeframe']} ({row['model_kind']}) -> {registry.label(row)}"
          f" (was version id {previous or 'none'}){note}")  # fmt: skip
    return 0


@_guard
def _rollback(args: argparse.Namespace, url: str) -> int:
    from mt5db_training import registry

    async def work(conn: Any) -> tuple[Any, Any]:
        async with conn.transaction():
            await registry.lock_series(conn, args.symbol, args.timeframe, args.kind)
            current = await registry.alias_target(conn, args.symbol, args.timeframe, args.kind, "champion")
            if current is None:
                raise LookupError(
                    f"{args.symbol} {args.timeframe} ({args.kind}) has no champion to roll back"
                )
            if args.to:
                target = await _version(conn, args.to)
                if (target["symbol"], target["timeframe"], target["model_kind"]) != (
                    args.symbol,
                    args.timeframe,
                    args.kind,
                ):
                    raise ValueError(f"{args.to} belongs to another series")
            else:
                previous = await conn.fetchval(
                    "SELECT previous_version_id FROM model_alias_history WHERE symbol = $1 AND timeframe = $2 "
                    "AND model_kind = $3 AND alias = 'champion' AND version_id = $4 "
                    "AND previous_version_id IS NOT NULL ORDER BY id DESC LIMIT 1",
                    args.symbol, args.timeframe, args.kind, current["id"],
                )  # fmt: skip
                if previous is None:
                    raise LookupError(f"{registry.label(current)} has no earlier champion; pass --to NAME:vN")
                target = await registry.find_version(conn, str(previous))
            if target["id"] == current["id"]:
                raise ValueError(f"{registry.label(target)} is already the champion")
            await registry.set_alias(
                conn, symbol=args.symbol, timeframe=args.timeframe, kind=args.kind, alias="champion",
                version_id=target["id"], action="rollback", actor=_actor(args),
                reason=f"rollback from {registry.label(current)}: {args.reason}",
            )  # fmt: skip
            return current, target

    current, target = _run(url, work)
    print(
        f"champion of {args.symbol} {args.timeframe} ({args.kind}): {registry.label(current)} -> {registry.label(target)}"
    )
    return 0


@_guard
def _evaluate(args: argparse.Namespace, url: str) -> int:
    from pathlib import Path

    import pandas as pd

    from mt5db_training import registry
    from mt5db_training.evaluate import evaluate_version
    from mt5db_training.predictor import check_loadable
    from mt5db_training.report import format_tables, to_jsonable
    from mt5db_training.sources import load_candles, read_candle_file
    from mt5db_training.targets import CostModel

    if not args.csv and not args.start:
        raise ValueError("give --csv FILE or --start DATE (a range of market_data the version never saw)")

    async def work(conn: Any) -> tuple[Any, bytes]:
        row = await _version(conn, args.version)
        data = await registry.fetch_artifact(conn, row["artifact_sha256"])
        if data is None:
            raise LookupError(f"{registry.label(row)}: its artifact is not in model_artifacts")
        return row, data

    row, data = _run(url, work)
    card = json.loads(row["model_card"])
    predictor = check_loadable(data, row["artifact_sha256"], card, row["feature_set_hash"])

    def utc(value: str | None) -> Any:
        return pd.Timestamp(value, tz="UTC").to_pydatetime() if value else None

    if args.csv:
        candles = read_candle_file(Path(args.csv))
        source = Path(args.csv).name
    else:
        candles = load_candles(url, row["symbol"], row["timeframe"], utc(args.start), utc(args.end))
        source = f"market_data {row['symbol']} {row['timeframe']} [{args.start}, {args.end or 'now'})"
    label_cost = card.get("label", {}).get("cost", {})
    cost = CostModel(
        cost_pips=args.cost_pips if args.cost_pips is not None else float(label_cost.get("cost_pips", 1.0)),
        pip=float(label_cost.get("pip", 1e-4)),
        slippage_pips=float(label_cost.get("slippage_pips", 0.0)),
    )
    train_end = (
        pd.Timestamp(row["train_end"]).tz_convert("UTC").tz_localize(None) if row["train_end"] else None
    )
    result = evaluate_version(
        predictor, card, candles, train_end=train_end, cost=cost, reps=args.bootstrap_reps
    )
    verdicts = {h: b["verdict"] for h, b in result["horizons"].items()}
    doc = {
        "run": f"evaluate {registry.label(row)}",
        "algo": row["algo"],
        "version": registry.label(row),
        "source": source,
        "data": result["data"],
        "horizons": result["horizons"],
        "verdict": "; ".join(f"h={h}: {v}" for h, v in verdicts.items()),
        "note": result["note"],
    }
    if args.json:
        print(json.dumps(to_jsonable(doc), allow_nan=False))
    else:
        print(format_tables(doc))
        print(
            f"note: {result['note']}; {result['data']['dropped_seen_rows']} rows up to the training window's end dropped"
        )
    return 0
