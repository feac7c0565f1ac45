"""Real EUR/USD H1 candles for the training tests: the project's shared file and two CSVs that ship
inside PyPI wheels (docs/ml-protocol.md §8), located without importing their packages, sha256 pinned.
The backtesting CSV is AGPL: it is read from the installed package and never copied anywhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from mt5db_core.digest import file_sha256
from mt5db_training.sources import load_csv

SHARED_SHA256 = "e734738464c2074bc91d95dc63c86804238889e760a8c8e465da162751b73cd2"
GYM_SHA256 = "28398b7edff9f74860d35a6f3c263f08e15c55264316dc07737d459d8688d7aa"
BACKTESTING_SHA256 = "81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82"


def package_file(package: str, relative: str, sha256: str) -> Path:
    """A data file inside an installed package, found via find_spec (no import), hash-checked."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"{package} is not installed (it is a dev dependency)", pytrace=False)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    assert file_sha256(path) == sha256, f"{path.name} changed: sha256 mismatch"
    return path


@pytest.fixture(scope="session")
def shared_csv(eurusd_h1_csv: Path) -> Path:
    assert file_sha256(eurusd_h1_csv) == SHARED_SHA256
    return eurusd_h1_csv


@pytest.fixture(scope="session")
def shared_candles(shared_csv: Path) -> pd.DataFrame:
    return load_csv(shared_csv)


@pytest.fixture(scope="session")
def gym_csv() -> Path:
    return package_file("gym_anytrading", "datasets/data/FOREX_EURUSD_1H_ASK.csv", GYM_SHA256)


@pytest.fixture(scope="session")
def gym_candles(gym_csv: Path) -> pd.DataFrame:
    return load_csv(gym_csv)


@pytest.fixture(scope="session")
def backtesting_csv() -> Path:
    return package_file("backtesting", "test/EURUSD.csv", BACKTESTING_SHA256)


@pytest.fixture(scope="session")
def backtesting_candles(backtesting_csv: Path) -> pd.DataFrame:
    return load_csv(backtesting_csv)
