"""RandomForest regression of 1/5/10-bar forward returns under purged walk-forward, with every baseline
on the same folds (zero, train mean, persistence, mean reversion, L2 logistic regression, always-long/short).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.dataset import Dataset
from mt5db_training.evaluation import (
    OutOfSample,
    backtest_table,
    classification_table,
    permutation_auc,
    regression_table,
    regression_verdict,
)
from mt5db_training.splits import Fold, embargo_bars, walk_forward

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]


@dataclass(frozen=True)
class RFConfig:
    """RandomForestRegressor settings and the walk-forward protocol."""

    n_estimators: int = 200
    min_samples_leaf: int = 20
    max_features: str | float = "sqrt"
    n_folds: int = 8
    test_bars: int = 0  # 0 → one month of bars (22 trading days)
    val_fraction: float = 0.15
    min_trades_val: int = 30
    bootstrap_reps: int = 1000
    leakage_check: bool = True
    seed: int = 0
    n_jobs: int = 2


@dataclass(frozen=True)
class Protocol:
    """Fold geometry of one horizon, as reported."""

    horizon: int
    n_folds: int
    test_bars: int
    embargo_bars: int
    gap_bars: int
    val_fraction: float


def make_protocol(ds: Dataset, horizon: int, n_folds: int, test_bars: int, val_fraction: float) -> Protocol:
    """gap = h + embargo, embargo = max(h, one trading day of bars)."""
    embargo = embargo_bars(horizon, ds.bars_per_day)
    return Protocol(
        horizon, n_folds, test_bars or ds.bars_per_day * 22, embargo, horizon + embargo, val_fraction
    )


def fold_ranges(ds: Dataset, folds: list[Fold]) -> list[dict[str, Any]]:
    """Calendar ranges of each fold's fit / validation / test rows, for the report."""
    idx = ds.index
    return [
        {
            "fold": f.number,
            "fit": [str(idx[f.fit[0]]), str(idx[f.fit[-1]]), len(f.fit)],
            "val": [str(idx[f.val[0]]), str(idx[f.val[-1]]), len(f.val)],
            "test": [str(idx[f.test[0]]), str(idx[f.test[-1]]), len(f.test)],
        }
        for f in folds
    ]


def logistic_baseline(x_fit: F64, y_fit: F64) -> Any:
    """B3: L2 logistic regression on the same features, scaler fitted on the fit rows only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
    model.fit(x_fit, y_fit.astype(int))
    return model


def choose_abs_threshold(
    pred_val: F64, gross_val: F64, cost_val: F64, horizon: int, min_trades: int
) -> float:
    """|forecast| cut-off for long/short signals that maximises validation net pips (≥ min_trades)."""
    best, best_q = -np.inf, float(np.quantile(np.abs(pred_val), 0.5))
    for q in np.quantile(np.abs(pred_val), [0.0, 0.5, 0.7, 0.8, 0.9, 0.95]):
        sig = (np.sign(pred_val) * (np.abs(pred_val) > q)).astype(np.int8)
        _, trades = scoring.trade_pnl(sig, gross_val, cost_val, horizon)
        if len(trades) >= min_trades and trades.sum() > best:
            best, best_q = float(trades.sum()), float(q)
    return best_q


def shuffled_kfold_check(ds: Dataset, horizon: int, cfg: RFConfig) -> dict[str, float]:
    """The banned protocol, measured: shuffled 5-fold R²_OOS and AUC of the same RF on the same rows."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"ret_fwd_{horizon}"].to_numpy(np.float64)
    up = ds.targets[f"up_net_{horizon}"].to_numpy(np.float64)
    pred = np.zeros_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=cfg.seed).split(x):
        rf = RandomForestRegressor(
            n_estimators=cfg.n_estimators,
            min_samples_leaf=cfg.min_samples_leaf,
            max_features=cfg.max_features,
            n_jobs=cfg.n_jobs,
            random_state=cfg.seed,
        )
        rf.fit(x[tr], y[tr])
        pred[te] = rf.predict(x[te])
    return {
        "shuffled_5fold_r2_oos": round(scoring.r2_oos(y, pred), 4),
        "shuffled_5fold_auc": round(scoring.auc(up, pred), 4),
    }


def run_horizon(
    ds: Dataset, horizon: int, cfg: RFConfig
) -> tuple[dict[str, Any], OutOfSample, dict[str, float], Any]:
    """Walk-forward RF for one horizon → (report block, pooled OOS, feature importance, last fold's model)."""
    from sklearn.ensemble import RandomForestRegressor

    proto = make_protocol(ds, horizon, cfg.n_folds, cfg.test_bars, cfg.val_fraction)
    folds = walk_forward(
        len(ds.features),
        n_folds=proto.n_folds,
        test_size=proto.test_bars,
        gap=proto.gap_bars,
        val_fraction=proto.val_fraction,
    )
    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"ret_fwd_{horizon}"].to_numpy(np.float64)
    up = ds.targets[f"up_net_{horizon}"].to_numpy(np.float64)
    gross, cost, back = ds.gross_pips[horizon], ds.cost_pips, ds.persistence[horizon]

    parts: dict[str, list[F64]] = {k: [] for k in ("rf", "train_mean", "lr_p", "prior", "rf_sig", "lr_sig")}
    importances = []
    per_fold = []
    model: Any = None
    thresholds: dict[str, list[float]] = {"random_forest": [], "logistic_regression": []}
    for f in folds:
        model = RandomForestRegressor(
            n_estimators=cfg.n_estimators,
            min_samples_leaf=cfg.min_samples_leaf,
            max_features=cfg.max_features,
            n_jobs=cfg.n_jobs,
            random_state=cfg.seed,
        )
        model.fit(x[f.fit], y[f.fit])
        importances.append(model.feature_importances_)
        q = choose_abs_threshold(
            model.predict(x[f.val]), gross[f.val], cost[f.val], horizon, cfg.min_trades_val
        )
        pred = model.predict(x[f.test])
        lr = logistic_baseline(x[f.fit], up[f.fit])
        thr = scoring.choose_threshold(
            lr.predict_proba(x[f.val])[:, 1],
            gross[f.val],
            cost[f.val],
            horizon,
            min_trades=cfg.min_trades_val,
        )
        p_lr = lr.predict_proba(x[f.test])[:, 1]
        thresholds["random_forest"].append(q)
        thresholds["logistic_regression"].append(thr)
        parts["rf"].append(pred)
        parts["train_mean"].append(np.full(len(f.test), float(np.mean(y[f.fit]))))
        parts["lr_p"].append(p_lr)
        parts["prior"].append(np.full(len(f.test), float(np.mean(up[f.fit]))))
        parts["rf_sig"].append(np.sign(pred) * (np.abs(pred) > q))
        parts["lr_sig"].append((p_lr > thr).astype(np.float64))
        per_fold.append(
            {
                "fold": f.number,
                "r2_oos": round(scoring.r2_oos(y[f.test], pred), 5),
                "r2_oos_persistence": round(scoring.r2_oos(y[f.test], back[f.test]), 5),
                "mae": float(scoring.mae(y[f.test], pred)),
                "mae_zero": float(scoring.mae(y[f.test], np.zeros(len(f.test)))),
                "auc_rf_score": round(scoring.auc(up[f.test], pred), 4),
                "auc_lr": round(scoring.auc(up[f.test], p_lr), 4),
                "signal_threshold_abs_return": q,
                "lr_threshold": thr,
            }
        )
    test = np.concatenate([f.test for f in folds])
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    oos = OutOfSample(
        horizon=horizon,
        index=ds.index[test],
        fold=np.concatenate([np.full(len(f.test), f.number, dtype=np.int64) for f in folds]),
        y_ret=y[test],
        y_up=up[test],
        gross_pips=gross[test],
        cost_pips=cost[test],
        prior=cat["prior"],
    )
    oos.regression = {
        "random_forest": cat["rf"],
        "zero": np.zeros(len(test)),
        "train_mean": cat["train_mean"],
        "persistence": back[test],
    }
    oos.score = {"random_forest": cat["rf"], "logistic_regression": cat["lr_p"], "persistence": back[test]}
    oos.probability = {"logistic_regression": cat["lr_p"]}
    # thresholds differ per fold; the report's precision@threshold uses each row's own fold threshold
    oos.thresholds = {}
    sig_long = np.ones(len(test), dtype=np.int8)
    oos.signal = {
        "random_forest": cat["rf_sig"].astype(np.int8),
        "logistic_regression": cat["lr_sig"].astype(np.int8),
        "persistence": np.sign(back[test]).astype(np.int8),
        "mean_reversion": (-np.sign(back[test])).astype(np.int8),
        "always_long": sig_long,
        "always_short": -sig_long,
    }
    reg = regression_table(oos, reps=cfg.bootstrap_reps, seed=cfg.seed)
    cls = classification_table(oos, reps=cfg.bootstrap_reps, seed=cfg.seed)
    lr_rule = cat["lr_sig"] > 0
    tp = float(np.sum(lr_rule & (oos.y_up == 1)))
    cls["logistic_regression"]["at_threshold"] = {
        "threshold": "per fold, chosen on validation (see per_fold)",
        "precision": tp / float(lr_rule.sum()) if lr_rule.any() else None,
        "recall": tp / float(np.sum(oos.y_up == 1)),
        "coverage": float(lr_rule.mean()),
    }
    bt, curves = backtest_table(oos, ds.bars_per_year, reps=cfg.bootstrap_reps, seed=cfg.seed)
    verdict, reasons = regression_verdict(reg, bt, "random_forest")
    block: dict[str, Any] = {
        "protocol": asdict(proto),
        "folds": fold_ranges(ds, folds),
        "oos_rows": len(test),
        "regression": reg,
        "classification": cls,
        "backtest": bt,
        "per_fold": per_fold,
        "sanity": {"permuted_label_auc_random_forest": permutation_auc(oos, "random_forest", cfg.seed)},
        "verdict": verdict,
        "verdict_reasons": reasons,
    }
    if cfg.leakage_check:
        check = shuffled_kfold_check(ds, horizon, cfg)
        check["walk_forward_r2_oos"] = reg["random_forest"]["r2_oos"]
        check["walk_forward_auc"] = cls["random_forest"]["auc"]
        block["leakage_check"] = check
    importance = dict(zip(ds.features.columns, np.mean(importances, axis=0).tolist(), strict=True))
    block["feature_importance"] = importance
    block["_curves"] = curves
    return block, oos, importance, model


def run_rf(
    ds: Dataset, cfg: RFConfig, horizons: tuple[int, ...]
) -> tuple[dict[str, Any], dict[int, Any], dict[int, OutOfSample]]:
    """All horizons → (horizon blocks, last-fold models, OOS frames)."""
    blocks: dict[str, Any] = {}
    models: dict[int, Any] = {}
    oos_all: dict[int, OutOfSample] = {}
    for h in horizons:
        started = time.perf_counter()
        block, oos, _, model = run_horizon(ds, h, cfg)
        block["seconds"] = round(time.perf_counter() - started, 1)
        blocks[str(h)] = block
        models[h] = model
        oos_all[h] = oos
    return blocks, models, oos_all
