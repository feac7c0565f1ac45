"""PostgreSQL through its client binaries (psql, pg_dump, pg_restore): connections, quoting,
the snapshot session a dump shares, and what a database holds (tables, row counts, versions)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from mt5db_backup.outcome import EXIT_USAGE, BackupError
from mt5db_core.market import tables

# Row counts recorded in the metadata and compared after a restore, when the table exists.
COUNTED_TABLES = tables.COUNTED
PG_IDENT_MAX = 63

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
CONTENT_SQL = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
"""


def quote_ident(name: str) -> str:
    if "\x00" in name:
        raise BackupError("a database name cannot contain NUL", EXIT_USAGE)
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    if "\x00" in value:
        raise BackupError("a value cannot contain NUL", EXIT_USAGE)
    return "'" + value.replace("'", "''") + "'"


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


def tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def psql(conn: Conn, sql: str) -> str:
    """One statement through psql; unaligned, tuples only. Raises BackupError with psql's message."""
    done = subprocess.run(
        [client_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conn.url, "-c", sql],
        env=conn.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"psql on {conn.redacted} failed: {tail(done.stderr) or done.returncode}")
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
        return tail(err or "") or f"exit {self._proc.returncode}"

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


def database_exists(maintenance: Conn, name: str) -> bool:
    return psql(maintenance, f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(name)}") == "1"  # noqa: S608 - quoted


def create_database(maintenance: Conn, name: str) -> None:
    psql(maintenance, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")


def drop_database(maintenance: Conn, name: str) -> None:
    psql(maintenance, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def resolve_url(url: str | None) -> Conn:
    url = url or os.environ.get("MT5DB_DATABASE_URL")
    if not url:
        raise BackupError(
            "a database URL is required: pass --database-url or set MT5DB_DATABASE_URL", EXIT_USAGE
        )
    return parse_database_url(url)
