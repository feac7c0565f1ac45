"""Shared fixtures of the training integration tests: real candles shipped inside a PyPI wheel
(docs/ml-protocol.md §8), located without importing the package and sha256-checked (backtesting is
AGPL: read in place, never copied), and a database migrated as `mt5db migrate` does it (training
never creates tables)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import asyncpg
import pytest

from mt5db_api.db.migrations import migrate
from mt5db_core.digest import file_sha256

BACKTESTING_SHA256 = "81e977905a006cc8fbc034ebdb83c999a8ed6ba00191dc7ea5ef5b386fb74a82"


@pytest.fixture(scope="session")
def backtesting_csv() -> Path:
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("backtesting is not installed (it is a dev dependency)", pytrace=False)
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "EURUSD.csv"
    assert file_sha256(path) == BACKTESTING_SHA256
    return path


@pytest.fixture
def migrated_database_url(database_url: str) -> str:
    """A fresh database with the platform's schema (market_data, model_versions, ...); its DSN."""

    async def go() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(go())
    return database_url
