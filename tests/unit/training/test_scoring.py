"""Metrics against independent computations; block bootstrap; the backtest on hand-made trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mt5db_training import scoring


def test_r2_oos_is_against_zero_not_the_test_mean() -> None:
    y = np.array([0.01, 0.02, 0.03])
    assert scoring.r2_oos(y, np.zeros(3)) == 0.0
    # predicting the test mean is a look-ahead: r2_score gives 0, R²_OOS rewards it
    assert scoring.r2_oos(y, np.full(3, 0.02)) > 0.5


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(float)
    s = np.round(rng.normal(size=500) + 0.3 * y, 1)
    assert np.isclose(scoring.auc(y, s), roc_auc_score(y, s))


def test_brier_skill_of_the_prior_is_zero() -> None:
    y = np.array([1.0, 0.0, 1.0, 1.0])
    assert scoring.brier_skill(y, np.full(4, 0.75), 0.75) == 0.0
    assert scoring.brier_skill(y, y * 0.9 + 0.05, 0.75) > 0


def test_block_bootstrap_resamples_whole_weeks() -> None:
    idx = pd.date_range("2024-01-01", periods=24 * 7 * 20, freq="h")
    blocks = scoring.block_ids(idx, "W")
    assert len(np.unique(blocks)) == 20
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, len(idx)).astype(float)
    s = y + rng.normal(0, 2, len(idx))
    lo, hi = scoring.block_bootstrap_ci(lambda r: np.array([scoring.auc(y[r], s[r])]), blocks, reps=300)
    point = scoring.auc(y, s)
    assert lo[0] < point < hi[0]
    assert hi[0] - lo[0] < 0.1


def test_backtest_non_overlapping_trades_net_of_cost() -> None:
    gross = np.array([5.0, -3.0, 2.0, 4.0, -1.0, 6.0])
    cost = np.ones(6)
    sig = np.array([1, 1, 1, -1, 0, 1], dtype=np.int8)
    # h=2: trade at t=0 (+5-1), next allowed t=2 (+2-1), then t=4 has no signal, t=5 (+6-1)
    per_bar, trades = scoring.trade_pnl(sig, gross, cost, 2)
    assert trades.tolist() == [4.0, 1.0, 5.0]
    assert per_bar[2] == 4.0 and per_bar[4] == 1.0 and per_bar[5] == 5.0
    summary, equity = scoring.backtest(sig, gross, cost, 2, bars_per_year=6240)
    assert summary.trades == 3 and summary.total_net_pips == 10.0 and summary.hit_rate == 1.0
    assert equity[-1] == 10.0 and summary.max_drawdown_pips == 0.0


def test_threshold_is_chosen_on_validation_arrays_only() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    gross = np.where(p > 0.8, 5.0, -5.0)
    thr = scoring.choose_threshold(p, gross, np.ones(2000), 1, min_trades=30)
    assert 0.75 <= thr <= 0.85
