"""Running the serving app under uvicorn: in the foreground (`mt5db serve`, the pod) or in a
thread on 127.0.0.1 (tests, `mt5db demo`, the benchmarks)."""

from __future__ import annotations

import threading
from typing import Any

from mt5db_api.protocol import uvicorn_config
from mt5db_serving.settings import ServingSettings


def serve(settings: ServingSettings, *, access_log: bool = False) -> None:
    """Serve in the foreground (one process: the model store and the signal loop live in it), with
    the API's request bounds: EAs poll /signals/next through the same Ingress."""
    import uvicorn

    from mt5db_serving.app import create_app

    config = uvicorn_config(
        settings, create_app(settings), log_level=settings.log_level, access_log=access_log
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE


class ThreadedServing:
    """uvicorn in a background thread on 127.0.0.1; stop() shuts it down."""

    def __init__(self, settings: ServingSettings) -> None:
        import uvicorn

        from mt5db_serving.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn_config(settings, self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mt5db-serving", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def store(self) -> Any:
        return self.app.state.store

    def start(self, timeout: float = 60.0) -> ThreadedServing:
        from mt5db_core.net import wait_for_http

        self.thread.start()
        wait_for_http(self.url + "/health", timeout)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ThreadedServing:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
