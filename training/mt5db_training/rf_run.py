"""`mt5db train --model rf`: RandomForest regression of 1/5/10-bar forward returns under purged
walk-forward, every baseline on the same folds (protocol.py), then the report and one artifact: the
bundle of the horizons' forests refit on the whole development window. With a current champion,
its recipe is re-run on the same folds for the gate. Reads data → protocol → report; registering,
the gate and publishing are the driver's (train.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.artifacts import RF_BUNDLE_FORMAT, joblib_bytes, write_artifact
from mt5db_training.card import serving_facts, signal_horizon
from mt5db_training.config import RFConfig, TrainConfig
from mt5db_training.dataset import Dataset, load_dataset
from mt5db_training.evaluation import OutOfSample
from mt5db_training.gate import ChampionRecipe
from mt5db_training.predictor import load_predictor
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
        max_depth=cfg.max_depth,
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
    last: list[Any] = []

    def fit_fold(f: Fold, base: FoldBaselines) -> FoldOutput:
        model = make_forest(cfg)
        model.fit(x[f.fit], y[f.fit])
        importances.append(model.feature_importances_)
        last[:] = [model]  # only the last fold's model is returned (memory: 8 forests per horizon)
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
    return block, oos, importance, last[0]


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


def refit_on_window(ds: Dataset, cfg: RFConfig, horizons: tuple[int, ...]) -> dict[int, Any]:
    """The registered models: one forest per horizon fitted on every development row.

    The walk-forward folds measured the recipe; the version that serves is the same recipe on
    the whole development window (the last fold's model would stop months before its end).
    """
    x = ds.features.to_numpy(np.float64)
    out = {}
    for h in horizons:
        model = make_forest(cfg)
        model.fit(x, ds.targets[f"ret_fwd_{h}"].to_numpy(np.float64))
        out[h] = model
    return out


def fold_thresholds(block: dict[str, Any]) -> float:
    """The signal threshold of the registered model: the median of the per-fold thresholds, each
    chosen on its fold's validation block (never on a test block)."""
    values = [float(r["signal_threshold_abs_return"]) for r in block["per_fold"]]
    return float(np.median(values))


# What makes a forest (the champion's); the fold geometry, costs and bootstrap stay this run's, so
# both are measured on the same folds.
RECIPE_FIELDS = ("n_estimators", "max_depth", "min_samples_leaf", "max_features", "seed")


def rf_config_of(recipe: dict[str, Any], base: RFConfig) -> RFConfig:
    """This run's RFConfig with the forest of a registered version's recipe (its `params`).

    A field the recipe lacks (registered before the field existed) takes the default it was
    trained with, not this run's value."""
    defaults = RFConfig()
    values = {k: recipe.get(k, getattr(defaults, k)) for k in RECIPE_FIELDS}
    return replace(base, **values, leakage_check=False)


def champion_on_same_folds(
    ds: Dataset, horizon: int, recipe: dict[str, Any], cfg: RFConfig, label: str
) -> dict[str, Any]:
    """The champion's recipe re-evaluated on this run's data and folds (the gate's comparison).

    Re-running the recipe is the honest way to get "the same purged walk-forward folds": the
    champion's own report was computed on other data (an older window).
    """
    champ_cfg = rf_config_of(recipe, cfg)
    started = time.perf_counter()
    block, _, _, _ = run_horizon(ds, horizon, champ_cfg)
    return {
        "version": label,
        "horizon": horizon,
        "recipe": asdict(champ_cfg),
        "regression": block["regression"][MODEL],
        "backtest": block["backtest"][MODEL],
        "verdict": block["verdict"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def run(cfg: TrainConfig, champion: ChampionRecipe | None = None) -> tuple[dict[str, Any], Path]:
    """--model rf: every horizon of cfg.horizons → report.json, plots and the registered bundle.

    With `champion` (the current champion's recipe), its recipe is re-evaluated on this run's
    folds at the signal horizon and reported under `champion_on_same_folds` for the gate.
    """
    started = time.perf_counter()
    ds = load_dataset(cfg.data, cfg.horizons)
    cfg.out.mkdir(parents=True, exist_ok=True)
    blocks, _, oos = run_rf(ds, cfg.rf, cfg.horizons)
    report = base_report(cfg.run, ds, "random_forest", "regression", asdict(cfg.rf), configs_tried=1)
    report["horizons"] = blocks
    signal_h = signal_horizon(blocks, cfg.signal_horizon)
    refit_started = time.perf_counter()
    models = refit_on_window(ds, cfg.rf, cfg.horizons)
    data = joblib_bytes({"format": RF_BUNDLE_FORMAT, "models": models})
    uri, sha = write_artifact(data, cfg.out, "joblib")
    predictor = load_predictor(data, sha, {"artifact": {"format": RF_BUNDLE_FORMAT}})
    fitted_on = f"every development row: {ds.index[0]} → {ds.index[-1]} ({len(ds.index)} rows)"
    report["artifact"] = {
        "uri": uri,
        "sha256": sha,
        "format": RF_BUNDLE_FORMAT,
        "horizons": list(cfg.horizons),
        "fitted_on": fitted_on,
        "note": "the recipe refit on the whole development window; the walk-forward folds measured it",
        "seconds": round(time.perf_counter() - refit_started, 1),
    }
    report["artifacts"] = {
        str(h): {"uri": uri, "sha256": sha, "note": f"horizon {h} of the bundle refit on the whole window"}
        for h in cfg.horizons
    }
    report["signal"] = {
        "horizon": signal_h,
        "output": "return",
        "threshold": fold_thresholds(blocks[str(signal_h)]),
        "threshold_rule": "|forecast of r_h| above the median of the per-fold thresholds chosen on validation",
        "thresholds": {str(h): fold_thresholds(blocks[str(h)]) for h in cfg.horizons},
        "pip_size": ds.cost.pip,
    }
    report["serving"] = serving_facts(ds, predictor)
    if champion is not None:
        report["champion_on_same_folds"] = champion_on_same_folds(
            ds, signal_h, champion.params, cfg.rf, champion.label
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    importance = {h: blocks[str(h)]["feature_importance"] for h in cfg.horizons}
    return report, finish(cfg.out, report, oos, importance)
