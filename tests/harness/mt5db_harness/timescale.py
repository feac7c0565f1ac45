"""A real TimescaleDB engine for tests: PGlite (PostgreSQL 17.5 in WebAssembly) with timescaledb
2.23.0-dev, on 127.0.0.1 through the wire protocol (timescale_engine.mjs).

What it can prove and what not is in docs/development.md ("TimescaleDB in CI"): one backend session
serves every client, so tests use one connection, no COPY, no timeouts, no background jobs
(`CALL run_job` and explicit refreshes instead), no TLS.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import TracebackType

from mt5db_core.net import free_port
from mt5db_harness.tools import ensure_timescale_engine

ENGINE = Path(__file__).with_name("timescale_engine.mjs")


class LocalTimescale:
    """One engine process; `dsn` is valid between start() and stop()."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc: subprocess.Popen[str] | None = None

    @property
    def dsn(self) -> str:
        # No password (the engine has no auth) and no TLS (it has none).
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def start(self, timeout: float = 60.0) -> LocalTimescale:
        env = {**os.environ, "NODE_PATH": str(ensure_timescale_engine())}
        self._proc = subprocess.Popen(
            ["node", str(ENGINE), str(self.port)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        assert self._proc.stdout is not None
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if line.startswith("ready"):
                return self
            if not line and self._proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the TimescaleDB engine did not start within {timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LocalTimescale:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
