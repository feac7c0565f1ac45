"""Every route the API serves is classified public or internal (mt5db_core.paths): a new route
cannot reach the Ingress by accident, and the docs and metrics never do."""

from __future__ import annotations

from mt5db_api.app import create_app
from mt5db_api.settings import Settings
from mt5db_core.paths import INTERNAL_PATHS, PUBLIC_PATHS


def test_every_route_is_public_or_internal() -> None:
    app = create_app(Settings(database_url="postgresql://u:p@127.0.0.1:1/db"))
    documented = set(app.openapi()["paths"])
    framework = {r.path for r in app.routes if hasattr(r, "path")}  # /docs, /redoc, /openapi.json
    assert not set(PUBLIC_PATHS) & set(INTERNAL_PATHS)
    assert documented | framework <= set(PUBLIC_PATHS) | set(INTERNAL_PATHS)
    assert set(PUBLIC_PATHS) <= documented
    assert {"/prometheus", "/docs", "/redoc", "/openapi.json"} <= set(INTERNAL_PATHS) & (
        documented | framework
    )
