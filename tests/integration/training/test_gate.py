"""The promotion gate through the real `mt5db train` against real PostgreSQL: a planted, learnable
pattern is promoted; the same recipe again ties and stays challenger; the shared EURUSD H1 file does
not beat its baselines and stays challenger with the reason; `always` records the override; a run
over two symbols registers one version per symbol."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest

from mt5db_core.cli import main
from mt5db_harness.synthetic import planted_candles, write_mt5_export

pytestmark = pytest.mark.postgres

FAST = ["--n-estimators", "20", "--folds", "3", "--test-bars", "300", "--bootstrap-reps", "100"]
FAST += ["--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1", "--horizons", "1,5"]


def _sql(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _aliases(dsn: str) -> dict[tuple[str, str], str]:
    rows = _sql(dsn, "SELECT a.symbol, a.alias, v.name || ':v' || v.version AS label FROM model_aliases a "
                     "JOIN model_versions v ON v.id = a.version_id")  # fmt: skip
    return {(r["symbol"], r["alias"]): r["label"] for r in rows}


def _history(dsn: str) -> list[asyncpg.Record]:
    return _sql(dsn, "SELECT alias, action, reason, gate, actor FROM model_alias_history ORDER BY id")


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planted") / "PLANT_H1_synthetic.csv"
    write_mt5_export(planted_candles(3000, seed=1), str(path))
    return path


def _train(csv: Path, dsn: str, out: Path, *extra: str) -> int:
    argv = [
        "train",
        "--model",
        "rf",
        "--csv",
        str(csv),
        "--registry-url",
        dsn,
        "--out",
        str(out),
        *FAST,
        *extra,
    ]
    return main(argv)


def test_a_learnable_pattern_is_promoted_and_the_same_recipe_ties(
    planted_csv: Path, migrated_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = migrated_database_url
    assert _train(planted_csv, dsn, tmp_path / "first", "--run", "first", "--promote", "ifBetter") == 0
    printed = capsys.readouterr().out
    assert "gate (ifBetter): rf_ret_PLANT_H1:v1 PROMOTED to champion" in printed
    assert _aliases(dsn) == {("PLANT", "champion"): "rf_ret_PLANT_H1:v1"}
    report = json.loads((tmp_path / "first" / "report.json").read_text())
    assert report["horizons"]["1"]["verdict"] == "beats baselines" and report["signal"]["horizon"] == 1
    result = json.loads((tmp_path / "first" / "result.json").read_text())
    assert result["modelVersion"] == "rf_ret_PLANT_H1:v1"
    assert result["models"] == [{"symbol": "PLANT", "timeframe": "H1", "version": "rf_ret_PLANT_H1:v1",
                                 "alias": "champion", "promoted": True, "reason": result["models"][0]["reason"]}]  # fmt: skip

    # The identical recipe again: re-evaluated on the same folds, the champion ties → challenger.
    assert _train(planted_csv, dsn, tmp_path / "second", "--run", "second", "--promote", "ifBetter") == 0
    printed = capsys.readouterr().out
    assert "rf_ret_PLANT_H1:v2 NOT promoted, stays challenger" in printed and "ties the champion" in printed
    assert _aliases(dsn) == {
        ("PLANT", "champion"): "rf_ret_PLANT_H1:v1",
        ("PLANT", "challenger"): "rf_ret_PLANT_H1:v2",
    }
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    champ = second["champion_on_same_folds"]
    assert champ["version"] == "rf_ret_PLANT_H1:v1"
    assert (
        champ["backtest"]["total_net_pips"]
        == second["horizons"]["1"]["backtest"]["random_forest"]["total_net_pips"]
    )
    history = _history(dsn)
    assert [(h["alias"], h["action"]) for h in history] == [
        ("champion", "promote"),
        ("challenger", "challenger"),
    ]
    gate = json.loads(history[1]["gate"])
    assert gate["beats_baselines"] is True and gate["beats_champion"] is False
    assert gate["champion"]["version"] == "rf_ret_PLANT_H1:v1"
    assert "ties the champion" in history[1]["reason"]

    # A bigger forest (another recipe) is compared on the same folds; `always` records the override.
    assert _train(planted_csv, dsn, tmp_path / "third", "--run", "third", "--promote", "always",
                  "--n-estimators", "5") == 0  # fmt: skip
    assert "gate overridden (--promote always): rf_ret_PLANT_H1:v3 is champion" in capsys.readouterr().out
    last = _history(dsn)[-1]
    assert last["action"] == "override" and json.loads(last["gate"])["overridden"] is True
    assert _aliases(dsn)[("PLANT", "champion")] == "rf_ret_PLANT_H1:v3"

    # `never` registers only.
    assert _train(planted_csv, dsn, tmp_path / "fourth", "--run", "fourth", "--promote", "never") == 0
    assert "(--promote never: no alias changed)" in capsys.readouterr().out
    assert len(_history(dsn)) == 3

    # A person rolls back to the champion before; the history says who and why.
    assert main(["models", "rollback", "--database-url", dsn, "--symbol", "PLANT", "--timeframe", "H1",
                 "--reason", "the override was a test", "--actor", "ops"]) == 0  # fmt: skip
    assert _aliases(dsn)[("PLANT", "champion")] == "rf_ret_PLANT_H1:v1"
    assert (_history(dsn)[-1]["action"], _history(dsn)[-1]["actor"]) == ("rollback", "ops")


def test_the_shared_file_does_not_beat_its_baselines_and_stays_challenger(
    eurusd_h1_csv: Path, migrated_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--model", "rf", "--csv", str(eurusd_h1_csv), "--registry-url", migrated_database_url]
    argv += ["--out", str(tmp_path / "eurusd"), "--run", "eurusd", "--promote", "ifBetter", "--horizons", "5"]
    argv += [
        "--n-estimators",
        "10",
        "--folds",
        "3",
        "--bootstrap-reps",
        "100",
        "--no-leakage-check",
        "--n-jobs",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "gate (ifBetter): rf_ret_EURUSD_H1:v1 NOT promoted, stays challenger" in printed
    assert "does not beat its baselines after costs at h=5" in printed
    assert _aliases(migrated_database_url) == {("EURUSD", "challenger"): "rf_ret_EURUSD_H1:v1"}
    (entry,) = _history(migrated_database_url)
    assert entry["action"] == "challenger" and "does not beat its baselines" in entry["reason"]
    (row,) = _sql(migrated_database_url, "SELECT verdict, beats_baselines, model_card FROM model_versions")
    assert row["verdict"] == "does not beat baselines" and row["beats_baselines"] is False
    card = json.loads(row["model_card"])
    assert card["verdict_reasons"] and card["artifact"]["fitted_on"].startswith("every development row")


def test_two_symbols_from_market_data_register_one_version_each(
    migrated_database_url: str, tmp_path: Path
) -> None:
    """examples/trainingrun.yaml asks for EURUSD and GBPUSD: one run, one version per symbol."""
    records = []
    for symbol, seed in (("EURUSD", 2), ("GBPUSD", 3)):
        candles = planted_candles(2600, seed=seed)
        for ts, r in zip(candles.index, candles.itertuples(index=False), strict=True):
            records.append((symbol, "H1", pd.Timestamp(ts).to_pydatetime().replace(tzinfo=UTC),
                            r.open, r.high, r.low, r.close, int(r.volume)))  # fmt: skip

    async def seed_rows() -> None:
        conn = await asyncpg.connect(migrated_database_url)
        try:
            await conn.copy_records_to_table(
                "market_data", records=records,
                columns=["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"],
            )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(seed_rows())
    out = tmp_path / "two"
    argv = ["train", "--model", "randomForest", "--database-url", migrated_database_url, "--symbols", "EURUSD,GBPUSD",
            "--timeframe", "H1", "--run", "two", "--out", str(out), "--promote", "ifBetter", *FAST]  # fmt: skip
    assert main(argv) == 0
    assert (out / "EURUSD" / "report.json").is_file() and (out / "GBPUSD" / "report.json").is_file()
    result = json.loads((out / "result.json").read_text())
    assert result["modelVersions"] == {"rf_ret_EURUSD_H1": 1, "rf_ret_GBPUSD_H1": 1}
    assert [(m["symbol"], m["alias"], m["promoted"]) for m in result["models"]] == [
        ("EURUSD", "champion", True), ("GBPUSD", "champion", True)
    ]  # fmt: skip
    assert result["primaryMetric"] == "r2_oos_h1_EURUSD" and "r2_oos_h1_GBPUSD" in result["metrics"]
    assert all(isinstance(v, float) for v in result["metrics"].values())
