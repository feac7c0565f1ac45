"""`mt5db serve`: the serving workload (predictions and the signal loop).

    mt5db serve --database-url URL [--host 127.0.0.1] [--port 18002] [--no-signals]

Every setting is also an `MT5DB_*` environment variable (the pod sets them): the API's (database
URL, pool, timeouts, auth cache, rate limit) and serving's own (mt5db_serving/settings.py). Cheap
to import: scikit-learn, TA-Lib and FastAPI load inside the handler.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="serve /predict for the registry's champions and run the signal loop"
    )
    p.add_argument("--database-url", default=None, help="postgresql://... (default: $MT5DB_DATABASE_URL)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 18002)")
    p.add_argument("--no-signals", action="store_true", help="predictions only: no signal loop")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mt5db_serving.server import serve
    from mt5db_serving.settings import load_serving_settings

    try:
        settings = load_serving_settings(
            database_url=args.database_url, host=args.host, port=args.port,
            signal_loop=False if args.no_signals else None,
        )  # fmt: skip
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {fields}", file=sys.stderr)
        return 2
    serve(settings, access_log=args.access_log)
    return 0
