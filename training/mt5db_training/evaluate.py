"""Scoring a registered version on data it never saw (`mt5db models evaluate`).

The version's own artifact (loaded through predictor.check_loadable, exactly as serving loads it),
the same feature function, the same labels and costs, and the same tables as its report: R²_OOS
against the zero forecast beside the zero / training-mean / persistence forecasts, AUC of its
score beside persistence, the spread-aware backtest of its signal rule (its recorded threshold)
beside always-long, always-short, persistence and mean reversion, block-bootstrap intervals and
the verdict. Rows up to the end of the version's training window are dropped first (they are not
"never seen"); calendar months play the part of folds for "positive in ≥ 60 % of folds". The
logistic-regression baseline is not refitted here: it would need the training window's rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mt5db_training.evaluation import (
    OutOfSample,
    backtest_table,
    classification_table,
    classification_verdict,
    regression_table,
    regression_verdict,
)
from mt5db_training.features import compute_features, segment_ids
from mt5db_training.predictor import Predictor
from mt5db_training.sources import clean_candles
from mt5db_training.targets import CostModel, gross_move, make_targets


def _month_folds(index: pd.DatetimeIndex) -> Any:
    months = pd.DatetimeIndex(index).year * 12 + pd.DatetimeIndex(index).month
    _, inverse = np.unique(np.asarray(months), return_inverse=True)
    return inverse.astype(np.int64)


def evaluate_version(
    predictor: Predictor,
    card: dict[str, Any],
    candles: pd.DataFrame,
    *,
    train_end: pd.Timestamp | None,
    cost: CostModel,
    reps: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The evaluation report of one version on `candles` (blocks per horizon, as in report.json)."""
    frame, quality = clean_candles(candles)
    feats = compute_features(frame)
    horizons = predictor.horizons
    targets = make_targets(frame, cost, horizons)
    index = pd.DatetimeIndex(frame.index)
    unseen = np.ones(len(frame), dtype=bool) if train_end is None else np.asarray(index > train_end)
    keep = feats.notna().all(axis=1).to_numpy() & targets.notna().all(axis=1).to_numpy() & unseen
    if predictor.min_rows > 1:  # a window of contiguous feature rows ends at each decision row
        seg = segment_ids(index)
        finite = feats.notna().all(axis=1).to_numpy()
        run = np.zeros(len(frame), dtype=np.int64)
        for i in range(len(frame)):
            run[i] = (
                (run[i - 1] + 1 if i and seg[i] == seg[i - 1] and finite[i - 1] else 1) if finite[i] else 0
            )
        keep &= run >= predictor.min_rows
    positions = np.flatnonzero(keep)
    dropped = int(np.sum(~unseen))
    if len(positions) < 50:
        raise ValueError(
            f"only {len(positions)} scorable rows after the training window and the warm-up "
            f"({dropped} rows up to the training window's end dropped); give later or longer data"
        )
    outputs = predictor.predict_at(feats, positions)
    close = frame["close"].to_numpy(np.float64)
    model = "random_forest" if predictor.kind == "rf" else "informer"
    thresholds = {int(h): float(v) for h, v in (card.get("signal") or {}).get("thresholds", {}).items()}
    stats = card.get("train_stats") or {}
    bars_per_year = 260 * 86400 / _width(card)  # 260 trading days, as the reports annualise
    blocks: dict[str, Any] = {}
    for h in horizons:
        back = np.full(len(frame), np.nan)
        back[h:] = np.log(close[h:] / close[:-h])
        pred = outputs[h]
        oos = OutOfSample(
            horizon=h,
            index=index[positions],
            fold=_month_folds(index[positions]),
            y_ret=targets[f"ret_fwd_{h}"].to_numpy(np.float64)[positions],
            y_up=targets[f"up_net_{h}"].to_numpy(np.float64)[positions],
            gross_pips=gross_move(frame, h)[positions] / cost.pip,
            cost_pips=cost.per_bar(frame)[positions] / cost.pip,
            prior=np.full(len(positions), float((stats.get(str(h)) or {}).get("up_rate", 0.5))),
        )
        persistence = back[positions]
        threshold = thresholds.get(h, float(card["signal"]["threshold"]))
        if predictor.output == "return":
            oos.regression = {
                model: pred,
                "zero": np.zeros(len(positions)),
                "train_mean": np.full(
                    len(positions), float((stats.get(str(h)) or {}).get("mean_return", 0.0))
                ),
                "persistence": persistence,
            }
            signal = np.sign(pred) * (np.abs(pred) > threshold)
        else:
            oos.probability = {model: pred}
            signal = (pred > threshold).astype(np.float64)
        oos.score = {model: pred, "persistence": persistence}
        long = np.ones(len(positions), dtype=np.int8)
        oos.signal = {
            model: signal.astype(np.int8),
            "persistence": np.sign(persistence).astype(np.int8),
            "mean_reversion": (-np.sign(persistence)).astype(np.int8),
            "always_long": long,
            "always_short": -long,
        }
        cls = classification_table(oos, reps=reps, seed=seed)
        bt, _ = backtest_table(oos, bars_per_year, reps=reps, seed=seed)
        block: dict[str, Any] = {"oos_rows": len(positions), "classification": cls, "backtest": bt}
        if predictor.output == "return":
            reg = regression_table(oos, reps=reps, seed=seed)
            block["regression"] = reg
            verdict, reasons = regression_verdict(reg, bt, model)
        else:
            verdict, reasons = classification_verdict(cls, bt, model, lr="(not refitted)")
        block |= {"threshold": threshold, "verdict": verdict, "verdict_reasons": reasons}
        blocks[str(h)] = block
    return {
        "data": {
            "range": f"{index[positions[0]]} → {index[positions[-1]]} ({len(positions)} scored rows)",
            "dropped_seen_rows": dropped,
            "quality": quality.__dict__,
        },
        "horizons": blocks,
        "note": "no logistic-regression baseline (it would need the training window); months act as folds",
    }


def _width(card: dict[str, Any]) -> float:
    from mt5db_core.market.timeframes import TIMEFRAMES

    tf = TIMEFRAMES.get(card["data"]["timeframe"])
    return float(tf.seconds if tf else 3600)
