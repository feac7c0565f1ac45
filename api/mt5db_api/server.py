"""Running the API under uvicorn (uvloop + httptools with request bounds), in the foreground or in a thread."""

from __future__ import annotations

import os
import threading
from typing import Any

from mt5db_api.protocol import uvicorn_config
from mt5db_api.settings import Settings


def env_for(settings: Settings) -> dict[str, str]:
    """MT5DB_* variables reproducing `settings` (how worker processes receive them)."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        out[f"MT5DB_{name.upper()}"] = str(text).lower() if isinstance(text, bool) else str(text)
    out["MT5DB_DATABASE_URL"] = settings.dsn()
    return out


def serve(settings: Settings, *, access_log: bool = False) -> None:
    """Serve in the foreground; with workers > 1 uvicorn forks and each worker builds its own app."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ.update(env_for(settings))
    from mt5db_api.settings import get_settings

    get_settings.cache_clear()
    config = uvicorn_config(
        settings, "mt5db_api.app:create_app", factory=True, workers=settings.workers,
        log_level=settings.log_level, access_log=access_log,
    )  # fmt: skip
    if config.workers > 1:  # what uvicorn.run does, with our Config
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE


class ThreadedServer:
    """uvicorn in a background thread on 127.0.0.1 (tests, `mt5db demo`); stop() shuts it down."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from mt5db_api.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn_config(settings, self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mt5db-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self, timeout: float = 20.0) -> ThreadedServer:
        from mt5db_core.net import wait_for_http

        self.thread.start()
        wait_for_http(self.url + "/health", timeout)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
