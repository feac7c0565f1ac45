"""The embedded default database: a PostgreSQL cluster on 127.0.0.1 for `mt5db demo`, tests and benchmarks.

initdb refuses to run as root, so when we are root the cluster belongs to the `postgres`
system user (created by the Debian package) and every server command runs through runuser.
The superuser password is generated per cluster; nothing is hard-coded.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from mt5db_core.net import free_port, wait_for_port


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries are not on this machine; the message names the package."""


def postgres_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres, preferring the newest Debian major."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresNotInstalled("PostgreSQL server binaries not found (Debian package postgresql-15)")


class LocalPostgres:
    """initdb + pg_ctl around one data directory; `dsn` is valid between start() and stop()."""

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        durable: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bindir = postgres_bindir()
        self._own_base = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="mt5db-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = port or free_port()
        self.user = "postgres"
        self.password = secrets.token_urlsafe(18)
        self.durable = durable
        self.settings = settings or {}
        self._run_as = self._server_user()

    # -- lifecycle ---------------------------------------------------------------------------

    def init(self) -> None:
        """initdb with SCRAM auth and a generated superuser password."""
        self.base.mkdir(parents=True, exist_ok=True)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(self.base)
        self._chown(pwfile)
        self._server_cmd(
            "initdb",
            "-D", str(self.data),
            "-U", self.user,
            "--pwfile", str(pwfile),
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        )  # fmt: skip
        pwfile.unlink()

    def start(self, timeout: float = 30.0) -> None:
        """Start (initdb first if needed) and wait until it accepts TCP connections."""
        if not (self.data / "PG_VERSION").exists():
            self.init()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.base),
            **({} if self.durable else {"fsync": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        opt = " ".join(f"-c {k}={v}" for k, v in options.items())
        self._server_cmd(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opt, "-w", "-t", str(int(timeout)),
            "start",
        )  # fmt: skip
        wait_for_port("127.0.0.1", self.port, timeout)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs; keep the data directory (restart with start())."""
        if (self.data / "postmaster.pid").exists():
            self._server_cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        """Stop and remove everything this instance created."""
        self.stop("immediate")
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    # -- connection details -----------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its DSN."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over TCP; returns unaligned output."""
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    def server_version(self) -> str:
        return self.psql("SHOW server_version")

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _server_user() -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("running as root but no 'postgres' user exists to own the cluster") from exc
        return ["runuser", "-u", "postgres", "--"]

    def _chown(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _server_cmd(self, tool: str, *args: str, check: bool = True) -> None:
        started = time.monotonic()
        done = subprocess.run(
            [*self._run_as, str(self.bindir / tool), *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            log_tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed after {time.monotonic() - started:.1f}s: {done.stderr.strip()}\n{log_tail}"
            )
