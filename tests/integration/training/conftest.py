"""Real candles shipped inside a PyPI wheel (docs/ml-protocol.md §8), located without importing the
package and sha256-checked. backtesting is AGPL: read in place, never copied."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mt5db_training.data import file_sha256

BACKTESTING_SHA256 = "81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82"


@pytest.fixture(scope="session")
def backtesting_csv() -> Path:
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("backtesting is not installed (it is a dev dependency)", pytrace=False)
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "EURUSD.csv"
    assert file_sha256(path) == BACKTESTING_SHA256
    return path
