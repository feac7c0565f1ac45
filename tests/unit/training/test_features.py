"""The one feature function: cross-checked against an independent implementation on real candles,
warm-up, no look-ahead, gap restarts, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pandas_ta_classic as pta
import pytest

from mt5db_training.features import FEATURES, WARMUP_BARS, compute_features


def reference_features(d: pd.DataFrame) -> dict[str, pd.Series]:
    """The same definitions through pandas-ta-classic with talib=False (not circular: no TA-Lib inside)."""
    o, h, lo, c, v = (d[k] for k in ("open", "high", "low", "close", "volume"))
    del o
    macd = pta.macd(c, 12, 26, 9, talib=False)
    bb = pta.bbands(c, 20, 2, talib=False)
    adx = pta.adx(h, lo, c, 14, talib=False)
    st = pta.stoch(h, lo, c, 14, 3, 3, talib=False)
    ref = {
        "rsi14": pta.rsi(c, 14, talib=False),
        "macd_rel": macd["MACD_12_26_9"] / c,
        "macdhist_rel": macd["MACDh_12_26_9"] / c,
        "bb_pctb": bb["BBP_20_2.0"],
        "bb_width": (bb["BBU_20_2.0"] - bb["BBL_20_2.0"]) / bb["BBM_20_2.0"],
        "atr_rel": pta.atr(h, lo, c, 14, talib=False) / c,
        "adx14": adx["ADX_14"],
        "di_spread": adx["DMP_14"] - adx["DMN_14"],
        "stoch_k": st["STOCHk_14_3_3"],
        "stoch_d": st["STOCHd_14_3_3"],
        "close_ema20": c / pta.ema(c, 20, talib=False) - 1,
        "sma10_sma50": pta.sma(c, 10, talib=False) / pta.sma(c, 50, talib=False) - 1,
        "cci20": pta.cci(h, lo, c, 20, talib=False),
        "willr14": pta.willr(h, lo, c, 14, talib=False),
        "obv_chg10": pta.obv(c, v, talib=False).diff(10) / v.rolling(10).sum(),
        "rvol20": np.log(c).diff().rolling(20).std(ddof=0),
    }
    for n in (1, 5, 10):
        ref[f"roc{n}"] = pta.roc(c, n, talib=False) / 100
    return ref


@pytest.mark.parametrize("which", ["shared_candles", "gym_candles", "backtesting_candles"])
def test_features_match_pandas_ta_classic_after_warmup(which: str, request: pytest.FixtureRequest) -> None:
    candles = request.getfixturevalue(which)
    ours = compute_features(candles)
    # one contiguous segment is needed for a like-for-like comparison (the reference does not restart at gaps)
    assert ours.iloc[WARMUP_BARS:].notna().all().all()
    for name, ref in reference_features(candles).items():
        a = ours[name].to_numpy()[WARMUP_BARS:]
        b = ref.to_numpy()[WARMUP_BARS:]
        scale = max(float(np.nanmax(np.abs(b))), 1e-12)
        assert np.nanmax(np.abs(a - b)) / scale < 1e-9, name


def test_feature_set_is_scale_free_and_complete(shared_candles: pd.DataFrame) -> None:
    feats = compute_features(shared_candles)
    assert list(feats.columns) == list(FEATURES)
    assert len(FEATURES) >= 18
    # scale-free: multiplying every price by 100 changes no feature, except that TA-Lib's ADX and DI
    # move by up to ~2.5 points (measured; TA-Lib compares against a fixed absolute zero tolerance
    # internally, which is not scale-free). docs/training.md records this.
    scaled = shared_candles.copy()
    scaled[["open", "high", "low", "close"]] *= 100.0
    other = compute_features(scaled)
    exact = [c for c in FEATURES if c not in ("adx14", "di_spread")]
    np.testing.assert_allclose(other[exact].to_numpy(), feats[exact].to_numpy(), rtol=1e-7, atol=1e-9)
    assert float((other["adx14"] - feats["adx14"]).abs().max()) < 5.0


def test_warmup_rows_are_nan_and_index_is_aligned(backtesting_candles: pd.DataFrame) -> None:
    feats = compute_features(backtesting_candles)
    assert feats.index.equals(backtesting_candles.index)
    assert feats.iloc[:WARMUP_BARS].isna().all().all()
    assert feats.iloc[WARMUP_BARS:].notna().all().all()


def test_changing_future_bars_leaves_past_features_unchanged(gym_candles: pd.DataFrame) -> None:
    t = 3000
    base = compute_features(gym_candles)
    future = gym_candles.copy()
    rng = np.random.default_rng(1)
    future.iloc[t + 1 :, :4] *= 1 + rng.normal(0, 0.01, (len(future) - t - 1, 1))
    future.iloc[t + 1 :, 4] *= 3.0
    changed = compute_features(future)
    pd.testing.assert_frame_equal(base.iloc[: t + 1], changed.iloc[: t + 1])
    assert not base.iloc[t + 1 :].equals(changed.iloc[t + 1 :])


def test_long_gap_restarts_the_warmup(gym_candles: pd.DataFrame) -> None:
    first = gym_candles.iloc[:1500]
    second = gym_candles.iloc[1500:3000].copy()
    second.index = second.index + pd.Timedelta(days=30)  # a month-long outage
    feats = compute_features(pd.concat([first, second]))
    assert feats.iloc[1500 : 1500 + WARMUP_BARS].isna().all().all()
    assert feats.iloc[1500 + WARMUP_BARS :].notna().all().all()
    # and the second segment equals computing it alone: nothing carried across the gap
    alone = compute_features(second)
    np.testing.assert_allclose(feats.iloc[1500:].to_numpy(), alone.to_numpy(), equal_nan=True)


def test_calendar_features_follow_the_index_clock(backtesting_candles: pd.DataFrame) -> None:
    feats = compute_features(backtesting_candles).dropna()
    hours = feats.index.hour.to_numpy()
    np.testing.assert_allclose(feats["hour_sin"], np.sin(2 * np.pi * hours / 24), atol=1e-12)
    dow = feats.index.day_of_week.to_numpy()
    np.testing.assert_allclose(feats["dow_cos"], np.cos(2 * np.pi * dow / 7), atol=1e-12)


def test_features_are_fast() -> None:
    """200k bars well under a second here; the 1M-bar figure is printed by `mt5db train bench-features`."""
    n = 200_000
    rng = np.random.default_rng(0)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    frame = pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": np.ones(n)},
        index=pd.date_range("2000-01-03", periods=n, freq="h"),
    )
    started = time.perf_counter()
    compute_features(frame)
    assert time.perf_counter() - started < 2.0
