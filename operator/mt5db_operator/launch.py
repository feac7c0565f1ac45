"""Start the operator: Kopf embedded (standalone), its metrics endpoint and liveness endpoint.

`run_operator` is what `mt5db operator` runs; `EmbeddedOperator` runs the same in a background
thread (tests, the benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from mt5db_operator.context import Context, Options
from mt5db_operator.handlers import build_registry
from mt5db_operator.instruments import OperatorMetrics
from mt5db_operator.kubeapi import Capabilities, Kube

log = logging.getLogger(__name__)


def api_client(kubeconfig: str | None) -> Any:
    """An ApiClient from an explicit kubeconfig, $KUBECONFIG, ~/.kube/config, or the pod's SA."""
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return client.ApiClient(cfg)
    return config.new_client_from_config()  # type: ignore[no-untyped-call]


def make_memo(kubeconfig: str | None, options: Options) -> kopf.Memo:
    kube = Kube(api_client(kubeconfig))
    ctx = Context(
        kube=kube,
        capabilities=Capabilities(kube, ttl=options.discovery_ttl_seconds),
        metrics=OperatorMetrics(),
        options=options,
    )
    return kopf.Memo(ctx=ctx)


async def run_operator(
    *,
    namespaces: Sequence[str] = (),
    clusterwide: bool = False,
    kubeconfig: str | None = None,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",  # noqa: S104 - scraped from outside the pod
    liveness_endpoint: str | None = None,
    options: Options | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
    memo: kopf.Memo | None = None,
) -> None:
    """Kopf in this event loop until `stop_flag` is set (or SIGTERM in the main thread)."""
    options = options or Options()
    if not clusterwide and not namespaces:
        raise ValueError("give --namespace at least once, or --all-namespaces")
    memo = memo or make_memo(kubeconfig, options)
    server = None
    if metrics_port is not None:
        server, _thread = start_http_server(
            metrics_port, addr=metrics_addr, registry=memo.ctx.metrics.registry
        )
        log.info("operator metrics on %s:%d", metrics_addr, metrics_port)
    try:
        await kopf.operator(
            registry=build_registry(options, kubeconfig),
            memo=memo,
            standalone=True,
            clusterwide=clusterwide,
            namespaces=list(namespaces),
            liveness_endpoint=liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        if server is not None:
            server.shutdown()


class EmbeddedOperator:
    """The operator in a background thread with its own loop (tests, benchmark)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.memo: kopf.Memo | None = None
        self.thread = threading.Thread(target=self._main, name="mt5db-operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(
                run_operator(stop_flag=self.stop, ready_flag=self.ready, memo=self.memo, **self.kwargs)
            )
        except BaseException as exc:  # report to the starter thread; never die silently
            self.error = exc
            self.ready.set()

    def start(self, timeout: float = 30.0) -> EmbeddedOperator:
        self.memo = make_memo(self.kwargs.get("kubeconfig"), self.kwargs.get("options") or Options())
        self.thread.start()
        if not self.ready.wait(timeout) or self.error:
            raise RuntimeError(f"operator did not start: {self.error!r}")
        return self

    def close(self, timeout: float = 20.0) -> None:
        self.stop.set()
        self.thread.join(timeout)

    def __enter__(self) -> EmbeddedOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
