"""A real TimescaleDB engine for tests: PGlite (PostgreSQL 17.5 in WebAssembly) with timescaledb
2.23.0-dev, on 127.0.0.1 through the wire protocol (timescale_engine.mjs).

What it can prove and what not is in docs/development.md ("TimescaleDB in CI"): one backend session
serves every client, so tests use one connection, no COPY, no timeouts, no background jobs
(`CALL run_job` and explicit refreshes instead), no TLS.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from mt5db_core.net import free_port
from mt5db_harness.tools import ensure_timescale_engine

ENGINE = Path(__file__).with_name("timescale_engine.mjs")


class LocalTimescale:
    """One engine process; `dsn` is valid between start() and stop()."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def dsn(self) -> str:
        # No password (the engine has no auth) and no TLS (it has none).
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def start(self, timeout: float = 60.0) -> LocalTimescale:
        env = {**os.environ, "NODE_PATH": str(ensure_timescale_engine())}
        # Output to a file, not a pipe nobody drains after start-up (a full pipe would block it).
        self._log = tempfile.NamedTemporaryFile(prefix="mt5db-timescale-", suffix=".log", delete=False)  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            ["node", str(ENGINE), str(self.port)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        log = Path(self._log.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith("ready ") for line in log.read_text(errors="replace").splitlines()):
                return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"the TimescaleDB engine did not start within {timeout:.0f}s: {tail}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalTimescale:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
