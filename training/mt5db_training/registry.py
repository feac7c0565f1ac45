"""The model registry (docs/ml-protocol.md §11): artifacts, versions, aliases and their history.

* `model_artifacts`: the artifact bytes under their sha256, so any serving pod loads a version
  without a shared filesystem (the file next to the report, `artifacts/<sha256>.<ext>`, stays for
  people); loading always re-checks the hash first (artifacts.py).
* `model_versions`: one immutable row per registered version (a trigger refuses UPDATE and
  DELETE): artifact sha256, feature-set hash, training window, symbol/timeframe/horizons, per-fold
  metrics, the report's verdict and the model card.
* `model_aliases`: (symbol, timeframe, model kind, champion|challenger) → version; every change
  goes through `set_alias`, which writes `model_alias_history` (who/what, when, why, the gate's
  numbers) in the same transaction; a trigger NOTIFYs serving.

This module is the one owner of that SQL: training registers and promotes through it, `mt5db
models` manages aliases through it, and serving reads through it. Training never creates tables:
`mt5db migrate` (the API's migration chain) owns the schema, and registering into a database
that was never migrated fails with RegistryNotMigrated.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mt5db_core.digest import file_sha256
from mt5db_core.market.tables import MODEL_ALIAS_HISTORY, MODEL_ALIASES, MODEL_ARTIFACTS, MODEL_VERSIONS
from mt5db_training.artifacts import MEDIA_TYPES, ArtifactHashMismatch, verify_bytes
from mt5db_training.card import KIND, build_card
from mt5db_training.gate import ChampionRecipe, Decision

__all__ = ["ArtifactHashMismatch", "RegistryNotMigrated"]

ALIASES = ("champion", "challenger")


class RegistryNotMigrated(RuntimeError):
    """The registry database has no model_versions table: `mt5db migrate` has not run there."""


def _store(tmp: Path, out_dir: Path, ext: str) -> tuple[str, str]:
    sha = file_sha256(tmp)
    target_dir = out_dir / "artifacts"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{sha}.{ext}"
    os.replace(tmp, target)
    return f"artifacts/{target.name}", sha


def save_sklearn_artifact(model: Any, out_dir: Path) -> tuple[str, str]:
    """joblib-dump a fitted estimator; returns (uri relative to out_dir, sha256)."""
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    os.close(fd)
    joblib.dump(model, name, compress=3)
    return _store(Path(name), out_dir, "joblib")


def save_torch_artifact(state_dict: dict[str, Any], out_dir: Path) -> tuple[str, str]:
    """torch.save a state_dict (tensors only); returns (uri relative to out_dir, sha256)."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    os.close(fd)
    torch.save(state_dict, name)
    return _store(Path(name), out_dir, "pt")


def verify_artifact(path: Path, expected_sha256: str) -> None:
    """Raise ArtifactHashMismatch unless the file's sha256 equals the recorded one."""
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ArtifactHashMismatch(f"{path.name}: sha256 {actual} != recorded {expected_sha256}")


def load_sklearn_artifact(path: Path, expected_sha256: str) -> Any:
    """Verify, then joblib-load (only ever for our own artifacts)."""
    import joblib

    verify_artifact(path, expected_sha256)
    return joblib.load(path)


def load_torch_state(path: Path, expected_sha256: str) -> dict[str, Any]:
    """Verify, then torch.load(weights_only=True)."""
    import torch

    verify_artifact(path, expected_sha256)
    state: dict[str, Any] = torch.load(path, weights_only=True, map_location="cpu")
    return state


async def require_registry(conn: Any) -> None:
    """Raise RegistryNotMigrated unless the registry tables exist (created by `mt5db migrate`)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MODEL_ALIASES):
        raise RegistryNotMigrated(
            f"the registry database has no {MODEL_VERSIONS}/{MODEL_ALIASES} tables: run `mt5db migrate` "
            "against it first (training never creates tables)"
        )


# -- names and rows ----------------------------------------------------------------------------


def model_name(report: Mapping[str, Any], horizon: str | int | None = None) -> str:
    """Registry name of a run's version, e.g. `rf_ret_EURUSD_H1` (one version bundles its horizons).

    `horizon` is accepted for callers of the one-row-per-horizon registry and ignored.
    """
    data = report["data"]
    short = KIND.get(report["algo"], report["algo"])
    task = "ret" if report["task"] == "regression" else "dir"
    return f"{short}_{task}_{data['symbol']}_{data['timeframe']}"


def version_row(report: dict[str, Any], report_path: Path) -> dict[str, Any]:
    """The model_versions row of a report (metrics = every horizon's block minus plot data)."""
    from mt5db_training.report import to_jsonable

    data = report["data"]
    card = build_card(report)
    signal_h = str(report["signal"]["horizon"])
    metrics: dict[str, Any] = {
        h: {
            k: block[k]
            for k in ("regression", "classification", "backtest", "per_fold", "verdict", "verdict_reasons")
            if k in block
        }
        for h, block in report["horizons"].items()
    }
    metrics["lockbox"] = data["lockbox"]
    metrics["configs_tried"] = report["configs_tried"]
    if "champion_on_same_folds" in report:
        metrics["champion_on_same_folds"] = report["champion_on_same_folds"]
    start, end = report["serving"]["train_window"]
    row = {
        "name": model_name(report),
        "algo": report["algo"],
        "task": report["task"],
        "model_kind": KIND.get(report["algo"], report["algo"]),
        "symbol": data["symbol"],
        "timeframe": data["timeframe"],
        "horizon": int(signal_h),
        "horizons": [int(h) for h in report["horizons"]],
        "feature_set_version": report["features"]["version"],
        "feature_set_hash": card["feature_set_hash"],
        "features": list(report["features"]["names"]),
        "warmup_bars": int(report["features"]["warmup_bars"]),
        "train_range": data["development_range"],
        "train_start": start,
        "train_end": end,
        "data_sha256": data["sha256"],
        "code_git_sha": report["code_version"],
        "params": report["config"] | {"config_hash": report["config_hash"]},
        "metrics": metrics,
        "threshold": report["signal"]["threshold"],
        "verdict": report["horizons"][signal_h]["verdict"],
        "beats_baselines": report["horizons"][signal_h]["verdict"] == "beats baselines",
        "model_card": card,
        "artifact_uri": str((report_path.parent / report["artifact"]["uri"]).resolve().as_uri()),
        "artifact_sha256": report["artifact"]["sha256"],
        "run_name": report["run"],
    }
    return dict(to_jsonable(row))


# -- SQL ---------------------------------------------------------------------------------------


async def store_artifact(conn: Any, data: bytes, media_type: str) -> str:
    """Insert the bytes under their sha256 (idempotent: the same bytes are stored once)."""
    from mt5db_training.artifacts import sha256_of

    sha = sha256_of(data)
    await conn.execute(
        f"INSERT INTO {MODEL_ARTIFACTS} (sha256, bytes, size, media_type) VALUES ($1, $2, $3, $4) "  # noqa: S608 - constant table name; values are bound
        "ON CONFLICT (sha256) DO NOTHING",
        sha,
        data,
        len(data),
        media_type,
    )
    return sha


async def fetch_artifact(conn: Any, sha256: str) -> bytes | None:
    """The stored bytes of an artifact (not yet verified: callers verify before loading)."""
    data: bytes | None = await conn.fetchval(
        f"SELECT bytes FROM {MODEL_ARTIFACTS} WHERE sha256 = $1",  # noqa: S608 - constant table name
        sha256,
    )
    return data


async def insert_version(conn: Any, row: dict[str, Any]) -> tuple[int, int]:
    """Insert one version with version = max(version)+1 for its name; returns (id, version)."""
    async with conn.transaction():
        # serialise concurrent registrations of the same name
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", row["name"])
        version: int = await conn.fetchval(
            f"SELECT coalesce(max(version), 0) + 1 FROM {MODEL_VERSIONS} WHERE name = $1",  # noqa: S608 - constant table name; values are bound
            row["name"],
        )
        version_id: int = await conn.fetchval(
            f"""
            INSERT INTO {MODEL_VERSIONS} (name, version, status, algo, task, model_kind, symbol, timeframe,
                horizon, horizons, feature_set_version, feature_set_hash, features, warmup_bars, train_range,
                train_start, train_end, data_sha256, code_git_sha, params, metrics, threshold, verdict,
                beats_baselines, model_card, artifact_uri, artifact_sha256, run_name)
            VALUES ($1, $2, 'registered', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14,
                $15::timestamptz, $16::timestamptz, $17, $18, $19::jsonb, $20::jsonb, $21, $22, $23,
                $24::jsonb, $25, $26, $27)
            RETURNING id
            """,  # noqa: S608 - constant table name; values are bound
            row["name"],
            version,
            row["algo"],
            row["task"],
            row["model_kind"],
            row["symbol"],
            row["timeframe"],
            row["horizon"],
            row["horizons"],
            row["feature_set_version"],
            row["feature_set_hash"],
            json.dumps(row["features"]),
            row["warmup_bars"],
            row["train_range"],
            _timestamp(row["train_start"]),
            _timestamp(row["train_end"]),
            row["data_sha256"],
            row["code_git_sha"],
            json.dumps(row["params"]),
            json.dumps(row["metrics"]),
            row.get("threshold"),
            row["verdict"],
            row["beats_baselines"],
            json.dumps(row["model_card"]),
            row["artifact_uri"],
            row["artifact_sha256"],
            row["run_name"],
        )
    return version_id, version


def _timestamp(value: Any) -> Any:
    """A training-window bound (ISO text, broker clock labelled as UTC like market_data.ts)."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


VERSION_COLUMNS = (
    "v.id, v.name, v.version, v.created_at, v.algo, v.task, v.model_kind, v.symbol, v.timeframe, "
    "v.horizon, v.horizons, v.feature_set_version, v.feature_set_hash, v.features, v.warmup_bars, "
    "v.train_range, v.train_start, v.train_end, v.data_sha256, v.code_git_sha, v.params, v.threshold, "
    "v.verdict, v.beats_baselines, v.model_card, v.artifact_sha256, v.run_name"
)


def label(row: Mapping[str, Any]) -> str:
    """`<name>:v<version>`, how people and status fields name a version."""
    return f"{row['name']}:v{row['version']}"


async def alias_target(conn: Any, symbol: str, timeframe: str, kind: str, alias: str) -> Any:
    """The version an alias points at (with the alias's updated_at), or None."""
    return await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS}, a.alias, a.updated_at FROM {MODEL_ALIASES} a "  # noqa: S608 - constants only; values are bound
        f"JOIN {MODEL_VERSIONS} v ON v.id = a.version_id "
        "WHERE a.symbol = $1 AND a.timeframe = $2 AND a.model_kind = $3 AND a.alias = $4",
        symbol,
        timeframe,
        kind,
        alias,
    )


async def alias_targets(conn: Any) -> list[Any]:
    """Every alias and its version (what serving loads)."""
    return list(
        await conn.fetch(
            f"SELECT {VERSION_COLUMNS}, a.alias, a.updated_at FROM {MODEL_ALIASES} a "  # noqa: S608 - constants only
            f"JOIN {MODEL_VERSIONS} v ON v.id = a.version_id ORDER BY a.symbol, a.timeframe, a.model_kind, a.alias"
        )
    )


async def alias_fingerprint(conn: Any) -> list[tuple[str, str, str, str, int]]:
    """(symbol, timeframe, kind, alias, version id) of every alias: cheap, for the polling fallback."""
    rows = await conn.fetch(
        f"SELECT symbol, timeframe, model_kind, alias, version_id FROM {MODEL_ALIASES} "  # noqa: S608 - constant
        "ORDER BY 1, 2, 3, 4"
    )
    return [tuple(r) for r in rows]


async def set_alias(
    conn: Any,
    *,
    symbol: str,
    timeframe: str,
    kind: str,
    alias: str,
    version_id: int,
    action: str,
    actor: str,
    reason: str,
    gate: Mapping[str, Any] | None = None,
) -> int | None:
    """Point an alias at a version and record the change; returns the previous version id.

    Call inside a transaction (the alias row and its history row commit together).
    """
    if alias not in ALIASES:
        raise ValueError(f"alias must be one of {ALIASES}")
    previous: int | None = await conn.fetchval(
        f"SELECT version_id FROM {MODEL_ALIASES} WHERE symbol = $1 AND timeframe = $2 "  # noqa: S608 - constant
        "AND model_kind = $3 AND alias = $4 FOR UPDATE",
        symbol,
        timeframe,
        kind,
        alias,
    )
    await conn.execute(
        f"INSERT INTO {MODEL_ALIASES} (symbol, timeframe, model_kind, alias, version_id) "  # noqa: S608 - constant
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (symbol, timeframe, model_kind, alias) "
        "DO UPDATE SET version_id = EXCLUDED.version_id, updated_at = now()",
        symbol,
        timeframe,
        kind,
        alias,
        version_id,
    )
    await conn.execute(
        f"INSERT INTO {MODEL_ALIAS_HISTORY} (symbol, timeframe, model_kind, alias, version_id, "  # noqa: S608 - constant
        "previous_version_id, action, actor, reason, gate) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)",
        symbol,
        timeframe,
        kind,
        alias,
        version_id,
        previous,
        action,
        actor,
        reason,
        json.dumps(dict(gate or {}), default=str),
    )
    if alias == "champion":
        # A version is champion or challenger, not both: promoting the challenger clears that alias.
        cleared = await conn.fetchval(
            f"DELETE FROM {MODEL_ALIASES} WHERE symbol = $1 AND timeframe = $2 AND model_kind = $3 "  # noqa: S608 - constant
            "AND alias = 'challenger' AND version_id = $4 RETURNING version_id",
            symbol,
            timeframe,
            kind,
            version_id,
        )
        if cleared is not None:
            await conn.execute(
                f"INSERT INTO {MODEL_ALIAS_HISTORY} (symbol, timeframe, model_kind, alias, version_id, "  # noqa: S608 - constant
                "previous_version_id, action, actor, reason) VALUES ($1, $2, $3, 'challenger', NULL, $4, 'cleared', $5, $6)",
                symbol,
                timeframe,
                kind,
                cleared,
                actor,
                "the challenger became the champion",
            )
    return previous


async def lock_series(conn: Any, symbol: str, timeframe: str, kind: str) -> None:
    """Serialise alias changes of one series (inside a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"alias:{symbol}:{timeframe}:{kind}")


async def history(conn: Any, symbol: str, timeframe: str, kind: str, limit: int = 50) -> list[Any]:
    """The alias changes of a series, newest first, with the versions' labels."""
    return list(
        await conn.fetch(
            f"SELECT h.id, h.alias, h.action, h.actor, h.reason, h.gate, h.changed_at, "  # noqa: S608 - constants only
            "v.name || ':v' || v.version AS version, p.name || ':v' || p.version AS previous, "
            "h.version_id, h.previous_version_id "
            f"FROM {MODEL_ALIAS_HISTORY} h LEFT JOIN {MODEL_VERSIONS} v ON v.id = h.version_id "
            f"LEFT JOIN {MODEL_VERSIONS} p ON p.id = h.previous_version_id "
            "WHERE h.symbol = $1 AND h.timeframe = $2 AND h.model_kind = $3 ORDER BY h.id DESC LIMIT $4",
            symbol,
            timeframe,
            kind,
            limit,
        )
    )


async def find_version(conn: Any, ref: str) -> Any:
    """A version by `<name>:v<N>`, `<name>:<N>` or its numeric id; None when there is none."""
    name, _, number = ref.rpartition(":")
    if name:
        digits = number.lstrip("v")
        if not digits.isdigit():
            return None
        return await conn.fetchrow(
            f"SELECT {VERSION_COLUMNS} FROM {MODEL_VERSIONS} v WHERE v.name = $1 AND v.version = $2",  # noqa: S608
            name,
            int(digits),
        )
    if ref.isdigit():
        return await conn.fetchrow(
            f"SELECT {VERSION_COLUMNS} FROM {MODEL_VERSIONS} v WHERE v.id = $1",  # noqa: S608 - constants only
            int(ref),
        )
    return None


async def list_versions(conn: Any, symbol: str | None = None, timeframe: str | None = None) -> list[Any]:
    """Every version with the aliases pointing at it, newest first."""
    return list(
        await conn.fetch(
            f"SELECT v.id, v.name, v.version, v.created_at, v.model_kind, v.symbol, v.timeframe, v.horizon, "  # noqa: S608 - constants only
            "v.verdict, v.beats_baselines, v.run_name, "
            f"coalesce((SELECT array_agg(a.alias ORDER BY a.alias) FROM {MODEL_ALIASES} a WHERE a.version_id = v.id), "
            "'{}') AS aliases "
            f"FROM {MODEL_VERSIONS} v WHERE ($1::text IS NULL OR v.symbol = $1) "
            "AND ($2::text IS NULL OR v.timeframe = $2) ORDER BY v.symbol, v.timeframe, v.name, v.version DESC",
            symbol,
            timeframe,
        )
    )


# -- what a training run does ------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """One registered version and what the gate did with it."""

    name: str
    version: int
    version_id: int
    symbol: str
    timeframe: str
    kind: str
    alias: str | None
    action: str
    reason: str

    @property
    def label(self) -> str:
        return f"{self.name}:v{self.version}"

    @property
    def promoted(self) -> bool:
        return self.alias == "champion"


def read_champion(dsn: str, symbol: str, timeframe: str, kind: str) -> ChampionRecipe | None:
    """The current champion of a series as the gate needs it (None without one).

    Raises RegistryNotMigrated when the database has no registry tables.
    """
    import asyncpg

    async def go() -> ChampionRecipe | None:
        conn = await asyncpg.connect(dsn)
        try:
            await require_registry(conn)
            row = await alias_target(conn, symbol, timeframe, kind, "champion")
        finally:
            await conn.close()
        if row is None:
            return None
        return ChampionRecipe(label=label(row), version_id=int(row["id"]), params=json.loads(row["params"]))

    return asyncio.run(go())


def register_run(
    dsn: str,
    report: dict[str, Any],
    report_path: Path,
    decision: Decision | None = None,
    *,
    actor: str = "mt5db train",
    expected_champion: int | None = None,
) -> Registered:
    """Store the artifact, insert the version, apply the gate's decision to the aliases: one
    transaction. Returns what was registered.

    `expected_champion` is the champion the gate compared against: when another version became
    champion meanwhile, a promotion is refused (challenger, with that reason) instead of
    replacing a champion the gate never saw. Raises RegistryNotMigrated when the database has no
    registry tables.
    """
    import asyncpg

    from mt5db_training.report import to_jsonable

    row = version_row(report, report_path)
    data = (report_path.parent / report["artifact"]["uri"]).read_bytes()
    verify_bytes(data, row["artifact_sha256"], report["artifact"]["uri"])
    media = MEDIA_TYPES[report["artifact"]["format"]]
    symbol, timeframe, kind = row["symbol"], row["timeframe"], row["model_kind"]

    async def go() -> Registered:
        conn = await asyncpg.connect(dsn)
        try:
            await require_registry(conn)
            async with conn.transaction():
                await lock_series(conn, symbol, timeframe, kind)
                await store_artifact(conn, data, media)
                version_id, version = await insert_version(conn, row)
                if decision is None or decision.alias is None:
                    action = decision.action if decision else "register"
                    return Registered(row["name"], version, version_id, symbol, timeframe, kind, None, action,
                                      decision.reason if decision else "")  # fmt: skip
                alias, action, reasons = decision.alias, decision.action, list(decision.reasons)
                current = await conn.fetchval(
                    f"SELECT version_id FROM {MODEL_ALIASES} WHERE symbol = $1 AND timeframe = $2 "  # noqa: S608 - constant
                    "AND model_kind = $3 AND alias = 'champion'",
                    symbol,
                    timeframe,
                    kind,
                )
                if action == "promote" and current != expected_champion:
                    alias, action = "challenger", "challenger"
                    reasons.append("the champion changed while this run trained; it was not compared with it")
                reason = "; ".join(reasons)
                await set_alias(
                    conn, symbol=symbol, timeframe=timeframe, kind=kind, alias=alias, version_id=version_id,
                    action=action, actor=actor, reason=reason, gate=to_jsonable(decision.numbers),
                )  # fmt: skip
                return Registered(
                    row["name"], version, version_id, symbol, timeframe, kind, alias, action, reason
                )
        finally:
            await conn.close()

    return asyncio.run(go())
