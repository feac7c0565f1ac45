"""Purged walk-forward: no overlap, gaps of horizon + embargo respected, validation purged, lockbox apart."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from mt5db_training.dataset import DataSource, prepare
from mt5db_training.splits import embargo_bars, lockbox_mask, walk_forward
from mt5db_training.targets import CostModel


@pytest.mark.parametrize("h", [1, 5, 10])
def test_folds_do_not_overlap_and_respect_the_gap(h: int) -> None:
    gap = h + embargo_bars(h, 24)
    folds = walk_forward(10_000, n_folds=6, test_size=500, gap=gap)
    previous_test_end = -1
    for f in folds:
        assert len(np.intersect1d(f.fit, f.test)) == 0
        assert len(np.intersect1d(f.val, f.test)) == 0
        assert len(np.intersect1d(f.fit, f.val)) == 0
        assert f.test[0] - f.val[-1] - 1 == gap  # purge + embargo before the test block
        assert f.val[0] - f.fit[-1] - 1 == gap  # and before the validation block
        assert f.fit[-1] + h < f.test[0]  # no training label window reaches the test block
        assert f.test[0] > previous_test_end  # test blocks move forward in time
        assert np.all(np.diff(f.test) == 1)
        previous_test_end = f.test[-1]
    assert folds[-1].test[-1] == 9_999
    # expanding window
    assert all(len(a.train) < len(b.train) for a, b in itertools.pairwise(folds))


def test_too_many_folds_is_refused() -> None:
    with pytest.raises(ValueError, match="fit rows"):
        walk_forward(1000, n_folds=10, test_size=100, gap=30)


def test_embargo_is_at_least_one_trading_day() -> None:
    assert embargo_bars(1, 24) == 24
    assert embargo_bars(48, 24) == 48


def test_shared_file_lockbox_from_2024_07_01_is_untouched(shared_candles: pd.DataFrame) -> None:
    lock = lockbox_mask(pd.DatetimeIndex(shared_candles.index), pd.Timestamp("2024-07-01"))
    assert int(lock.sum()) == 3133
    ds = prepare(
        shared_candles,
        DataSource("csv", "shared", "EURUSD", "H1", "x"),
        cost=CostModel(),
        lockbox_start=pd.Timestamp("2024-07-01"),
    )
    assert ds.index[-1] < pd.Timestamp("2024-07-01")
    # the last dev label (t + 10) still ends before the lockbox
    first_lock_pos = int(np.argmax(lock))
    assert ds.positions[-1] + 10 < first_lock_pos
    assert ds.lockbox_range[2] == 3133
    assert ds.positions[0] == 400  # fixed warm-up
