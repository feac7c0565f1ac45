"""`mt5db train --model rf`: RandomForest regression of 1/5/10-bar forward returns under purged
walk-forward, every baseline on the same folds (protocol.py), then the report and one artifact per
horizon. Reads data → protocol → report; registering and publishing are the driver's (train.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.config import RFConfig, TrainConfig
from mt5db_training.dataset import Dataset, load_dataset
from mt5db_training.evaluation import OutOfSample
from mt5db_training.protocol import (
    FoldBaselines,
    FoldOutput,
    evaluate_horizon,
    make_protocol,
    protocol_folds,
    walk_forward_oos,
)
from mt5db_training.report import base_report, finish
from mt5db_training.splits import Fold

F64 = npt.NDArray[np.float64]

MODEL = "random_forest"


def make_forest(cfg: RFConfig) -> Any:
    """An unfitted RandomForestRegressor with the configured size and seed."""
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=cfg.n_estimators,
        min_samples_leaf=cfg.min_samples_leaf,
        max_features=cfg.max_features,
        n_jobs=cfg.n_jobs,
        random_state=cfg.seed,
    )


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
    from sklearn.model_selection import KFold

    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"ret_fwd_{horizon}"].to_numpy(np.float64)
    up = ds.targets[f"up_net_{horizon}"].to_numpy(np.float64)
    pred = np.zeros_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=cfg.seed).split(x):
        rf = make_forest(cfg)
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
    proto = make_protocol(ds, horizon, cfg.n_folds, cfg.test_bars, cfg.val_fraction)
    folds = protocol_folds(ds, proto)
    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"ret_fwd_{horizon}"].to_numpy(np.float64)
    up = ds.targets[f"up_net_{horizon}"].to_numpy(np.float64)
    gross, cost, back = ds.gross_pips[horizon], ds.cost_pips, ds.persistence[horizon]
    importances = []
    models: list[Any] = []

    def fit_fold(f: Fold, base: FoldBaselines) -> FoldOutput:
        model = make_forest(cfg)
        model.fit(x[f.fit], y[f.fit])
        importances.append(model.feature_importances_)
        models.append(model)
        q = choose_abs_threshold(
            model.predict(x[f.val]), gross[f.val], cost[f.val], horizon, cfg.min_trades_val
        )
        pred = model.predict(x[f.test])
        record = {
            "fold": f.number,
            "r2_oos": round(scoring.r2_oos(y[f.test], pred), 5),
            "r2_oos_persistence": round(scoring.r2_oos(y[f.test], back[f.test]), 5),
            "mae": float(scoring.mae(y[f.test], pred)),
            "mae_zero": float(scoring.mae(y[f.test], np.zeros(len(f.test)))),
            "auc_rf_score": round(scoring.auc(up[f.test], pred), 4),
            "auc_lr": round(scoring.auc(up[f.test], base.lr_p), 4),
            "signal_threshold_abs_return": q,
            "lr_threshold": base.lr_threshold,
        }
        signal = np.sign(pred) * (np.abs(pred) > q)
        return FoldOutput(record=record, score=pred, signal=signal, regression=pred)

    oos, per_fold = walk_forward_oos(
        ds, horizon, folds, MODEL, fit_fold, min_trades=cfg.min_trades_val, mean_reversion=True
    )
    block = evaluate_horizon(
        ds, proto, folds, oos, per_fold, MODEL, task="regression", reps=cfg.bootstrap_reps, seed=cfg.seed
    )
    if cfg.leakage_check:
        check = shuffled_kfold_check(ds, horizon, cfg)
        check["walk_forward_r2_oos"] = block["regression"][MODEL]["r2_oos"]
        check["walk_forward_auc"] = block["classification"][MODEL]["auc"]
        block["leakage_check"] = check
    importance = dict(zip(ds.features.columns, np.mean(importances, axis=0).tolist(), strict=True))
    block["feature_importance"] = importance
    return block, oos, importance, models[-1]


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


def run(cfg: TrainConfig) -> tuple[dict[str, Any], Path]:
    """--model rf: every horizon of cfg.horizons → report.json, plots and artifacts; (report, path)."""
    from mt5db_training.registry import save_sklearn_artifact

    started = time.perf_counter()
    ds = load_dataset(cfg.data, cfg.horizons)
    cfg.out.mkdir(parents=True, exist_ok=True)
    blocks, models, oos = run_rf(ds, cfg.rf, cfg.horizons)
    report = base_report(cfg.run, ds, "random_forest", "regression", asdict(cfg.rf), configs_tried=1)
    report["horizons"] = blocks
    artifacts = {}
    for h, model in models.items():
        uri, sha = save_sklearn_artifact(model, cfg.out)
        artifacts[str(h)] = {"uri": uri, "sha256": sha, "note": "model of the last walk-forward fold"}
    report["artifacts"] = artifacts
    report["seconds"] = round(time.perf_counter() - started, 1)
    importance = {h: blocks[str(h)]["feature_importance"] for h in cfg.horizons}
    return report, finish(cfg.out, report, oos, importance)
