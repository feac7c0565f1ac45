"""Restores: into a new (or empty) database, TimescaleDB-aware, checked against the dump's
metadata; verification is the same restore into a scratch database that is dropped afterwards."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt5db_backup.files import format_timestamp, metadata_path, read_metadata, utc_now, write_json_atomic
from mt5db_backup.outcome import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, BackupError, report, say
from mt5db_backup.pg import (
    CONTENT_SQL,
    PG_IDENT_MAX,
    Conn,
    client_tool,
    create_database,
    database_exists,
    describe,
    drop_database,
    psql,
    quote_literal,
    resolve_url,
    tail,
)
from mt5db_core.digest import file_sha256


def restore_into(target: Conn, dump: Path, metadata: dict[str, Any]) -> list[str]:
    """pg_restore into an empty database; with TimescaleDB, the pre/post-restore protocol.

    Returns the summary lines. Raises BackupError (with pg_restore's messages) on failure.
    """
    lines: list[str] = []
    ts_version = metadata.get("timescaledb_version")
    if ts_version:
        wanted = quote_literal(ts_version)
        available = psql(
            target,
            f"SELECT count(*) FROM pg_available_extension_versions WHERE name = 'timescaledb' AND version = {wanted}",  # noqa: S608 - quoted
        )
        if available != "1":
            raise BackupError(
                f"the dump needs TimescaleDB {ts_version} (restores need the same version) "
                f"but this server does not offer it; use an image with timescaledb {ts_version}"
            )
        psql(target, f"CREATE EXTENSION IF NOT EXISTS timescaledb VERSION {quote_literal(ts_version)}")
        psql(target, "SELECT timescaledb_pre_restore()")
        lines.append(f"timescaledb: CREATE EXTENSION timescaledb {ts_version}; timescaledb_pre_restore()")
    done = subprocess.run(
        [client_tool("pg_restore"), "--no-owner", "--exit-on-error", "-d", target.url, str(dump)],
        env=target.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if ts_version:
        # Even after a failed restore: leave the database out of restoring mode.
        with contextlib.suppress(BackupError):
            psql(target, "SELECT timescaledb_post_restore()")
        lines.append("timescaledb: timescaledb_post_restore()")
    if done.returncode != 0:
        raise BackupError(f"pg_restore into {target.database} failed: {tail(done.stderr) or done.returncode}")
    return lines


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences between the recorded table list/row counts and a restored database's."""
    problems: list[str] = []
    want_tables, got_tables = list(expected.get("tables") or []), list(actual.get("tables") or [])
    if want_tables != got_tables:
        missing = sorted(set(want_tables) - set(got_tables))
        extra = sorted(set(got_tables) - set(want_tables))
        problems.append(f"table list differs (missing {missing}, unexpected {extra})")
    want_counts: dict[str, Any] = dict(expected.get("row_counts") or {})
    got_counts: dict[str, Any] = dict(actual.get("row_counts") or {})
    for table in sorted(set(want_counts) | set(got_counts)):
        if want_counts.get(table) != got_counts.get(table):
            problems.append(
                f"{table}: {want_counts.get(table)} rows recorded, {got_counts.get(table)} restored"
            )
    return problems


def counts_text(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no counted tables"


def check_checksum(dump: Path, metadata: dict[str, Any]) -> str | None:
    """None when the dump's sha256 matches its metadata, else the problem."""
    recorded = metadata.get("sha256")
    if not isinstance(recorded, str):
        return f"{metadata_path(dump).name} records no sha256"
    actual = file_sha256(dump)
    if actual != recorded:
        return f"sha256 mismatch: {dump.name} is {actual}, its metadata records {recorded}"
    return None


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    database: str | None = None


def verify_dump(conn: Conn, dump: Path, metadata: dict[str, Any]) -> Verification:
    """Checksum, then a real restore into a scratch database on the same server, then compare."""
    problem = check_checksum(dump, metadata)
    if problem:
        say(f"verify: FAILED {problem}")
        return Verification(False, [problem])
    scratch = f"mt5db_verify_{secrets.token_hex(6)}"
    result = Verification(False, database=scratch)
    try:
        create_database(conn, scratch)
        target = conn.with_database(scratch)
        for line in restore_into(target, dump, metadata):
            say(f"verify: {line}")
        restored = describe(target)
        result.problems = compare(metadata, restored)
        result.ok = not result.problems
        if result.ok:
            say(
                f"verify: restored {dump.name} into scratch database {scratch}: "
                f"{len(restored['tables'])} tables, row counts match ({counts_text(restored['row_counts'])})"
            )
        else:
            say(f"verify: FAILED {dump.name}: " + "; ".join(result.problems))
    except BackupError as exc:
        result.problems = [str(exc)]
        say(f"verify: FAILED {dump.name}: {exc}")
    finally:
        try:
            drop_database(conn, scratch)
            say(f"verify: dropped scratch database {scratch}")
        except BackupError as exc:
            say(f"verify: could not drop scratch database {scratch}: {exc}")
    return result


def record_verification(dump: Path, metadata: dict[str, Any], outcome: Verification) -> None:
    metadata["verified"] = outcome.ok
    metadata["verified_at"] = utc_now().isoformat(timespec="seconds")
    metadata["verify_problems"] = outcome.problems
    write_json_atomic(metadata_path(dump), metadata)


def run_verify_file(database_url: str | None, dump_file: str) -> int:
    """Re-verify an existing dump (checksum + scratch restore + compare); record the outcome."""

    def verify(result: dict[str, Any]) -> int:
        dump = Path(dump_file)
        if not dump.is_file():
            raise BackupError(f"{dump} does not exist")
        metadata = read_metadata(dump)
        if metadata is None:
            raise BackupError(f"{metadata_path(dump)} is missing or unreadable; cannot verify without it")
        conn = resolve_url(database_url)
        outcome = verify_dump(conn, dump, metadata)
        record_verification(dump, metadata, outcome)
        result.update(verified=outcome.ok, verify_problems=outcome.problems, ok=outcome.ok)
        return EXIT_OK if outcome.ok else EXIT_FAILED

    return report({"action": "verify", "ok": False, "file": dump_file}, verify)


# -- mt5db restore -----------------------------------------------------------------------------------


@dataclass
class RestoreRequest:
    database_url: str | None
    from_file: str
    target_database: str | None
    confirm: bool


def run_restore(request: RestoreRequest) -> int:
    result: dict[str, Any] = {"action": "restore", "ok": False, "file": request.from_file}
    return report(result, lambda r: _restore(request, r))


def _restore(request: RestoreRequest, result: dict[str, Any]) -> int:
    dump = Path(request.from_file)
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist")
    metadata = read_metadata(dump)
    if metadata is None:
        raise BackupError(
            f"{metadata_path(dump)} is missing or unreadable: restore checks the dump against its metadata "
            "(copy the .json with the .dump)"
        )
    problem = check_checksum(dump, metadata)
    if problem:
        raise BackupError(f"refusing to restore: {problem}")
    say(f"restore: {dump.name} matches its metadata (sha256 {metadata['sha256'][:16]}…)")
    conn = resolve_url(request.database_url)
    source_db = str(metadata.get("database") or "mt5db")
    suffix = f"_restore_{format_timestamp(utc_now())}"
    target = request.target_database or (source_db[: PG_IDENT_MAX - len(suffix)] + suffix)
    if len(target.encode()) > PG_IDENT_MAX:
        raise BackupError(f"--target-database {target!r} is longer than 63 bytes", EXIT_USAGE)
    result["target_database"] = target
    maintenance = conn if conn.database != target else conn.with_database("postgres")

    created = False
    if database_exists(maintenance, target):
        objects = int(psql(conn.with_database(target), CONTENT_SQL) or "0")
        if objects and not request.confirm:
            raise BackupError(
                f"refusing to restore into existing database {target}: it is not empty ({objects} objects); "
                "pass --confirm to drop and recreate it, or restore into a new database",
                EXIT_REFUSED,
            )
        if objects:
            drop_database(maintenance, target)
            say(f"restore: dropped existing database {target} ({objects} objects; --confirm)")
            create_database(maintenance, target)
            created = True
            say(f"restore: created database {target}")
        else:
            say(f"restore: restoring into existing empty database {target}")
    else:
        create_database(maintenance, target)
        created = True
        say(f"restore: created database {target}")

    target_conn = conn.with_database(target)
    try:
        for line in restore_into(target_conn, dump, metadata):
            say(f"restore: {line}")
    except BackupError:
        if created:
            with contextlib.suppress(BackupError):
                drop_database(maintenance, target)
                say(f"restore: dropped the half-restored database {target}")
        raise
    restored = describe(target_conn)
    problems = compare(metadata, restored)
    result.update(tables=len(restored["tables"]), row_counts=restored["row_counts"])
    if problems:
        result["problems"] = problems
        raise BackupError(
            f"restored {target} but it differs from the metadata (left for inspection): "
            + "; ".join(problems)
        )
    say(
        f"restore: restored {dump.name} into {target}: {len(restored['tables'])} tables, "
        f"row counts match ({counts_text(restored['row_counts'])})"
    )
    if metadata.get("server_version") and metadata["server_version"] != restored["server_version"]:
        say(
            f"restore: note: dumped from PostgreSQL {metadata['server_version']}, restored on {restored['server_version']}"
        )
    result["ok"] = True
    return EXIT_OK
