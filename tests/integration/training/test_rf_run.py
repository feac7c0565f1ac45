"""`mt5db train` end to end on real candles shipped in a wheel: report.json contents (every metric beside
its baselines with intervals, data identity, verdict), plots, content-addressed artifacts, registry rows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from mt5db_core.cli import main
from mt5db_core.digest import file_sha256
from mt5db_training.registry import load_sklearn_artifact

pytestmark = pytest.mark.postgres


def test_rf_report_on_backtesting_wheel_csv(
    backtesting_csv: Path, tmp_path: Path, migrated_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = backtesting_csv
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "rf",
        "--csv",
        str(csv),
        "--symbol",
        "EURUSD",
        "--timeframe",
        "H1",
        "--run",
        "t-rf",
        "--out",
        str(out),
    ]
    argv += [
        "--n-estimators",
        "20",
        "--folds",
        "4",
        "--test-bars",
        "400",
        "--bootstrap-reps",
        "200",
        "--lockbox-start",
        "",
        "--n-jobs",
        "1",
    ]
    argv += ["--registry-url", migrated_database_url]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "random_forest" in printed and "always_long" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["sha256"] == file_sha256(csv)
    assert report["data"]["lockbox"]["evaluated"] is False and report["data"]["lockbox"]["rows"] == 750
    assert report["configs_tried"] == 1 and report["code_version"]
    assert len(report["features"]["names"]) >= 18 and report["features"]["warmup_bars"] == 400
    assert "open[t+1]" in report["label"]["definition"]
    assert report["verdict"].startswith(("beats baselines", "does not beat baselines"))
    for h in ("1", "5", "10"):
        block = report["horizons"][h]
        reg = block["regression"]
        assert {"random_forest", "zero", "persistence", "train_mean"} <= set(reg)
        for name in ("random_forest", "persistence", "train_mean"):
            lo, hi = reg[name]["r2_oos_ci95"]
            assert lo <= reg[name]["r2_oos"] <= hi
        cls = block["classification"]
        assert {"random_forest", "logistic_regression", "prior", "always_long"} <= set(cls)
        lo, hi = cls["random_forest"]["auc_ci95"]
        assert lo <= cls["random_forest"]["auc"] <= hi
        assert "brier_skill" in cls["logistic_regression"] and "at_threshold" in cls["logistic_regression"]
        assert {"random_forest", "logistic_regression", "always_long", "always_short", "persistence"} <= set(
            block["backtest"]
        )
        assert {"trades", "hit_rate", "total_net_pips", "max_drawdown_pips", "sharpe_annualised"} <= set(
            block["backtest"]["random_forest"]
        )
        assert block["verdict"] in ("beats baselines", "does not beat baselines")
        assert block["protocol"]["gap_bars"] == int(h) + max(int(h), 24)
        assert "shuffled_5fold_auc" in block["leakage_check"]
        for fold in block["folds"]:
            assert fold["fit"][1] < fold["val"][0] < fold["val"][1] < fold["test"][0]
        art = report["artifacts"][h]
        bundle = load_sklearn_artifact(out / art["uri"], art["sha256"])
        assert bundle["models"][int(h)].n_features_in_ == len(report["features"]["names"])
    for plot in ("roc_h5.png", "calibration_h5.png", "feature_importance_h5.png", "equity_h5.png"):
        assert (out / plot).stat().st_size > 1000
        assert plot in report["plots"]

    async def rows() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(migrated_database_url)
        try:
            return await conn.fetch(
                "SELECT name, version, horizon, data_sha256, artifact_sha256, metrics FROM model_versions ORDER BY horizon"
            )
        finally:
            await conn.close()

    # One version bundles the three horizons: refit on the whole development window.
    (record,) = asyncio.run(rows())
    assert record["name"] == "rf_ret_EURUSD_H1" and record["version"] == 1
    assert record["data_sha256"] == file_sha256(csv) and record["horizon"] == report["signal"]["horizon"]
    assert record["artifact_sha256"] == report["artifact"]["sha256"]
    assert report["artifact"]["fitted_on"].startswith("every development row")
    assert json.loads(record["metrics"])["lockbox"]["evaluated"] is False
