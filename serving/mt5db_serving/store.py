"""The loaded versions, and the hot reload that swaps them (docs/ml-protocol.md §11.4).

Every alias of the registry (champion and challenger per symbol, timeframe and model kind) is
loaded: champions answer `/predict`, and every loaded version derives signals (live or shadow).
A reload reads the aliases; a version not loaded yet is fetched from `model_artifacts`, and before
it may serve, `predictor.check_loadable` verifies the sha256 of the bytes, the feature-set hash
against this code's feature function and a smoke prediction. The new set of versions replaces the
old one in one assignment, so a request sees either the old or the new set, never a mix and never
nothing. A version that fails a check is refused (logged, counted, listed by `/models`) and the
version that served before keeps serving.

Reloads are triggered by the registry's NOTIFY on `mt5db_model_alias` (a dedicated LISTEN
connection) and by polling every `reload_poll_s` as the fallback; a poll compares a cheap
fingerprint of the aliases first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_serving.metrics import ServingMetrics
from mt5db_serving.settings import ServingSettings
from mt5db_training import registry
from mt5db_training.artifacts import ArtifactHashMismatch
from mt5db_training.predictor import NotLoadable, Predictor, check_loadable

log = logging.getLogger(__name__)

CHANNEL = "mt5db_model_alias"
KINDS = ("rf", "informer")  # the order /predict prefers when no kind is asked for

Key = tuple[str, str, str, str]  # (symbol, timeframe, kind, alias)


@dataclass(frozen=True)
class Loaded:
    """One version, verified and ready, under one alias."""

    version_id: int
    name: str
    version: int
    kind: str
    symbol: str
    timeframe: str
    alias: str
    created_at: datetime
    predictor: Predictor
    card: dict[str, Any]
    features: list[str]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    horizon: int
    threshold: float
    output: str
    beats_baselines: bool
    pip_size: float
    loaded_at: float
    load_seconds: float

    @property
    def label(self) -> str:
        return f"{self.name}:v{self.version}"

    def out_of_range(self, row: npt.NDArray[np.float64]) -> list[str]:
        """Features outside the training window's [min, max]: the out-of-distribution flag."""
        outside = (row < self.low) | (row > self.high)
        return [name for name, bad in zip(self.features, outside, strict=True) if bad]


def load_version(row: Any, data: bytes) -> Loaded:
    """Verify and load one registry row with its artifact bytes (CPU: run it in a thread)."""
    started = time.perf_counter()
    card = json.loads(row["model_card"])
    predictor = check_loadable(data, row["artifact_sha256"], card, row["feature_set_hash"])
    names = list(card["features"])
    ranges = card["feature_ranges"]
    signal = card["signal"]
    return Loaded(
        version_id=int(row["id"]),
        name=row["name"],
        version=int(row["version"]),
        kind=row["model_kind"],
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        alias=row["alias"],
        created_at=row["created_at"],
        predictor=predictor,
        card=card,
        features=names,
        low=np.array([ranges[n][0] for n in names], dtype=np.float64),
        high=np.array([ranges[n][1] for n in names], dtype=np.float64),
        horizon=int(signal["horizon"]),
        threshold=float(signal["threshold"]),
        output=str(signal.get("output", predictor.output)),
        beats_baselines=bool(row["beats_baselines"]),
        pip_size=float(signal.get("pip_size") or 1e-4),
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
    )


@dataclass
class Refusal:
    version_id: int
    label: str
    alias: str
    reason: str
    at: float = field(default_factory=time.time)


class ModelStore:
    """The versions this process serves; `self._models` is replaced whole on every change."""

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._models: dict[Key, Loaded] = {}
        self.refused: dict[int, Refusal] = {}
        self.ready = False  # the first reload finished
        self._fingerprint: list[Any] | None = None
        self._lock = asyncio.Lock()
        self.reload_count = 0
        self.last_swap_s: float | None = None  # alias change seen → new set assigned

    # -- reading -------------------------------------------------------------------------------

    def all(self) -> list[Loaded]:
        return list(self._models.values())

    def get(
        self, symbol: str, timeframe: str, alias: str = "champion", kind: str | None = None
    ) -> Loaded | None:
        models = self._models  # one read: the set a request sees
        for k in (kind,) if kind else KINDS:
            found = models.get((symbol, timeframe, k, alias))
            if found is not None:
                return found
        return None

    # -- reloading -----------------------------------------------------------------------------

    async def reload(self, pool: Any, *, force: bool = False) -> bool:
        """Bring the loaded set in line with the aliases; True when it changed."""
        async with self._lock:
            seen = time.perf_counter()
            async with pool.acquire() as conn:
                fingerprint = await registry.alias_fingerprint(conn)
                if not force and fingerprint == self._fingerprint:
                    return False
                targets = await registry.alias_targets(conn)
                current = self._models
                wanted: dict[Key, Any] = {
                    (r["symbol"], r["timeframe"], r["model_kind"], r["alias"]): r for r in targets
                }
                new: dict[Key, Loaded] = {}
                for key, row in wanted.items():
                    have = current.get(key)
                    if have is not None and have.version_id == row["id"]:
                        new[key] = have
                        continue
                    reuse = next((m for m in current.values() if m.version_id == row["id"]), None)
                    if reuse is not None:  # the same version under another alias now
                        new[key] = replace(reuse, alias=key[3])
                        continue
                    if row["id"] in self.refused:
                        if have is not None:
                            new[key] = have  # the version before keeps serving
                        continue
                    loaded = await self._load(conn, row)
                    if loaded is not None:
                        new[key] = loaded
                    elif have is not None:
                        new[key] = have
            changed = new.keys() != current.keys() or any(new[k] is not current[k] for k in new)
            self._models = new  # the swap: one assignment
            self._fingerprint = fingerprint
            self.ready = True
            self.reload_count += 1
            if changed:
                self.last_swap_s = time.perf_counter() - seen
                log.info("models: %s", ", ".join(f"{m.label}@{m.alias}" for m in new.values()) or "none")
            return changed

    async def _load(self, conn: Any, row: Any) -> Loaded | None:
        label = registry.label(row)
        data = await registry.fetch_artifact(conn, row["artifact_sha256"])
        try:
            if data is None:
                raise NotLoadable("its artifact is not in model_artifacts")
            loaded = await asyncio.to_thread(load_version, row, data)
        except (NotLoadable, ArtifactHashMismatch, KeyError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.refused[int(row["id"])] = Refusal(int(row["id"]), label, row["alias"], reason)
            log.error("refused %s (%s): %s; the version before it keeps serving", label, row["alias"], reason)
            if self.metrics:
                self.metrics.reloads.labels("refused").inc()
            return None
        if self.metrics:
            self.metrics.reloads.labels("loaded").inc()
            self.metrics.load_seconds.observe(loaded.load_seconds)
        log.info("loaded %s as %s in %.2fs", label, row["alias"], loaded.load_seconds)
        return loaded

    async def watch(self, pool: Any, dsn: str) -> None:
        """LISTEN for alias changes (reconnecting), reloading on each and every `reload_poll_s`."""
        wake = asyncio.Event()
        listener: Any = None
        try:
            while True:
                if listener is None or listener.is_closed():
                    listener = await self._listen(dsn, wake)
                with contextlib.suppress(TimeoutError):  # a poll: the fallback when notifications are lost
                    await asyncio.wait_for(wake.wait(), timeout=self.settings.reload_poll_s)
                wake.clear()
                try:
                    await self.reload(pool)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may be away: keep serving what is loaded
                    log.warning(
                        "model reload failed (%s); still serving the loaded versions", type(exc).__name__
                    )
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()

    async def _listen(self, dsn: str, wake: asyncio.Event) -> Any:
        import asyncpg

        try:
            conn = await asyncpg.connect(dsn, timeout=self.settings.db_connect_timeout_s * 4,
                                         server_settings={"application_name": "mt5db-serving-listen"})  # fmt: skip
            await conn.add_listener(CHANNEL, lambda *_: wake.set())
            return conn
        except Exception as exc:  # polling carries on without notifications
            log.warning("LISTEN %s unavailable (%s); polling every %.0fs", CHANNEL, type(exc).__name__,
                        self.settings.reload_poll_s)  # fmt: skip
            return None
