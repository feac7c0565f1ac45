"""Candle files: MT5 history exports go through the platform's one parser, the generic test layouts
through read_dated_csv, and anything else is refused with what was expected."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mt5db_core.market.mt5files import HistoryFormatError
from mt5db_training.sources import read_candle_file, read_dated_csv


def test_both_mt5_export_layouts_read_the_same_bars(tmp_path: Path) -> None:
    comma = tmp_path / "EURUSD_H1.csv"
    comma.write_text("Date,Time,Open,High,Low,Close,Volume\n2021.10.18,00:00,1.16,1.17,1.15,1.165,42\n")
    tab = tmp_path / "EURUSD_H1.tsv"
    tab.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2021.10.18\t00:00:00\t1.16\t1.17\t1.15\t1.165\t42\t0\t3\n"
    )
    a, b = read_candle_file(comma), read_candle_file(tab)
    pd.testing.assert_frame_equal(a, b)
    assert a.index[0] == pd.Timestamp("2021-10-18 00:00") and a.index.name == "ts"
    assert a.iloc[0].tolist() == [1.16, 1.17, 1.15, 1.165, 42.0]


def test_generic_layouts_keep_their_own_columns(tmp_path: Path) -> None:
    dukascopy = tmp_path / "ask.csv"
    dukascopy.write_text(
        "Time,Open,High,Low,Close,Volume\n01.01.2017 22:00:00.000,1.05,1.06,1.04,1.055,1e8\n"
    )
    assert read_candle_file(dukascopy).index[0] == pd.Timestamp("2017-01-01 22:00")
    ett = tmp_path / "ett.csv"
    ett.write_text("date,HUFL,OT\n2016-07-01 00:00:00,5.8,30.5\n")
    frame = read_dated_csv(ett)
    assert list(frame.columns) == ["HUFL", "OT"] and frame.index[0] == pd.Timestamp("2016-07-01")
    with pytest.raises(ValueError, match="missing columns"):
        read_candle_file(ett)  # a dated series, but not candles


def test_an_unknown_layout_is_refused_by_the_mt5_parser(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("when,price\n2021-01-01,1.1\n")
    with pytest.raises(HistoryFormatError, match="expected an MT5 history export"):
        read_candle_file(odd)
