"""What handlers share, carried in `kopf.Memo`: clients, discovery, metrics, options, and
per-object coalescing state. No module globals: one Context per running operator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mt5db_operator.instruments import OperatorMetrics
from mt5db_operator.kubeapi import Capabilities, Kube


@dataclass(frozen=True)
class Options:
    """Tunables; tests shorten the intervals, production keeps the defaults."""

    resync_seconds: float = 60.0  # drift-correction timer (>= 60 s in production)
    discovery_ttl_seconds: float = 15.0
    run_poll_seconds: float = 15.0  # active TrainingRuns re-read their RayJob/Job this often
    settle_seconds: float = 0.0


@dataclass
class _ObjectState:
    # Per-object lock so two threads never reconcile the same object at once; `dirty` makes a
    # burst of child events collapse into one extra pass instead of one pass per event.
    lock: threading.Lock = field(default_factory=threading.Lock)
    dirty: bool = False


@dataclass
class Context:
    kube: Kube
    capabilities: Capabilities
    metrics: OperatorMetrics
    options: Options = field(default_factory=Options)
    _states: dict[str, _ObjectState] = field(default_factory=dict)
    _states_lock: threading.Lock = field(default_factory=threading.Lock)
    # Results of finished runs read from their logs, by namespace/job/uid (never change).
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def remember_result(self, key: str, result: dict[str, Any], limit: int = 1000) -> None:
        with self._states_lock:
            if len(self.results) >= limit:
                self.results.pop(next(iter(self.results)))
            self.results[key] = result

    def coalesced(self, key: str, work: Callable[[], Any]) -> bool:
        """Run `work` now, or leave it to the thread already reconciling `key`.

        Returns False when another thread holds the object (it will run once more for us).
        """
        with self._states_lock:
            state = self._states.setdefault(key, _ObjectState())
            state.dirty = True
        ran = False
        while True:
            if not state.lock.acquire(blocking=False):
                return ran
            try:
                while True:
                    with self._states_lock:
                        if not state.dirty:
                            break
                        state.dirty = False
                    work()
                    ran = True
            finally:
                state.lock.release()
            with self._states_lock:
                if not state.dirty:
                    return ran

    def forget(self, key: str) -> None:
        with self._states_lock:
            self._states.pop(key, None)
