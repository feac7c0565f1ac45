"""The RandomForest run. Why shuffled K-fold is banned: on the same real candles it inflates the score far above purged
walk-forward (docs/ml-protocol.md §6). If this test ever fails because the two agree, the features or
labels changed; if someone "simplifies" the protocol to shuffled K-fold, the gap shows here. And the
champion's recipe, re-evaluated on this run's folds (the gate's comparison)."""

from __future__ import annotations

import pandas as pd

from mt5db_training.config import RFConfig
from mt5db_training.dataset import DataSource, prepare
from mt5db_training.rf_run import rf_config_of, run_horizon, shuffled_kfold_check
from mt5db_training.targets import CostModel


def test_shuffled_kfold_inflates_the_score_on_real_candles(gym_candles: pd.DataFrame) -> None:
    ds = prepare(
        gym_candles,
        DataSource("csv", "gym", "EURUSD", "H1", "x"),
        cost=CostModel(),
        horizons=(10,),
        lockbox_fraction=0.15,
        lockbox_start=None,
    )
    cfg = RFConfig(
        n_estimators=40,
        min_samples_leaf=20,
        n_folds=5,
        test_bars=400,
        bootstrap_reps=100,
        leakage_check=False,
        n_jobs=1,
    )
    shuffled = shuffled_kfold_check(ds, 10, cfg)
    block, _, _, _ = run_horizon(ds, 10, cfg)
    wf_r2 = block["regression"]["random_forest"]["r2_oos"]
    wf_auc = block["classification"]["random_forest"]["auc"]
    assert shuffled["shuffled_5fold_r2_oos"] > 0.05  # "skill" from overlapping labels
    assert wf_r2 < 0.02  # honest: no skill out of sample
    assert shuffled["shuffled_5fold_auc"] - wf_auc > 0.08


def test_a_champions_recipe_keeps_its_own_forest_and_this_runs_folds() -> None:
    """The champion is re-evaluated with its recipe's forest on this run's fold geometry; a recipe
    registered before max_depth existed grew unlimited trees, whatever this run asks."""
    this_run = RFConfig(n_estimators=30, max_depth=8, n_folds=3, bootstrap_reps=100)
    old = {"n_estimators": 200, "min_samples_leaf": 20, "max_features": "sqrt", "seed": 0, "n_folds": 8}
    champ = rf_config_of(old, this_run)
    assert (champ.n_estimators, champ.max_depth) == (200, None)
    assert (champ.n_folds, champ.bootstrap_reps, champ.leakage_check) == (3, 100, False)
    assert rf_config_of({**old, "max_depth": 12}, this_run).max_depth == 12
