"""Running the API under uvicorn (uvloop + httptools with request bounds), in the foreground or in a thread."""

from __future__ import annotations

import os

from mt5db_api.protocol import uvicorn_config
from mt5db_api.runner import ThreadedUvicorn, run_in_foreground
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
    run_in_foreground(config)


class ThreadedServer(ThreadedUvicorn):
    """The API in a background thread."""

    def __init__(self, settings: Settings) -> None:
        from mt5db_api.app import create_app

        super().__init__(settings, create_app(settings), "mt5db-api")
