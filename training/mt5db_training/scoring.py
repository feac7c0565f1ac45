"""Out-of-sample metrics, block-bootstrap intervals and the spread-aware backtest (docs/ml-protocol.md §6.5–6.6).

Nothing here looks at the test set to choose anything: thresholds come in as arguments, chosen on
validation by `choose_threshold`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


# -- regression --------------------------------------------------------------------------------


def r2_oos(y: F64, pred: F64) -> float:
    """R²_OOS against the zero forecast: 1 − Σ(y − ŷ)² / Σy² (sklearn's r2_score uses the test mean: look-ahead)."""
    denom = float(np.sum(y**2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / denom if denom > 0 else float("nan")


def mae(y: F64, pred: F64) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(y - pred)))


def directional_accuracy(y: F64, pred: F64) -> float:
    """Share of rows where sign(ŷ) == sign(y), zeros excluded."""
    keep = (y != 0) & (pred != 0)
    return float(np.mean(np.sign(y[keep]) == np.sign(pred[keep]))) if keep.any() else float("nan")


def spearman_ic(y: F64, pred: F64) -> float:
    """Rank correlation of forecast and outcome (information coefficient)."""
    if np.std(pred) == 0 or np.std(y) == 0:
        return float("nan")
    ry = pd.Series(y).rank().to_numpy()
    rp = pd.Series(pred).rank().to_numpy()
    return float(np.corrcoef(ry, rp)[0, 1])


# -- classification ----------------------------------------------------------------------------


def auc(y: F64, score: F64) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks); NaN with one class."""
    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def brier(y: F64, p: F64) -> float:
    """Mean squared error of probabilities."""
    return float(np.mean((p - y) ** 2))


def log_loss(y: F64, p: F64) -> float:
    """Binary cross-entropy with probabilities clipped to [1e-7, 1 − 1e-7]."""
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier_skill(y: F64, p: F64, prior: float) -> float:
    """1 − Brier(model) / Brier(constant prior); > 0 means better than climatology."""
    ref = brier(y, np.full_like(p, prior))
    return 1.0 - brier(y, p) / ref if ref > 0 else float("nan")


def reliability(y: F64, p: F64, bins: int = 10) -> dict[str, list[float]]:
    """Calibration curve: mean predicted vs observed frequency per quantile bin."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    pred, obs, count = [], [], []
    for b in range(max(len(edges) - 1, 1)):
        sel = which == b
        if sel.any():
            pred.append(float(p[sel].mean()))
            obs.append(float(y[sel].mean()))
            count.append(float(sel.sum()))
    return {"predicted": pred, "observed": obs, "count": count}


# -- block bootstrap ---------------------------------------------------------------------------


def block_ids(index: pd.DatetimeIndex, block: str = "W") -> I64:
    """Integer id of each row's calendar block (`D` day or `W` week) for the block bootstrap."""
    ns = pd.DatetimeIndex(index).as_unit("ns").asi8
    days = ns // 86_400_000_000_000
    ids = (days + 3) // 7 if block == "W" else days  # weeks start on Monday
    _, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.int64)


def block_bootstrap_ci(
    metric: Callable[[I64], F64],
    blocks: I64,
    *,
    reps: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[F64, F64]:
    """Percentile interval of each entry of `metric(rows)` when whole blocks are resampled with replacement.

    `metric` maps row positions to a vector of statistics, so one resampling pass serves several
    metrics (and their differences) consistently.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(blocks, kind="stable")
    counts = np.bincount(blocks)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_blocks = len(counts)
    draws = []
    for _ in range(reps):
        pick = rng.integers(0, n_blocks, n_blocks)
        rows = np.concatenate([order[starts[b] : starts[b] + counts[b]] for b in pick])
        draws.append(np.atleast_1d(metric(rows)))
    values = np.vstack(draws)
    alpha = (1 - level) / 2
    lo = np.nanquantile(values, alpha, axis=0)
    hi = np.nanquantile(values, 1 - alpha, axis=0)
    return lo.astype(np.float64), hi.astype(np.float64)


# -- thresholds and the backtest ---------------------------------------------------------------


@dataclass
class Backtest:
    """Summary of non-overlapping trades entered at the next open and held h bars, net of cost."""

    trades: int
    hit_rate: float
    mean_net_pips: float
    total_net_pips: float
    max_drawdown_pips: float
    sharpe_annualised: float
    turnover_per_1000_bars: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict for report.json."""
        return {k: float(v) for k, v in asdict(self).items()}


def trade_pnl(signal: npt.NDArray[np.int8], gross_pips: F64, cost_pips: F64, horizon: int) -> tuple[F64, F64]:
    """Per-bar net pips (booked on the exit bar) and per-trade net pips of non-overlapping trades.

    `signal[t]` ∈ {−1, 0, +1} is decided at t's close; the trade runs open[t+1] → close[t+h], so
    a new trade can start only at t' >= t + h.
    """
    n = len(signal)
    per_bar = np.zeros(n)
    trades: list[float] = []
    t = 0
    while t < n:
        s = int(signal[t])
        if s != 0 and not np.isnan(gross_pips[t]):
            pnl = s * gross_pips[t] - cost_pips[t]
            trades.append(pnl)
            per_bar[min(t + horizon, n - 1)] += pnl
            t += horizon
        else:
            t += 1
    return per_bar, np.asarray(trades, dtype=np.float64)


def backtest(
    signal: npt.NDArray[np.int8], gross_pips: F64, cost_pips: F64, horizon: int, bars_per_year: float
) -> tuple[Backtest, F64]:
    """Backtest summary and equity curve (cumulative net pips per bar)."""
    per_bar, trades = trade_pnl(signal, gross_pips, cost_pips, horizon)
    equity = np.cumsum(per_bar)
    peak = np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:]
    sd = float(np.std(per_bar))
    summary = Backtest(
        trades=len(trades),
        hit_rate=float(np.mean(trades > 0)) if len(trades) else float("nan"),
        mean_net_pips=float(np.mean(trades)) if len(trades) else 0.0,
        total_net_pips=float(np.sum(trades)),
        max_drawdown_pips=float(np.max(peak - equity)) if len(equity) else 0.0,
        sharpe_annualised=float(np.mean(per_bar) / sd * np.sqrt(bars_per_year)) if sd > 0 else 0.0,
        turnover_per_1000_bars=1000.0 * len(trades) / max(len(signal), 1),
    )
    return summary, equity


def choose_threshold(
    p_val: F64, gross_pips_val: F64, cost_pips_val: F64, horizon: int, *, min_trades: int = 30
) -> float:
    """Long-only probability threshold that maximises net pips on validation with ≥ min_trades trades.

    Falls back to 0.5 when no candidate reaches min_trades. Never sees the test block.
    """
    best, best_thr = -np.inf, 0.5
    for thr in np.unique(np.quantile(p_val, np.linspace(0.5, 0.98, 25))):
        signal = (p_val > thr).astype(np.int8)
        _, trades = trade_pnl(signal, gross_pips_val, cost_pips_val, horizon)
        if len(trades) >= min_trades and trades.sum() > best:
            best, best_thr = float(trades.sum()), float(thr)
    return best_thr


def precision_at(y: F64, p: F64, thr: float) -> dict[str, float]:
    """Precision, recall and coverage of the rule p > thr."""
    sel = p > thr
    tp = float(np.sum(sel & (y == 1)))
    return {
        "threshold": thr,
        "precision": tp / float(sel.sum()) if sel.any() else float("nan"),
        "recall": tp / float(np.sum(y == 1)) if np.any(y == 1) else float("nan"),
        "coverage": float(sel.mean()),
    }
