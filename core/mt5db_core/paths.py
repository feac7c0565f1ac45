"""Which API paths are public: the one list the API's route test and the operator's Ingress use.

EAs and clients reach exactly these (exact paths: the EAs have them compiled in). Everything else
the API serves (/prometheus, /docs, /redoc, /openapi.json, /bench/*) stays on the cluster network.
"""

from __future__ import annotations

from typing import Final

PUBLIC_PATHS: Final = (
    "/ingest",
    "/ingest_batch",
    "/ingest/tick",
    "/candles",
    "/metrics",
    "/health",
    "/ready",
    # the executor EA (docs/ea-contract.md §11)
    "/signals/next",
    "/signals/ack",
    "/signals/latest",
    "/orders/feedback",
)
INTERNAL_PATHS: Final = (
    "/prometheus",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
    "/bench/noop",
    "/signals",  # admin: manual signals and the list, for people on the cluster network
)
