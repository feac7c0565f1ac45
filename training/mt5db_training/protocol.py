"""The evaluation protocol every model runs under: purged walk-forward folds with embargo, the
baselines fitted on the same folds, the per-fold loop and the per-horizon report block
(docs/ml-protocol.md §6.3–6.5).

A model plugs in one function, `fit_fold(fold, baselines) -> FoldOutput`, which fits on the fold's
fit rows, may choose a threshold on its validation rows, and only then scores the test rows. The
loop here fits B0 (prior) and B3 (L2 logistic regression, threshold chosen on validation) on the
same rows, pools every test block in time order and adds the rule baselines (persistence, mean
reversion, always long/short) to the OutOfSample that `evaluate_horizon` turns into tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.dataset import Dataset
from mt5db_training.evaluation import (
    OutOfSample,
    backtest_table,
    classification_table,
    classification_verdict,
    permutation_auc,
    precision_at_fold_thresholds,
    regression_table,
    regression_verdict,
)
from mt5db_training.splits import Fold, embargo_bars, walk_forward

F64 = npt.NDArray[np.float64]

LR = "logistic_regression"


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


def protocol_folds(ds: Dataset, proto: Protocol) -> list[Fold]:
    """The walk-forward folds of a protocol over the development rows."""
    return walk_forward(
        len(ds.features),
        n_folds=proto.n_folds,
        test_size=proto.test_bars,
        gap=proto.gap_bars,
        val_fraction=proto.val_fraction,
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


# -- the fold loop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldBaselines:
    """B0 and B3 on one fold, fitted on its fit rows; the model's per-fold record sits beside them."""

    lr_p: F64  # B3's P(up net of cost) on the test rows
    lr_threshold: float  # B3's threshold, chosen on the validation rows
    prior: float  # B0: the fit rows' up-rate
    train_mean: float  # the fit rows' mean forward return (regression baseline)


@dataclass(frozen=True)
class FoldOutput:
    """One model's output on one fold's test rows."""

    record: dict[str, Any]  # the fold's `per_fold` entry of the report
    score: F64  # ranking score, for AUC
    signal: F64  # {−1, 0, +1} per bar, decided at the bar's close
    regression: F64 | None = None  # forecast of r_h (regression models)
    probability: F64 | None = None  # P(up net of cost) (classifiers)


def walk_forward_oos(
    ds: Dataset,
    horizon: int,
    folds: list[Fold],
    model: str,
    fit_fold: Callable[[Fold, FoldBaselines], FoldOutput],
    *,
    min_trades: int = 30,
    mean_reversion: bool = False,
) -> tuple[OutOfSample, list[dict[str, Any]]]:
    """Run `fit_fold` and the baselines on every fold → (pooled OutOfSample, per-fold records).

    `mean_reversion` adds B2 (the opposite of persistence) to the backtest signals.
    """
    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"ret_fwd_{horizon}"].to_numpy(np.float64)
    up = ds.targets[f"up_net_{horizon}"].to_numpy(np.float64)
    gross, cost, back = ds.gross_pips[horizon], ds.cost_pips, ds.persistence[horizon]

    outputs: list[FoldOutput] = []
    baselines: list[FoldBaselines] = []
    for f in folds:
        lr = logistic_baseline(x[f.fit], up[f.fit])
        base = FoldBaselines(
            lr_p=lr.predict_proba(x[f.test])[:, 1],
            lr_threshold=scoring.choose_threshold(
                lr.predict_proba(x[f.val])[:, 1], gross[f.val], cost[f.val], horizon, min_trades=min_trades
            ),
            prior=float(np.mean(up[f.fit])),
            train_mean=float(np.mean(y[f.fit])),
        )
        outputs.append(fit_fold(f, base))
        baselines.append(base)

    test = np.concatenate([f.test for f in folds])
    n = len(test)
    lr_p = np.concatenate([b.lr_p for b in baselines])
    lr_signal = np.concatenate([(b.lr_p > b.lr_threshold).astype(np.float64) for b in baselines])
    oos = OutOfSample(
        horizon=horizon,
        index=ds.index[test],
        fold=np.concatenate([np.full(len(f.test), f.number, dtype=np.int64) for f in folds]),
        y_ret=y[test],
        y_up=up[test],
        gross_pips=gross[test],
        cost_pips=cost[test],
        prior=np.concatenate([np.full(len(f.test), b.prior) for f, b in zip(folds, baselines, strict=True)]),
    )
    regression = [o.regression for o in outputs if o.regression is not None]
    probability = [o.probability for o in outputs if o.probability is not None]
    if regression:
        oos.regression = {
            model: np.concatenate(regression),
            "zero": np.zeros(n),
            "train_mean": np.concatenate(
                [np.full(len(f.test), b.train_mean) for f, b in zip(folds, baselines, strict=True)]
            ),
            "persistence": back[test],
        }
    oos.score = {model: np.concatenate([o.score for o in outputs]), LR: lr_p, "persistence": back[test]}
    if probability:
        oos.probability[model] = np.concatenate(probability)
    oos.probability[LR] = lr_p
    long = np.ones(n, dtype=np.int8)
    oos.signal = {
        model: np.concatenate([o.signal for o in outputs]).astype(np.int8),
        LR: lr_signal.astype(np.int8),
        "persistence": np.sign(back[test]).astype(np.int8),
    }
    if mean_reversion:
        oos.signal["mean_reversion"] = (-np.sign(back[test])).astype(np.int8)
    oos.signal |= {"always_long": long, "always_short": -long}
    return oos, [o.record for o in outputs]


# -- the per-horizon block ---------------------------------------------------------------------


def evaluate_horizon(
    ds: Dataset,
    proto: Protocol,
    folds: list[Fold],
    oos: OutOfSample,
    per_fold: list[dict[str, Any]],
    model: str,
    *,
    task: Literal["regression", "classification"],
    reps: int,
    seed: int,
    protocol_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report block of one horizon: tables beside the baselines, backtest, sanity check, verdict.

    Every probability model's signal used a threshold chosen per fold on validation, so its
    precision/recall/coverage is that of its own signal. `_curves` (equity curves) is popped by
    report.finish for the plots.
    """
    block: dict[str, Any] = {
        "protocol": asdict(proto) | (protocol_extra or {}),
        "folds": fold_ranges(ds, folds),
        "oos_rows": len(oos.y_up),
    }
    reg = regression_table(oos, reps=reps, seed=seed) if task == "regression" else None
    if reg is not None:
        block["regression"] = reg
    cls = classification_table(oos, reps=reps, seed=seed)
    for name in oos.probability:
        cls[name]["at_threshold"] = precision_at_fold_thresholds(oos, name)
    bt, curves = backtest_table(oos, ds.bars_per_year, reps=reps, seed=seed)
    if reg is not None:
        verdict, reasons = regression_verdict(reg, bt, model)
    else:
        verdict, reasons = classification_verdict(cls, bt, model)
    block |= {
        "classification": cls,
        "backtest": bt,
        "per_fold": per_fold,
        "sanity": {f"permuted_label_auc_{model}": permutation_auc(oos, model, seed)},
        "verdict": verdict,
        "verdict_reasons": reasons,
        "_curves": curves,
    }
    return block
