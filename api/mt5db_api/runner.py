"""Running an app under uvicorn with the bounded protocol (`protocol.uvicorn_config`): in the
foreground (a pod) or in a background thread (tests, `mt5db demo`, the benchmarks). Shared by
the API and serving."""

from __future__ import annotations

import threading
from typing import Any, Self

from mt5db_api.protocol import uvicorn_config
from mt5db_api.settings import Settings


def run_in_foreground(config: Any) -> None:
    """Run a uvicorn server until it stops; exit 3 (uvicorn's STARTUP_FAILURE) if it never started
    (a port in use, a failed lifespan), so a pod restarts instead of reporting success."""
    import uvicorn

    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)


class ThreadedUvicorn:
    """An app under uvicorn in a background thread on the settings' host and port (tests,
    `mt5db demo`, the benchmarks); start() waits for /health, stop() shuts it down."""

    start_timeout = 20.0

    def __init__(self, settings: Settings, app: Any, name: str) -> None:
        import uvicorn

        self.settings = settings
        self.app = app
        config = uvicorn_config(settings, app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self, timeout: float | None = None) -> Self:
        from mt5db_core.net import wait_for_http

        self.thread.start()
        wait_for_http(self.url + "/health", self.start_timeout if timeout is None else timeout)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
