"""Running the serving app under uvicorn: in the foreground (`mt5db serve`, the pod) or in a
thread on 127.0.0.1 (tests, `mt5db demo`, the benchmarks)."""

from __future__ import annotations

from typing import Any

from mt5db_api.protocol import uvicorn_config
from mt5db_api.runner import ThreadedUvicorn, run_in_foreground
from mt5db_serving.settings import ServingSettings


def serve(settings: ServingSettings, *, access_log: bool = False) -> None:
    """Serve in the foreground (one process: the model store and the signal loop live in it), with
    the API's request bounds: EAs poll /signals/next through the same Ingress."""
    from mt5db_serving.app import create_app

    config = uvicorn_config(
        settings, create_app(settings), log_level=settings.log_level, access_log=access_log
    )
    run_in_foreground(config)


class ThreadedServing(ThreadedUvicorn):
    """Serving in a background thread (its first model load can take a while: a longer start)."""

    start_timeout = 60.0

    def __init__(self, settings: ServingSettings) -> None:
        from mt5db_serving.app import create_app

        super().__init__(settings, create_app(settings), "mt5db-serving")

    @property
    def store(self) -> Any:
        return self.app.state.store
