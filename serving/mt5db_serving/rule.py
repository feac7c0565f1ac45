"""From a prediction to a signal for the executor EA (docs/ea-contract.md §11), pure.

* side: a RandomForest forecast r̂ of the signal horizon's return trades when |r̂| is above the
  version's validated threshold q (BUY above +q, SELL below −q, else NONE); an Informer probability
  p trades long when p is above its validated threshold (else NONE).
* confidence in 0..1, as the EA reads it (its author's thresholds: BUY ≥ 0.55, SELL ≤ 0.45): for
  a forecast, a logistic of r̂/q scaled so that r̂ = ±q lands exactly on 0.55 / 0.45; for a
  probability, p itself.
* sl_pips / tp_pips from volatility: `sl_atr` and `tp_atr` times ATR14 of the decision bar.
* delivery: live only when every condition holds — the version is the champion, its report beats
  its baselines after costs, it is not older than `max_model_age_s`, the bar closed within
  `signal_max_bar_age_s` (a replayed history must not trade a bar from last year), and the side is
  not NONE. Otherwise shadow (stored, visible, never delivered), with every failed condition as the
  reason; challengers are always shadow. Features outside the training window's range are flagged
  in `meta.ood` (and by `/predict`), not blocked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mt5db_core.market.timeframes import TIMEFRAMES
from mt5db_serving.predict import Prediction
from mt5db_serving.settings import ServingSettings
from mt5db_serving.store import Loaded

# logistic(K) = 0.55: a forecast exactly at the threshold has the EA's BUY confidence.
K = math.log(0.55 / 0.45)


@dataclass(frozen=True)
class Derived:
    side: str
    confidence: float
    ttl_sec: int
    sl_pips: int
    tp_pips: int
    delivery: str  # live | shadow
    shadow_reason: str | None
    meta: dict[str, Any]


def side_and_confidence(loaded: Loaded, value: float) -> tuple[str, float]:
    q = loaded.threshold
    if loaded.output == "probability":
        return ("BUY" if value > q else "NONE"), min(max(value, 0.0), 1.0)
    scale = K / q if q > 0 else 1e4
    confidence = 1.0 / (1.0 + math.exp(-max(min(value * scale, 50.0), -50.0)))
    if value > q:
        return "BUY", confidence
    if value < -q:
        return "SELL", confidence
    return "NONE", confidence


def stops(loaded: Loaded, prediction: Prediction, settings: ServingSettings) -> tuple[int, int]:
    atr_pips = prediction.atr_rel * prediction.close / loaded.pip_size
    if not math.isfinite(atr_pips) or atr_pips <= 0:
        return 0, 0
    return max(1, round(settings.sl_atr * atr_pips)), max(1, round(settings.tp_atr * atr_pips))


def derive(loaded: Loaded, prediction: Prediction, settings: ServingSettings, now: datetime) -> Derived:
    """The signal of one prediction, live or shadow with the reasons."""
    value = prediction.outputs[loaded.horizon]
    side, confidence = side_and_confidence(loaded, value)
    sl, tp = stops(loaded, prediction, settings)
    width = TIMEFRAMES[prediction.timeframe].seconds
    bar_age = (now - prediction.bar_ts).total_seconds() - width
    model_age = (now - loaded.created_at).total_seconds()
    reasons = []
    if loaded.alias != "champion":
        reasons.append(f"{loaded.alias}, not the champion")
    if not loaded.beats_baselines:
        reasons.append("its report does not beat its baselines after costs")
    if model_age > settings.max_model_age_s:
        reasons.append(
            f"the model is {model_age / 86400:.0f} days old (max {settings.max_model_age_s / 86400:.0f})"
        )
    if bar_age > settings.signal_max_bar_age_s:
        ago = f"{bar_age / 86400:.0f} days" if bar_age > 2 * 86400 else f"{bar_age / 3600:.1f} h"
        reasons.append(f"the bar closed {ago} ago (too old to trade)")
    if side == "NONE":
        reasons.append("side NONE: nothing to trade")
    delivery = "shadow" if reasons else "live"
    meta = {
        "model": loaded.name,
        "ver": str(loaded.version),
        "version": loaded.label,
        "version_id": loaded.version_id,
        "kind": loaded.kind,
        "alias": loaded.alias,
        "bar_ts": prediction.bar_ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "horizon": loaded.horizon,
        "prediction": value,
        "output": loaded.output,
        "threshold": loaded.threshold,
        "ood": bool(prediction.ood_features),
        "ood_features": prediction.ood_features,
        "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "model",
        "delivery": delivery,
    }
    return Derived(side, round(confidence, 6), settings.signal_ttl_s, sl, tp, delivery,
                   "; ".join(reasons) or None, meta)  # fmt: skip
