"""`mt5db` subcommands of the operator component."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add this component's subcommands; keep imports inside handlers (cheap start-up)."""
    parser = subparsers.add_parser(
        "operator", help="run the Kopf operator for TradingStack, TrainingRun and BackupPolicy"
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n", "--namespace", action="append", dest="namespaces", metavar="NS",
        help="watch this namespace (repeat for several; globs allowed)",
    )  # fmt: skip
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube, in-cluster)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="operator /metrics port (0: off)")
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="Kopf liveness endpoint URL ('' to disable)"
    )
    parser.add_argument("--resync-seconds", type=float, default=60.0, help="drift-correction timer interval")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from mt5db_operator.context import Options
    from mt5db_operator.launch import run_operator

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(
        run_operator(
            namespaces=args.namespaces or (),
            clusterwide=args.all_namespaces,
            kubeconfig=args.kubeconfig,
            metrics_port=args.metrics_port or None,
            liveness_endpoint=args.liveness or None,
            options=Options(resync_seconds=args.resync_seconds),
        )
    )
    return 0
