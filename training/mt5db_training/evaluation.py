"""Pooled out-of-sample evaluation shared by every model: metrics beside their baselines, block-bootstrap
intervals, the spread-aware backtest and the verdict (docs/ml-protocol.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5db_training import scoring

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]


@dataclass
class OutOfSample:
    """Test-block rows of every fold of one horizon, pooled in time order."""

    horizon: int
    index: pd.DatetimeIndex
    fold: I64
    y_ret: F64
    y_up: F64
    gross_pips: F64
    cost_pips: F64
    regression: dict[str, F64] = field(default_factory=dict)  # name → forecast of r_h
    probability: dict[str, F64] = field(default_factory=dict)  # name → P(up net of cost)
    score: dict[str, F64] = field(default_factory=dict)  # name → ranking score for AUC
    signal: dict[str, I8] = field(default_factory=dict)  # name → {−1, 0, +1} per bar
    thresholds: dict[str, float] = field(default_factory=dict)  # chosen on validation
    prior: F64 = field(default_factory=lambda: np.zeros(0))  # train up-rate per row (fold's)


def _ci(lo: F64, hi: F64, i: int) -> list[float]:
    return [round(float(lo[i]), 6), round(float(hi[i]), 6)]


def regression_table(oos: OutOfSample, *, reps: int, seed: int) -> dict[str, dict[str, Any]]:
    """R²_OOS vs zero, MAE, directional accuracy and IC for each forecast, with block-bootstrap CIs."""
    names = list(oos.regression)
    y = oos.y_ret
    blocks = scoring.block_ids(oos.index, "W")
    zero_mae = scoring.mae(y, np.zeros_like(y))

    def stats(rows: I64) -> F64:
        yy = y[rows]
        out = [scoring.r2_oos(yy, oos.regression[n][rows]) for n in names]
        z = scoring.mae(yy, np.zeros_like(yy))
        out += [scoring.mae(yy, oos.regression[n][rows]) - z for n in names]
        return np.asarray(out)

    lo, hi = scoring.block_bootstrap_ci(stats, blocks, reps=reps, seed=seed)
    table: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(names):
        pred = oos.regression[n]
        table[n] = {
            "r2_oos": round(scoring.r2_oos(y, pred), 6),
            "r2_oos_ci95": _ci(lo, hi, i),
            "mae": float(scoring.mae(y, pred)),
            "mae_minus_zero_mae_ci95": [float(lo[len(names) + i]), float(hi[len(names) + i])],
            "directional_accuracy": round(scoring.directional_accuracy(y, pred), 4),
            "spearman_ic": round(scoring.spearman_ic(y, pred), 4),
        }
    table["_zero_forecast_mae"] = {"mae": float(zero_mae)}
    return table


def classification_table(oos: OutOfSample, *, reps: int, seed: int) -> dict[str, dict[str, Any]]:
    """AUC (block-bootstrap CI), Brier, Brier skill vs the prior, log loss, precision@threshold."""
    y = oos.y_up
    blocks = scoring.block_ids(oos.index, "W")
    score_names = list(oos.score)
    prob_names = list(oos.probability)

    def stats(rows: I64) -> F64:
        yy = y[rows]
        out = [scoring.auc(yy, oos.score[n][rows]) for n in score_names]
        out += [
            scoring.brier_skill(yy, oos.probability[n][rows], float(np.mean(oos.prior[rows])))
            for n in prob_names
        ]
        return np.asarray(out)

    lo, hi = scoring.block_bootstrap_ci(stats, blocks, reps=reps, seed=seed)
    table: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(score_names):
        table[n] = {"auc": round(scoring.auc(y, oos.score[n]), 4), "auc_ci95": _ci(lo, hi, i)}
    base = len(score_names)
    prior_brier = scoring.brier(y, oos.prior)
    for j, n in enumerate(prob_names):
        p = oos.probability[n]
        entry = table.setdefault(n, {})
        entry.update(
            {
                "brier": round(scoring.brier(y, p), 6),
                "brier_prior": round(prior_brier, 6),
                "brier_skill": round(1.0 - scoring.brier(y, p) / prior_brier, 6) if prior_brier > 0 else None,
                "brier_skill_ci95": _ci(lo, hi, base + j),
                "log_loss": round(scoring.log_loss(y, p), 6),
                "calibration": scoring.reliability(y, p),
            }
        )
        if n in oos.thresholds:
            entry["at_threshold"] = scoring.precision_at(y, p, oos.thresholds[n])
    table["prior"] = {
        "auc": 0.5,
        "brier": round(prior_brier, 6),
        "brier_skill": 0.0,
        "up_rate_test": round(float(np.mean(y)), 4),
        "up_rate_train_mean": round(float(np.mean(oos.prior)), 4),
    }
    table["always_long"] = {"precision": round(float(np.mean(y)), 4), "recall": 1.0, "coverage": 1.0}
    return table


def backtest_table(
    oos: OutOfSample, bars_per_year: float, *, reps: int = 1000, seed: int = 0
) -> tuple[dict[str, dict[str, Any]], dict[str, F64]]:
    """Every signal through the same execution: entry next open, hold h bars, net of cost.

    Adds a weekly-block bootstrap 95% interval of total net pips and the cost sensitivity
    (same signals, cost × 0.5 / × 2: the protocol's 0.5 / 1 / 2 pips around the declared 1 pip).
    """
    table: dict[str, dict[str, Any]] = {}
    curves: dict[str, F64] = {}
    weeks = scoring.block_ids(oos.index, "W")
    n_weeks = int(weeks.max()) + 1
    picks = np.random.default_rng(seed).integers(0, n_weeks, (reps, n_weeks))
    for name, signal in oos.signal.items():
        summary, equity = scoring.backtest(signal, oos.gross_pips, oos.cost_pips, oos.horizon, bars_per_year)
        table[name] = summary.as_dict()
        per_bar, _ = scoring.trade_pnl(signal, oos.gross_pips, oos.cost_pips, oos.horizon)
        totals = np.bincount(weeks, weights=per_bar, minlength=n_weeks)[picks].sum(axis=1)
        table[name]["total_net_pips_ci95"] = [
            float(np.quantile(totals, 0.025)),
            float(np.quantile(totals, 0.975)),
        ]
        table[name]["total_net_pips_at_cost_x"] = {
            str(k): float(scoring.trade_pnl(signal, oos.gross_pips, oos.cost_pips * k, oos.horizon)[1].sum())
            for k in (0.5, 1.0, 2.0)
        }
        per_fold = []
        for f in np.unique(oos.fold):
            sel = oos.fold == f
            _, trades = scoring.trade_pnl(signal[sel], oos.gross_pips[sel], oos.cost_pips[sel], oos.horizon)
            per_fold.append(float(trades.sum()))
        table[name]["folds_positive_share"] = float(np.mean(np.asarray(per_fold) > 0))
        curves[name] = equity
    return table, curves


def precision_at_fold_thresholds(oos: OutOfSample, name: str) -> dict[str, Any]:
    """Precision, recall and coverage of a long signal whose threshold was chosen per fold on
    validation (the rule is the signal itself: `oos.signal[name] > 0`)."""
    rule = oos.signal[name] > 0
    tp = float(np.sum(rule & (oos.y_up == 1)))
    return {
        "threshold": "per fold, chosen on validation (see per_fold)",
        "precision": tp / float(rule.sum()) if rule.any() else None,
        "recall": tp / float(max(np.sum(oos.y_up == 1), 1)),
        "coverage": float(rule.mean()),
    }


def permutation_auc(oos: OutOfSample, name: str, seed: int) -> float:
    """Sanity check: AUC against permuted labels must sit at 0.50 ± noise."""
    rng = np.random.default_rng(seed)
    return round(scoring.auc(rng.permutation(oos.y_up), oos.score[name]), 4)


def regression_verdict(
    reg: dict[str, dict[str, Any]], bt: dict[str, dict[str, Any]], model: str
) -> tuple[str, list[str]]:
    """'beats baselines' only if R²_OOS CI > 0, R² > persistence's, MAE < zero's, and the backtest beats long/short."""
    reasons = []
    m = reg[model]
    if m["r2_oos_ci95"][0] <= 0:
        reasons.append(
            f"R²_OOS {m['r2_oos']:.4f}: 95% CI {m['r2_oos_ci95']} includes or is below 0 (zero forecast)"
        )
    if "persistence" in reg and m["r2_oos"] <= reg["persistence"]["r2_oos"]:
        reasons.append("R²_OOS not above persistence")
    if m["mae"] >= reg["_zero_forecast_mae"]["mae"]:
        reasons.append(
            f"MAE {m['mae']:.3e} not below the zero forecast's {reg['_zero_forecast_mae']['mae']:.3e}"
        )
    reasons += _backtest_reasons(bt, model)
    return ("beats baselines" if not reasons else "does not beat baselines"), reasons


def classification_verdict(
    cls: dict[str, dict[str, Any]],
    bt: dict[str, dict[str, Any]],
    model: str,
    lr: str = "logistic_regression",
) -> tuple[str, list[str]]:
    """The promotion gate of docs/ml-protocol.md §6.7 on pooled out-of-sample folds (lockbox excluded)."""
    reasons = []
    m = cls[model]
    bar = max(0.5, cls[lr]["auc"]) if lr in cls else 0.5
    if m["auc_ci95"][0] <= bar:
        reasons.append(f"AUC {m['auc']} lower CI {m['auc_ci95'][0]} not above max(0.5, LR AUC) = {bar}")
    if m.get("brier_skill") is not None and m["brier_skill"] <= 0:
        reasons.append(f"Brier skill vs prior {m['brier_skill']} <= 0")
    reasons += _backtest_reasons(bt, model)
    return ("beats baselines" if not reasons else "does not beat baselines"), reasons


def _backtest_reasons(bt: dict[str, dict[str, Any]], model: str) -> list[str]:
    reasons = []
    b = bt[model]
    if b["trades"] < 200 or b["mean_net_pips"] <= 0:
        reasons.append(
            f"net expectancy {b['mean_net_pips']:.2f} pips over {int(b['trades'])} trades (needs > 0 over >= 200)"
        )
    if b["total_net_pips_ci95"][0] <= 0:
        reasons.append(
            f"net pips 95% CI {[round(v) for v in b['total_net_pips_ci95']]}: lower bound not above 0"
        )
    if b["folds_positive_share"] < 0.6:
        reasons.append(f"net pips positive in {b['folds_positive_share']:.0%} of folds (needs >= 60%)")
    for other in ("always_long", "always_short"):
        if other in bt and b["total_net_pips"] <= bt[other]["total_net_pips"]:
            reasons.append(
                f"net pips {b['total_net_pips']:.1f} not above {other} {bt[other]['total_net_pips']:.1f}"
            )
    return reasons
