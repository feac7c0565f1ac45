"""Labels, defined once (docs/ml-protocol.md §6.2). The decision is taken at the close of bar t and the
trade is entered at the open of bar t+1, so nothing known only after t's close enters t's row.

- regression: r_h[t] = ln(close[t+h] / open[t+1])
- classification: y_h[t] = 1[(close[t+h] - open[t+1]) - cost_t > 0], the long trade net of cost.

cost_t is the bar's spread (MT5 points × point size) when the data has a spread column, else a
declared constant per round trip (default 1 pip for EURUSD) — reported in every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

HORIZONS = (1, 5, 10)
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CostModel:
    """Round-trip trading cost in price units; `spread` column (points) wins when present."""

    pip: float = 1e-4  # EURUSD: 1 pip = 0.0001
    point: float = 1e-5  # 5-digit quotes: MT5 `spread` is in points
    cost_pips: float = 1.0  # declared round trip when there is no spread column
    slippage_pips: float = 0.0

    def per_bar(self, candles: pd.DataFrame) -> F64:
        """Cost of a round trip entered at each bar's next open, in price units."""
        base = np.full(len(candles), self.cost_pips * self.pip)
        if "spread" in candles.columns:
            spread = candles["spread"].to_numpy(np.float64) * self.point
            base = np.where(np.isnan(spread), base, spread)
        return base + self.slippage_pips * self.pip


def gross_move(candles: pd.DataFrame, h: int) -> F64:
    """close[t+h] - open[t+1] in price units; NaN where t+h is past the end."""
    opn = candles["open"].to_numpy(np.float64)
    close = candles["close"].to_numpy(np.float64)
    out = np.full(len(candles), np.nan)
    if len(candles) > h:
        out[: len(candles) - h] = close[h:] - opn[1 : len(candles) - h + 1]
    return out


def forward_log_return(candles: pd.DataFrame, h: int) -> F64:
    """r_h[t] = ln(close[t+h] / open[t+1]); NaN where t+h is past the end."""
    opn = candles["open"].to_numpy(np.float64)
    close = candles["close"].to_numpy(np.float64)
    out = np.full(len(candles), np.nan)
    if len(candles) > h:
        out[: len(candles) - h] = np.log(close[h:] / opn[1 : len(candles) - h + 1])
    return out


def direction_label(candles: pd.DataFrame, h: int, cost: CostModel) -> F64:
    """1.0 when a long entered at open[t+1] and closed at close[t+h] wins net of cost, else 0.0; NaN at the end."""
    move = gross_move(candles, h)
    y = (move - cost.per_bar(candles) > 0).astype(np.float64)
    y[np.isnan(move)] = np.nan
    return y


def make_targets(
    candles: pd.DataFrame, cost: CostModel, horizons: tuple[int, ...] = HORIZONS
) -> pd.DataFrame:
    """ret_fwd_{h} and up_net_{h} for each horizon, aligned with `candles.index`."""
    cols: dict[str, F64] = {}
    for h in horizons:
        cols[f"ret_fwd_{h}"] = forward_log_return(candles, h)
        cols[f"up_net_{h}"] = direction_label(candles, h, cost)
    return pd.DataFrame(cols, index=candles.index)
