"""The per-object coalescing lock that every handler's pass goes through."""

from __future__ import annotations

from mt5db_operator.context import Context, Options
from mt5db_operator.instruments import OperatorMetrics


def test_coalescing_runs_again_when_dirty_and_never_concurrently() -> None:
    ctx = Context(kube=None, capabilities=None, metrics=OperatorMetrics(), options=Options())  # type: ignore[arg-type]
    calls: list[int] = []

    def work() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            # A second trigger while the first pass runs: not run concurrently, but once more after.
            assert ctx.coalesced("k", lambda: calls.append(-1)) is False

    assert ctx.coalesced("k", work) is True
    assert calls == [0, 1]
