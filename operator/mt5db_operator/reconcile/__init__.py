"""The reconcile layer: one module per kind, over one apply primitive.

* `children.py`: `Children.ensure(desired, enabled)` and `collect()` (garbage collection by
  label selector), shared by the three kinds;
* `owner.py`: reading the live object and writing its one status patch;
* `tradingstack.py`, `trainingrun.py`, `backuppolicy.py`: one level-based pass per kind.

`run` is what every handler calls: create/update/resume, the drift timer and the child
watchers alike, so there is one path to a child whatever triggered the pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mt5db_operator import constants as c
from mt5db_operator.context import Context
from mt5db_operator.reconcile import backuppolicy, tradingstack, trainingrun

PASSES: dict[str, Callable[[Context, str, str], None]] = {
    c.KIND_STACK: tradingstack.reconcile,
    c.KIND_RUN: trainingrun.reconcile,
    c.KIND_POLICY: backuppolicy.reconcile,
}


def run(ctx: Context, kind: str, namespace: str, name: str, trigger: str) -> None:
    """Coalesced, instrumented pass for one object (safe from any handler thread)."""
    reconcile = PASSES[kind]

    def one_pass() -> None:
        started = time.perf_counter()
        ctx.metrics.reconciles.labels(kind, trigger).inc()
        try:
            reconcile(ctx, namespace, name)
        except Exception:
            ctx.metrics.errors.labels(kind).inc()
            raise
        finally:
            ctx.metrics.duration.labels(kind).observe(time.perf_counter() - started)

    ctx.coalesced(f"{kind}/{namespace}/{name}", one_pass)
