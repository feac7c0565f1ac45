"""The pure parts of serving: which bar is closed, and how a prediction becomes a signal."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from mt5db_serving.bars import closed_bar
from mt5db_serving.predict import Prediction
from mt5db_serving.rule import derive, side_and_confidence
from mt5db_serving.settings import ServingSettings
from mt5db_serving.store import Loaded

NOW = datetime(2025, 3, 12, 14, 20, tzinfo=UTC)
H = timedelta(hours=1)


def test_a_bar_is_closed_when_a_later_one_exists_or_it_ended_long_ago() -> None:
    forming, before = datetime(2025, 3, 12, 14, tzinfo=UTC), datetime(2025, 3, 12, 13, tzinfo=UTC)
    assert closed_bar([forming, before], "H1", NOW, 3600) == before
    assert closed_bar([forming], "H1", NOW, 3600) is None  # one bar, still forming
    friday = datetime(2025, 3, 7, 23, tzinfo=UTC)
    assert closed_bar([friday, friday - H], "H1", NOW, 3600) == friday  # nothing after it for days
    assert closed_bar([], "H1", NOW, 3600) is None


def _settings(**kw: Any) -> ServingSettings:
    return ServingSettings(database_url="postgresql://u@h/d", **kw)  # type: ignore[arg-type]


def _loaded(**kw: Any) -> Loaded:
    base = Loaded(
        version_id=7, name="rf_ret_EURUSD_H1", version=3, kind="rf", symbol="EURUSD", timeframe="H1",
        alias="champion", created_at=NOW - timedelta(days=1), predictor=None,  # type: ignore[arg-type]
        card={}, features=["atr_rel"], low=np.array([0.0]), high=np.array([1.0]), horizon=5,
        threshold=2e-4, output="return", beats_baselines=True, pip_size=1e-4, loaded_at=0.0, load_seconds=0.0,
    )  # fmt: skip
    return replace(base, **kw)


def _prediction(value: float, bar: datetime = NOW - 2 * H + timedelta(minutes=40)) -> Prediction:
    return Prediction(7, "rf_ret_EURUSD_H1:v3", "EURUSD", "H1", bar.replace(minute=0), {5: value},
                      {"atr_rel": 0.001}, [], 1.1, 0.001)  # fmt: skip


def test_the_threshold_lands_on_the_eas_confidence_bands() -> None:
    loaded = _loaded()
    assert side_and_confidence(loaded, 2.0001e-4)[0] == "BUY"
    assert side_and_confidence(loaded, 2e-4)[1] == pytest.approx(0.55)
    assert side_and_confidence(loaded, -2e-4)[1] == pytest.approx(0.45)
    assert side_and_confidence(loaded, -3e-4)[0] == "SELL" and side_and_confidence(loaded, 1e-4)[0] == "NONE"
    assert 0 < side_and_confidence(loaded, -1.0)[1] < 1e-9 and math.isclose(
        side_and_confidence(loaded, 0)[1], 0.5
    )
    informer = _loaded(output="probability", threshold=0.56, kind="informer")
    assert (
        side_and_confidence(informer, 0.6) == ("BUY", 0.6) and side_and_confidence(informer, 0.5)[0] == "NONE"
    )


def test_only_a_fresh_champion_beating_its_baselines_trades_live() -> None:
    s = _settings(sl_atr=1.5, tp_atr=3.0, signal_ttl_s=90)
    live = derive(_loaded(), _prediction(5e-4), s, NOW)
    assert (live.delivery, live.shadow_reason, live.side) == ("live", None, "BUY")
    assert (live.sl_pips, live.tp_pips, live.ttl_sec) == (16, 33, 90)  # ATR = 11 pips at 1.1
    assert live.meta["bar_ts"] == "2025-03-12T13:00:00Z" and live.meta["version"] == "rf_ret_EURUSD_H1:v3"
    shadows = {
        "challenger, not the champion": derive(_loaded(alias="challenger"), _prediction(5e-4), s, NOW),
        "its report does not beat its baselines": derive(
            _loaded(beats_baselines=False), _prediction(5e-4), s, NOW
        ),
        "days old": derive(_loaded(created_at=NOW - timedelta(days=200)), _prediction(5e-4), s, NOW),
        "too old to trade": derive(_loaded(), _prediction(5e-4, NOW - timedelta(days=3)), s, NOW),
        "side NONE": derive(_loaded(), _prediction(1e-5), s, NOW),
    }
    for reason, derived in shadows.items():
        assert derived.delivery == "shadow" and reason in (derived.shadow_reason or ""), reason
        assert derived.meta["delivery"] == "shadow"
