"""Predictions: the newest closed bar of a series, its features from the stored history with
training's one feature function, the loaded version's outputs, the out-of-distribution flag.

A prediction cannot change until a bar does, so it is cached per (version, series, bar): a request
costs one indexed read of the newest two bar times, and only a new bar (or a new version) costs
features and the model. Concurrent requests for the same missing entry share one computation.
Features and the model run in a worker thread, so the event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mt5db_core.market.tables import MARKET_DATA, select_series
from mt5db_serving.bars import closed_bar, frame_from_rows
from mt5db_serving.settings import ServingSettings
from mt5db_serving.store import Loaded
from mt5db_training.features import WARMUP_BARS, compute_features

_NEWEST = f"SELECT ts FROM {MARKET_DATA} WHERE symbol = $1 AND timeframe = $2 ORDER BY ts DESC LIMIT 2"  # noqa: S608 - constant


class PredictError(Exception):
    """A prediction that cannot be made, with the status and body the route answers."""

    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.detail = detail
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "reason": self.reason}


@dataclass(frozen=True)
class Prediction:
    """One version's prediction at the close of one bar."""

    version_id: int
    label: str
    symbol: str
    timeframe: str
    bar_ts: datetime  # the decision bar (broker clock labelled as UTC, as stored)
    outputs: dict[int, float]  # per horizon: forecast of r_h (RF) or P(up net of cost) (Informer)
    features: dict[str, float]
    ood_features: list[str]
    close: float
    atr_rel: float  # ATR14 / close at the bar: the stops' volatility


def predict_frame(loaded: Loaded, candles: pd.DataFrame, symbol: str, timeframe: str) -> Prediction:
    """Features of `candles` (ending at the decision bar) → the version's outputs (CPU, pure)."""
    feats = compute_features(candles)
    if len(feats) == 0:
        raise PredictError(422, "insufficient_history", "no candles")
    if list(feats.columns) != loaded.features:
        raise PredictError(422, "feature_mismatch", "the features computed here are not the version's")
    need = loaded.predictor.min_rows
    tail = feats.iloc[-need:]
    if len(tail) < need or not np.isfinite(tail.to_numpy(np.float64)).all():
        raise PredictError(
            422,
            "insufficient_history",
            f"the decision bar needs {WARMUP_BARS} bars of warm-up before it in one contiguous segment "
            f"(no gap over 96 h){f' and {need} feature rows' if need > 1 else ''}; got {len(candles)} bars",
        )
    position = np.array([len(feats) - 1], dtype=np.int64)
    outputs = {h: float(v[0]) for h, v in loaded.predictor.predict_at(feats, position).items()}
    row = feats.iloc[-1]
    values = row.to_numpy(np.float64)
    return Prediction(
        version_id=loaded.version_id,
        label=loaded.label,
        symbol=symbol,
        timeframe=timeframe,
        bar_ts=pd.Timestamp(feats.index[-1]).to_pydatetime().replace(tzinfo=UTC),
        outputs=outputs,
        features={str(k): float(v) for k, v in row.items()},
        ood_features=loaded.out_of_range(values),
        close=float(candles["close"].iloc[-1]),
        atr_rel=float(row.get("atr_rel", np.nan)),
    )


class Predictions:
    """The cache and the two ways in: stored history (GET) and candles in a body (POST)."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self._cache: OrderedDict[tuple[int, str, str, datetime], Prediction] = OrderedDict()
        self._inflight: dict[tuple[int, str, str, datetime], asyncio.Future[Prediction]] = {}

    async def decision_bar(self, conn: Any, symbol: str, timeframe: str) -> datetime:
        rows = await conn.fetch(_NEWEST, symbol, timeframe, timeout=self.settings.db_command_timeout_s)
        if not rows:
            raise PredictError(404, "no_data", f"no stored candles for {symbol} {timeframe}")
        bar = closed_bar([r[0] for r in rows], timeframe, datetime.now(UTC), self.settings.closed_after_s)
        if bar is None:
            raise PredictError(
                422, "no_closed_bar", f"{symbol} {timeframe} has one bar and it is still forming"
            )
        return bar

    async def stored(self, pool: Any, loaded: Loaded, symbol: str, timeframe: str) -> tuple[Prediction, bool]:
        """The prediction at the newest closed stored bar; (prediction, it came from the cache)."""
        async with pool.acquire(timeout=self.settings.db_acquire_timeout_s) as conn:
            bar = await self.decision_bar(conn, symbol, timeframe)
            key = (loaded.version_id, symbol, timeframe, bar)
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit, True
            waiting = self._inflight.get(key)
            if waiting is not None:
                return await asyncio.shield(waiting), True
            future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
            try:
                rows = await conn.fetch(
                    select_series(newest_first=True), symbol, timeframe, None, bar + timedelta(seconds=1),
                    self.settings.history_bars, timeout=self.settings.db_command_timeout_s,
                )  # fmt: skip
                candles = frame_from_rows(rows)
                prediction = await asyncio.to_thread(predict_frame, loaded, candles, symbol, timeframe)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody waited
                raise
            finally:
                self._inflight.pop(key, None)
            future.set_result(prediction)
        self._cache[key] = prediction
        while len(self._cache) > self.settings.cache_entries:
            self._cache.popitem(last=False)
        return prediction, False

    async def from_body(
        self, loaded: Loaded, candles: pd.DataFrame, symbol: str, timeframe: str
    ) -> Prediction:
        """The prediction at the last candle of a body (the client says its candles are closed)."""
        return await asyncio.to_thread(predict_frame, loaded, candles, symbol, timeframe)


def model_age_s(loaded: Loaded) -> float:
    return time.time() - loaded.created_at.timestamp()
