"""Label definitions on a hand-made series: entry at the next open, horizon h, net of cost."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mt5db_training.targets import CostModel, direction_label, forward_log_return, gross_move, make_targets


def hand_made() -> pd.DataFrame:
    opn = np.array([1.0000, 1.0010, 1.0020, 1.0005, 1.0030, 1.0040])
    close = np.array([1.0008, 1.0018, 1.0004, 1.0029, 1.0041, 1.0035])
    return pd.DataFrame(
        {
            "open": opn,
            "high": np.maximum(opn, close) + 1e-4,
            "low": np.minimum(opn, close) - 1e-4,
            "close": close,
            "volume": 1.0,
        },
        index=pd.date_range("2024-01-01", periods=6, freq="h"),
    )


def test_forward_return_enters_at_next_open() -> None:
    d = hand_made()
    r1 = forward_log_return(d, 1)
    # decision at the close of bar 0, entry open[1] = 1.0010, exit close[1] = 1.0018
    assert np.isclose(r1[0], np.log(1.0018 / 1.0010))
    r2 = forward_log_return(d, 2)
    assert np.isclose(r2[0], np.log(1.0004 / 1.0010))
    assert np.isclose(r2[3], np.log(1.0035 / 1.0030))
    assert np.isnan(r2[4]) and np.isnan(r2[5])


def test_direction_label_is_net_of_cost() -> None:
    d = hand_made()
    one_pip = CostModel(cost_pips=1.0)
    # bar 0, h=1: move +0.0008 > 1 pip → 1 ; bar 1, h=1: close[2]-open[2] = -0.0016 → 0
    y = direction_label(d, 1, one_pip)
    assert y[0] == 1.0 and y[1] == 0.0
    # bar 2, h=1: close[3] - open[3] = 1.0029 - 1.0005 = +24 pips gross
    assert direction_label(d, 1, CostModel(cost_pips=20.0))[2] == 1.0
    assert direction_label(d, 1, CostModel(cost_pips=30.0))[2] == 0.0
    assert np.isnan(y[-1])


def test_spread_column_overrides_the_declared_cost() -> None:
    d = hand_made()
    d["spread"] = 90.0  # points: 9 pips on a 5-digit quote
    cost = CostModel(cost_pips=1.0)
    assert np.allclose(cost.per_bar(d), 9e-4)
    assert direction_label(d, 1, cost)[0] == 0.0  # +8 pips gross < 9 pips spread


def test_make_targets_columns_and_gross_move() -> None:
    d = hand_made()
    t = make_targets(d, CostModel(), (1, 2))
    assert list(t.columns) == ["ret_fwd_1", "up_net_1", "ret_fwd_2", "up_net_2"]
    assert np.isclose(gross_move(d, 2)[1], 1.0029 - 1.0020)


def test_future_change_moves_only_labels_that_reach_it() -> None:
    d = hand_made()
    before = forward_log_return(d, 2)
    d.iloc[5, d.columns.get_loc("close")] = 2.0
    after = forward_log_return(d, 2)
    # only t=3 (exit close[5]) sees bar 5
    assert np.array_equal(before[:3], after[:3])
    assert before[3] != after[3]
