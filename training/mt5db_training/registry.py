"""Content-addressed artifacts and the `model_versions` table (docs/ml-protocol.md §11).

Artifacts are stored as `artifacts/<sha256>.<ext>` next to the report; loading verifies the hash
first (joblib/pickle executes code, so only our own, hash-checked files are ever loaded). Torch
models are plain state_dicts, loadable with `torch.load(weights_only=True)`.

Training never creates tables: `mt5db migrate` (the API's migration chain) owns the schema of
`model_versions`, and registering into a database that was never migrated fails with
RegistryNotMigrated.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mt5db_core.digest import file_sha256
from mt5db_core.market.tables import MODEL_VERSIONS


class ArtifactHashMismatch(RuntimeError):
    """The file on disk is not the artifact the registry recorded."""


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
    """Raise RegistryNotMigrated unless the model_versions table exists (created by `mt5db migrate`)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MODEL_VERSIONS):
        raise RegistryNotMigrated(
            f"the registry database has no {MODEL_VERSIONS} table: run `mt5db migrate` against it first "
            "(training never creates tables)"
        )


async def insert_version(conn: Any, row: dict[str, Any]) -> int:
    """Insert one row with version = max(version)+1 for its name; returns the version."""
    async with conn.transaction():
        # serialise concurrent registrations of the same name
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", row["name"])
        version: int = await conn.fetchval(
            f"SELECT coalesce(max(version), 0) + 1 FROM {MODEL_VERSIONS} WHERE name = $1",  # noqa: S608 - constant table name; values are bound
            row["name"],
        )
        await conn.execute(
            f"""
            INSERT INTO {MODEL_VERSIONS} (name, version, status, algo, task, symbol, timeframe, horizon,
                feature_set_version, train_range, data_sha256, code_git_sha, params, metrics, threshold,
                artifact_uri, artifact_sha256, run_name)
            VALUES ($1, $2, 'candidate', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, $15, $16, $17)
            """,  # noqa: S608 - constant table name; values are bound
            row["name"],
            version,
            row["algo"],
            row["task"],
            row["symbol"],
            row["timeframe"],
            row["horizon"],
            row["feature_set_version"],
            row["train_range"],
            row["data_sha256"],
            row["code_git_sha"],
            json.dumps(row["params"]),
            json.dumps(row["metrics"]),
            row.get("threshold"),
            row["artifact_uri"],
            row["artifact_sha256"],
            row["run_name"],
        )
    return version


def model_name(report: Mapping[str, Any], horizon: str | int) -> str:
    """Registry name of one horizon's model, e.g. `rf_ret_h5_EURUSD_H1`."""
    data = report["data"]
    short = {"random_forest": "rf", "informer": "informer"}.get(report["algo"], report["algo"])
    task = "ret" if report["task"] == "regression" else "dir"
    return f"{short}_{task}_h{horizon}_{data['symbol']}_{data['timeframe']}"


def rows_from_report(report: dict[str, Any], report_path: Path) -> list[dict[str, Any]]:
    """One registry row per horizon artifact of a report (metrics = the horizon block minus plots data)."""
    rows = []
    data = report["data"]
    for h, art in report["artifacts"].items():
        block = report["horizons"][h]
        metrics = {
            k: block[k]
            for k in ("regression", "classification", "backtest", "per_fold", "verdict", "verdict_reasons")
            if k in block
        }
        metrics["lockbox"] = data["lockbox"]
        metrics["configs_tried"] = report["configs_tried"]
        rows.append(
            {
                "name": model_name(report, h),
                "algo": report["algo"],
                "task": report["task"],
                "symbol": data["symbol"],
                "timeframe": data["timeframe"],
                "horizon": int(h),
                "feature_set_version": report["features"]["version"],
                "train_range": data["development_range"],
                "data_sha256": data["sha256"],
                "code_git_sha": report["code_version"],
                "params": report["config"] | {"config_hash": report["config_hash"]},
                "metrics": metrics,
                "threshold": art.get("threshold"),
                "artifact_uri": str((report_path.parent / art["uri"]).resolve().as_uri()),
                "artifact_sha256": art["sha256"],
                "run_name": report["run"],
            }
        )
    return rows


def register_run(dsn: str, report: dict[str, Any], report_path: Path) -> dict[str, int]:
    """Register every artifact of a report; returns name → version.

    Raises RegistryNotMigrated when the database has no model_versions table.
    """
    import asyncpg

    from mt5db_training.report import to_jsonable

    rows = [to_jsonable(r) for r in rows_from_report(report, report_path)]

    async def go() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            await require_registry(conn)
            return {r["name"]: await insert_version(conn, r) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(go())
