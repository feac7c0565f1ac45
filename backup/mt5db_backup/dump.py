"""`mt5db backup`: pg_dump -Fc in one snapshot with its metadata, optional verification, retention."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mt5db_backup.files import (
    METADATA_FORMAT,
    format_timestamp,
    fsync_dir,
    metadata_path,
    utc_now,
    write_json_atomic,
)
from mt5db_backup.outcome import EXIT_OK, EXIT_USAGE, BackupError, report, say
from mt5db_backup.pg import Conn, SnapshotSession, client_tool, describe, resolve_url, tail, tool_major
from mt5db_backup.restore import counts_text, record_verification, verify_dump
from mt5db_backup.retention import apply_retention, parse_duration
from mt5db_core.digest import file_sha256

_POLICY_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


@dataclass
class BackupRequest:
    database_url: str | None
    destination: str
    keep_last: int
    max_age: str
    policy: str
    verify: bool


def _free_name(destination: Path, policy: str, created: datetime) -> tuple[Path, datetime]:
    """`<policy>-<timestamp>.dump`; a second later when a dump of that second already exists."""
    for _ in range(120):
        name = destination / f"{policy}-{format_timestamp(created)}.dump"
        if not name.exists() and not metadata_path(name).exists():
            return name, created
        created += timedelta(seconds=1)
    raise BackupError(f"no free dump name for policy {policy} in {destination}")


def dump_database(conn: Conn, destination: Path, policy: str) -> tuple[Path, dict[str, Any]]:
    """pg_dump -Fc to a hidden partial file in `destination`, then rename it into place.

    The metadata is written first (atomically), the dump renamed after it, so every visible dump
    has its metadata. On any failure the partial file is removed.
    """
    pg_dump = client_tool("pg_dump")
    created = utc_now()
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(dir=destination, prefix=f".{policy}-", suffix=".dump.partial")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with SnapshotSession(conn) as session:
            session.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = session.query("SELECT pg_export_snapshot()")
            info = describe(conn, session)
            server_major = int(info["server_version_num"]) // 10000
            client_major = tool_major(pg_dump)
            if client_major is not None and client_major < server_major:
                raise BackupError(
                    f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server: install "
                    f"postgresql-client-{server_major} (or point MT5DB_PG_BINDIR at it)"
                )
            done = subprocess.run(
                [pg_dump, "-Fc", f"--snapshot={snapshot}", "-f", str(tmp), "-d", conn.url],
                env=conn.env(), capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise BackupError(
                    f"pg_dump of {conn.redacted} failed: {tail(done.stderr) or done.returncode}"
                )
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        final, created = _free_name(destination, policy, created)
        metadata: dict[str, Any] = {
            "format": METADATA_FORMAT,
            "policy": policy,
            "file": final.name,
            "created_at": created.isoformat(timespec="seconds"),
            "size": tmp.stat().st_size,
            "sha256": file_sha256(tmp),
            "duration_s": round(time.monotonic() - started, 3),
            "server_version": info["server_version"],
            "server_version_num": info["server_version_num"],
            "timescaledb_version": info["timescaledb_version"],
            "database": info["database"],
            "tables": info["tables"],
            "row_counts": info["row_counts"],
            "pg_dump_version": client_major,
            "verified": None,
        }
        write_json_atomic(metadata_path(final), metadata)
        os.replace(tmp, final)
        fsync_dir(destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if done.stderr.strip():
        for line in done.stderr.strip().splitlines()[-5:]:
            say(f"backup: pg_dump said: {line}")
    return final, metadata


def run_backup(request: BackupRequest) -> int:
    result: dict[str, Any] = {"action": "backup", "ok": False, "policy": request.policy}
    return report(result, lambda r: _backup(request, r))


def _backup(request: BackupRequest, result: dict[str, Any]) -> int:
    if request.destination.startswith("s3://"):
        raise BackupError(
            f"S3 upload is not implemented yet: cannot back up to {request.destination}. "
            "mt5db backup writes to a local directory only; use a BackupPolicy with spec.destination.pvc "
            "(see docs/backup.md)",
            EXIT_USAGE,
        )
    if not _POLICY_RE.fullmatch(request.policy):
        raise BackupError(
            f"--policy {request.policy!r}: expected a Kubernetes-style name ([a-z0-9.-_])", EXIT_USAGE
        )
    if request.keep_last < 1:
        raise BackupError("--keep-last must be at least 1", EXIT_USAGE)
    max_age = parse_duration(request.max_age)
    destination = Path(request.destination)
    if not destination.is_dir():
        # Deliberately not created: a missing mount must fail, not fill the container's filesystem.
        raise BackupError(
            f"destination {destination} does not exist or is not a directory (is the volume mounted?)"
        )
    conn = resolve_url(request.database_url)

    dump, metadata = dump_database(conn, destination, request.policy)
    result.update(
        file=str(dump), size=metadata["size"], sha256=metadata["sha256"], duration_s=metadata["duration_s"],
        database=metadata["database"], server_version=metadata["server_version"],
        timescaledb_version=metadata["timescaledb_version"], row_counts=metadata["row_counts"], verified=None,
    )  # fmt: skip
    say(
        f"backup: dumped database {metadata['database']} to {dump} ({metadata['size']} bytes, "
        f"sha256 {metadata['sha256'][:16]}…, {metadata['duration_s']:.1f}s; PostgreSQL "
        f"{metadata['server_version']}, TimescaleDB {metadata['timescaledb_version'] or 'none'}; "
        f"{counts_text(metadata['row_counts'])})"
    )
    if request.verify:
        outcome = verify_dump(conn, dump, metadata)
        record_verification(dump, metadata, outcome)
        result["verified"] = outcome.ok
        if not outcome.ok:
            result["verify_problems"] = outcome.problems
            say("retention: skipped (the new dump failed verification; nothing is pruned)")
            raise BackupError(f"verification of {dump.name} failed: " + "; ".join(outcome.problems))

    retention = apply_retention(destination, request.policy, request.keep_last, max_age, dump, utc_now())
    for pruned in retention.pruned:
        say(f"retention: pruned {pruned['removed']} ({pruned['reason']})")
    say(
        f"retention: kept {len(retention.kept)} (keep-last {request.keep_last}, max-age {request.max_age}): "
        + ", ".join(retention.kept)
    )
    result.update(kept=retention.kept, pruned=retention.pruned)
    if retention.errors:
        result["prune_errors"] = retention.errors
        raise BackupError("pruning failed: " + "; ".join(retention.errors))
    result["ok"] = True
    return EXIT_OK
