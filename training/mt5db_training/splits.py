"""Purged walk-forward splits with embargo, and the lockbox (docs/ml-protocol.md §6.3).

Positions are row numbers of the development set (lockbox removed). For each fold the test block
is `test_size` consecutive rows; training is everything before it (expanding) minus a gap of
`horizon + embargo` rows, so no training label window (t+1 .. t+h) reaches into the test block and
autocorrelated features near the boundary are embargoed. Validation (early stopping, threshold,
hyperparameters) is the last `val_fraction` of the training window, itself separated from the fit
rows by the same gap. Shuffled K-fold is not offered (see tests/unit/training/test_rf_run.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Fold:
    """Row positions of one walk-forward fold."""

    number: int
    fit: I64  # rows the model is fitted on
    val: I64  # last part of the training window (purged from `fit`)
    test: I64

    @property
    def train(self) -> I64:
        """fit ∪ val: the whole training window (used to refit after selection)."""
        return np.concatenate([self.fit, self.val])


class NotEnoughData(ValueError):
    """The series is too short for the requested protocol (folds, test block, warm-up)."""


def embargo_bars(horizon: int, bars_per_day: int) -> int:
    """e = max(h, one trading day of bars)."""
    return max(horizon, bars_per_day)


def walk_forward(
    n_rows: int,
    *,
    n_folds: int,
    test_size: int,
    gap: int,
    val_fraction: float = 0.15,
    min_train: int = 500,
) -> list[Fold]:
    """Expanding-window folds over the last `n_folds * test_size` rows; `gap` rows purged before each test block and before each validation block."""
    if gap < 1:
        raise ValueError("gap must be >= 1 (at least the label horizon)")
    folds: list[Fold] = []
    first_test = n_rows - n_folds * test_size
    for k in range(n_folds):
        t0 = first_test + k * test_size
        test = np.arange(t0, t0 + test_size, dtype=np.int64)
        train_end = t0 - gap  # exclusive
        n_val = round(train_end * val_fraction)
        val_start = train_end - n_val
        fit_end = val_start - gap
        if fit_end < min_train or n_val < 1:
            raise NotEnoughData(
                f"fold {k}: only {fit_end} fit rows; use fewer folds or a smaller test block, or more data"
            )
        folds.append(
            Fold(
                number=k,
                fit=np.arange(0, fit_end, dtype=np.int64),
                val=np.arange(val_start, train_end, dtype=np.int64),
                test=test,
            )
        )
    return folds


def lockbox_mask(
    index: pd.DatetimeIndex, start: pd.Timestamp | None, fraction: float = 0.15
) -> npt.NDArray[np.bool_]:
    """True for lockbox rows: ts >= start, or the most recent `fraction` of rows when start is None."""
    if start is not None:
        return np.asarray(index >= start)
    mask = np.zeros(len(index), dtype=bool)
    mask[int(len(index) * (1 - fraction)) :] = True
    return mask
