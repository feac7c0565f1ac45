"""`mt5db backup` and `mt5db restore`: pg_dump/pg_restore around one destination directory.

Standard library only (the core package's import contract): the PostgreSQL client binaries do
the work, through subprocess. See docs/backup.md for the file layout, the metadata fields,
retention, verification and the restore procedure.

Exit codes: 0 done, 1 failed (dump, restore, verification or pruning), 2 usage error or not
implemented (S3 destinations), 3 refused for safety (a non-empty restore target without
--confirm). Every run prints one summary line per action and, last, one JSON line.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3

# Row counts recorded in the metadata and compared after a restore, when the table exists.
COUNTED_TABLES = ("market_data", "ticks", "model_versions")
# Leftovers of a killed run (partial dumps, metadata without its dump) older than this are removed.
STALE_LEFTOVER = timedelta(hours=24)
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
METADATA_FORMAT = 1

_POLICY_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})(h|d)$")
_PG_IDENT_MAX = 63

# User tables: everything but the system catalogs and TimescaleDB's own schemas (its chunks live in
# _timescaledb_internal and are reached through their hypertable, which is listed).
_TABLES_SQL = """
SELECT coalesce(json_agg(t.name ORDER BY t.name), '[]'::json) FROM (
  SELECT n.nspname || '.' || c.relname AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'toolkit_experimental')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND n.nspname NOT LIKE '\\_timescaledb%'
    AND n.nspname NOT LIKE 'timescaledb\\_%'
) t
"""

_SERVER_SQL = f"""
SELECT json_build_object(
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'timescaledb_version', (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
  'tables', ({_TABLES_SQL}),
  'present', (SELECT coalesce(json_agg(n), '[]'::json) FROM unnest(ARRAY[{", ".join(f"'{t}'" for t in COUNTED_TABLES)}]) n
              WHERE to_regclass(n) IS NOT NULL)
)
"""  # noqa: S608 - constants only

# Anything in a database besides the default objects: relations outside the system schemas, or an
# extension other than plpgsql.
_CONTENT_SQL = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
"""


class BackupError(Exception):
    """A failure with a message for the operator and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- small helpers ---------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    if "\x00" in name:
        raise BackupError("a database name cannot contain NUL", EXIT_USAGE)
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    if "\x00" in value:
        raise BackupError("a value cannot contain NUL", EXIT_USAGE)
    return "'" + value.replace("'", "''") + "'"


def parse_duration(text: str) -> timedelta:
    """`30d`, `720h` (the BackupPolicy CRD's maxAge grammar)."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise BackupError(
            f"--max-age {text!r}: expected a positive number of hours or days, e.g. 30d or 720h", EXIT_USAGE
        )
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_path(dump: Path) -> Path:
    return dump.with_suffix(".json")


def read_metadata(dump: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(metadata_path(dump).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write beside the target, fsync, rename over it: a reader sees the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def say(line: str) -> None:
    print(line, flush=True)


def emit_result(result: dict[str, Any]) -> None:
    """The last line of every run: one JSON object (for the operator to parse)."""
    print(json.dumps(result, sort_keys=True), flush=True)


# -- connections and client binaries ---------------------------------------------------------------


@dataclass(frozen=True)
class Conn:
    """A libpq URL without its password; the password travels in PGPASSWORD, never in argv."""

    url: str
    password: str | None = field(repr=False)
    database: str

    @property
    def redacted(self) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def with_database(self, name: str) -> Conn:
        parts = urlsplit(self.url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, ""))
        return Conn(url, self.password, name)


def parse_database_url(url: str) -> Conn:
    """postgresql://user:password@host:port/db?params → Conn (also accepts postgres://)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]  # tolerate SQLAlchemy-style postgresql+asyncpg://
    if scheme not in ("postgresql", "postgres"):
        raise BackupError(
            "the database URL must start with postgresql:// (set --database-url or MT5DB_DATABASE_URL)",
            EXIT_USAGE,
        )
    netloc, password = parts.netloc, None
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        if ":" in userinfo:
            user, raw_password = userinfo.split(":", 1)
            password = unquote(raw_password)
            netloc = f"{user}@{hostport}"
    # ?password=... is legal libpq too: move it out of the URL as well.
    params = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in params:
        if key == "password":
            password = value
    query = urlencode([(k, v) for k, v in params if k != "password"])
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "postgres"
    clean = urlunsplit(("postgresql", netloc, parts.path, query, ""))
    return Conn(clean, password, database)


def _major(version_text: str) -> int | None:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    return int(match.group(1)) if match else None


def client_tool(name: str) -> str:
    """pg_dump/pg_restore/psql: $MT5DB_PG_BINDIR, else the newest Debian major, else PATH."""
    explicit = os.environ.get("MT5DB_PG_BINDIR")
    if explicit:
        candidate = Path(explicit) / name
        if candidate.exists():
            return str(candidate)
        raise BackupError(f"{name} not found in MT5DB_PG_BINDIR={explicit}")
    found = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if found:
        return max(found, key=lambda p: _major(Path(p).parent.parent.name) or 0)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found (Debian package postgresql-client-15, or set MT5DB_PG_BINDIR)")


def tool_major(tool: str) -> int | None:
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\)\s*(\d+)", done.stdout)
    return int(match.group(1)) if match else None


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def psql(conn: Conn, sql: str) -> str:
    """One statement through psql; unaligned, tuples only. Raises BackupError with psql's message."""
    done = subprocess.run(
        [client_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conn.url, "-c", sql],
        env=conn.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"psql on {conn.redacted} failed: {_tail(done.stderr) or done.returncode}")
    return done.stdout.strip()


def psql_json(conn: Conn, sql: str) -> Any:
    return json.loads(psql(conn, sql))


def row_counts_sql(tables: Sequence[str]) -> str:
    if not tables:
        return "SELECT '{}'::json"
    pairs = ", ".join(f"{quote_literal(t)}, (SELECT count(*) FROM {quote_ident(t)})" for t in tables)  # noqa: S608 - quoted
    return f"SELECT json_build_object({pairs})"


class SnapshotSession:
    """A psql session holding one REPEATABLE READ transaction whose snapshot pg_dump reuses.

    The row counts and table list in the metadata are read in the same snapshot pg_dump dumps,
    so verification compares like with like even while ingest keeps writing.
    """

    _MARK = "__mt5db_done__"

    def __init__(self, conn: Conn) -> None:
        self._proc = subprocess.Popen(
            [client_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conn.url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=conn.env(),
        )  # fmt: skip
        self._conn = conn

    def query(self, sql: str) -> str:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(" ".join(sql.split()) + ";\n\\echo " + self._MARK + "\n")
            stdin.flush()
        except BrokenPipeError:
            pass
        lines: list[str] = []
        while True:
            line = stdout.readline()
            if not line:
                raise BackupError(f"psql on {self._conn.redacted} failed: {self._stderr()}")
            if line.rstrip("\n") == self._MARK:
                return "\n".join(lines).strip()
            lines.append(line.rstrip("\n"))

    def _stderr(self) -> str:
        try:
            _, err = self._proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        return _tail(err or "") or f"exit {self._proc.returncode}"

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._proc.stdin is not None
                self._proc.stdin.write("COMMIT;\n\\q\n")
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SnapshotSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(conn: Conn, session: SnapshotSession | None = None) -> dict[str, Any]:
    """Server version, TimescaleDB version, database name, table list and row counts."""
    run = session.query if session else (lambda sql: psql(conn, sql))
    info: dict[str, Any] = json.loads(run(_SERVER_SQL))
    present = info.pop("present")
    info["row_counts"] = json.loads(run(row_counts_sql(present)))
    return info


# -- scratch / target databases, TimescaleDB-aware restore -------------------------------------------


def database_exists(maintenance: Conn, name: str) -> bool:
    return psql(maintenance, f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(name)}") == "1"  # noqa: S608 - quoted


def create_database(maintenance: Conn, name: str) -> None:
    psql(maintenance, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")


def drop_database(maintenance: Conn, name: str) -> None:
    psql(maintenance, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


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
        raise BackupError(
            f"pg_restore into {target.database} failed: {_tail(done.stderr) or done.returncode}"
        )
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
    actual = sha256_file(dump)
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


# -- retention -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpEntry:
    path: Path
    created: datetime
    metadata: dict[str, Any] | None

    @property
    def usable(self) -> bool:
        return self.metadata is not None and self.metadata.get("verified") is not False


def policy_pattern(policy: str) -> re.Pattern[str]:
    return re.compile(re.escape(policy) + r"-(\d{8}T\d{6}Z)\.(dump|json)")


def list_dumps(destination: Path, policy: str) -> list[DumpEntry]:
    """This policy's dumps, newest first (other files in the directory are never touched)."""
    pattern = policy_pattern(policy)
    entries: list[DumpEntry] = []
    for path in destination.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(2) == "dump" and path.is_file():
            entries.append(DumpEntry(path, parse_timestamp(match.group(1)), read_metadata(path)))
    return sorted(entries, key=lambda e: e.created, reverse=True)


@dataclass
class Retention:
    kept: list[str] = field(default_factory=list)
    pruned: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _remove(path: Path, reason: str, outcome: Retention) -> None:
    """Remove one file (a dump goes with its metadata, the dump first); record it as one entry."""
    removed: list[str] = []
    for target in (path, metadata_path(path)) if path.suffix == ".dump" else (path,):
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            outcome.errors.append(f"{target.name}: {exc}")
            return
        removed.append(target.name)
    outcome.pruned.append({"file": path.name, "removed": " ".join(removed), "reason": reason})


def apply_retention(
    destination: Path, policy: str, keep_last: int, max_age: timedelta, protect: Path, now: datetime
) -> Retention:
    """Keep the newest `keep_last` usable dumps no older than `max_age`; never `protect`.

    A dump without readable metadata, or whose verification failed, is never one of the kept set
    and goes at the next successful run. Each dump goes together with its metadata (dump first, so
    no dump is ever left without metadata). Partial files and metadata without a dump are removed
    once older than STALE_LEFTOVER.
    """
    outcome = Retention()
    good = 0
    for entry in list_dumps(destination, policy):
        if entry.path == protect:
            good += 1
            outcome.kept.append(entry.path.name)
            continue
        if entry.metadata is None:
            reason = "no readable metadata"
        elif entry.metadata.get("verified") is False:
            reason = "failed verification"
        elif good >= keep_last:
            reason = f"beyond keep-last {keep_last}"
        elif now - entry.created > max_age:
            reason = f"older than max-age {_format_age(max_age)}"
        else:
            good += 1
            outcome.kept.append(entry.path.name)
            continue
        _remove(entry.path, reason, outcome)
    pattern = policy_pattern(policy)
    for path in destination.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(2) == "json" and not path.with_suffix(".dump").exists():
            if now - parse_timestamp(match.group(1)) > STALE_LEFTOVER:
                _remove(path, "metadata without a dump", outcome)
        elif path.name.startswith(f".{policy}-") and path.name.endswith(".partial"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > STALE_LEFTOVER.total_seconds():
                    _remove(path, "partial file of an interrupted run", outcome)
    return outcome


def _format_age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


# -- mt5db backup ------------------------------------------------------------------------------------


@dataclass
class BackupRequest:
    database_url: str | None
    destination: str
    keep_last: int
    max_age: str
    policy: str
    verify: bool


def _resolve_url(url: str | None) -> Conn:
    url = url or os.environ.get("MT5DB_DATABASE_URL")
    if not url:
        raise BackupError(
            "a database URL is required: pass --database-url or set MT5DB_DATABASE_URL", EXIT_USAGE
        )
    return parse_database_url(url)


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
                    f"pg_dump of {conn.redacted} failed: {_tail(done.stderr) or done.returncode}"
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
            "sha256": sha256_file(tmp),
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
        _fsync_dir(destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if done.stderr.strip():
        for line in done.stderr.strip().splitlines()[-5:]:
            say(f"backup: pg_dump said: {line}")
    return final, metadata


def _report(result: dict[str, Any], action: Callable[[dict[str, Any]], int]) -> int:
    """Run one action and always end with its JSON result line (also when terminated)."""
    name = result["action"]
    try:
        code = action(result)
    except BackupError as exc:
        print(f"{name}: FAILED {exc}", file=sys.stderr, flush=True)
        result["error"] = str(exc)
        code = exc.exit_code
    except Terminated as exc:
        print(f"{name}: FAILED {exc}", file=sys.stderr, flush=True)
        result.update(error=str(exc), exit_code=exc.code)
        emit_result(result)
        raise
    result["exit_code"] = code
    emit_result(result)
    return code


def run_backup(request: BackupRequest) -> int:
    result: dict[str, Any] = {"action": "backup", "ok": False, "policy": request.policy}
    return _report(result, lambda r: _backup(request, r))


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
    conn = _resolve_url(request.database_url)

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


def run_verify_file(database_url: str | None, dump_file: str) -> int:
    """Re-verify an existing dump (checksum + scratch restore + compare); record the outcome."""

    def verify(result: dict[str, Any]) -> int:
        dump = Path(dump_file)
        if not dump.is_file():
            raise BackupError(f"{dump} does not exist")
        metadata = read_metadata(dump)
        if metadata is None:
            raise BackupError(f"{metadata_path(dump)} is missing or unreadable; cannot verify without it")
        conn = _resolve_url(database_url)
        outcome = verify_dump(conn, dump, metadata)
        record_verification(dump, metadata, outcome)
        result.update(verified=outcome.ok, verify_problems=outcome.problems, ok=outcome.ok)
        return EXIT_OK if outcome.ok else EXIT_FAILED

    return _report({"action": "verify", "ok": False, "file": dump_file}, verify)


# -- mt5db restore -----------------------------------------------------------------------------------


@dataclass
class RestoreRequest:
    database_url: str | None
    from_file: str
    target_database: str | None
    confirm: bool


def run_restore(request: RestoreRequest) -> int:
    result: dict[str, Any] = {"action": "restore", "ok": False, "file": request.from_file}
    return _report(result, lambda r: _restore(request, r))


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
    conn = _resolve_url(request.database_url)
    source_db = str(metadata.get("database") or "mt5db")
    suffix = f"_restore_{format_timestamp(utc_now())}"
    target = request.target_database or (source_db[: _PG_IDENT_MAX - len(suffix)] + suffix)
    if len(target.encode()) > _PG_IDENT_MAX:
        raise BackupError(f"--target-database {target!r} is longer than 63 bytes", EXIT_USAGE)
    result["target_database"] = target
    maintenance = conn if conn.database != target else conn.with_database("postgres")

    created = False
    if database_exists(maintenance, target):
        objects = int(psql(conn.with_database(target), _CONTENT_SQL) or "0")
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


# -- process plumbing --------------------------------------------------------------------------------


class Terminated(SystemExit):
    """SIGTERM arrived: unwinds like SystemExit (finally blocks run), exit status 128 + signal."""

    def __str__(self) -> str:
        return f"terminated by signal (exit {self.code}); partial files removed"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """Kubernetes stops a Job with SIGTERM: turn it into SystemExit so `finally` blocks run.

    (subprocess.run kills its child on the way out, the partial dump is removed, the scratch
    database dropped.)
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
