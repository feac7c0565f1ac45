"""`python -m mt5db_training.ray_entry`: the RayJob entrypoint runs the same training as `mt5db train`
and takes what the operator's TrainingRun passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_ray_entry_requires_a_run_name_and_runs_the_same_training(
    backtesting_csv: Path, tmp_path: Path
) -> None:
    from mt5db_training import ray_entry

    with pytest.raises(SystemExit):
        ray_entry.main(["--model", "rf", "--csv", str(backtesting_csv)])
    argv = ["--run", "job-1", "--model", "rf", "--csv", str(backtesting_csv), "--out", str(tmp_path / "job")]
    argv += [
        "--horizons",
        "1",
        "--n-estimators",
        "5",
        "--folds",
        "2",
        "--test-bars",
        "300",
        "--bootstrap-reps",
        "50",
    ]
    argv += ["--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1"]
    assert ray_entry.main(argv) == 0
    report = json.loads((tmp_path / "job" / "report.json").read_text())
    assert report["run"] == "job-1" and report["algo"] == "random_forest"


def test_entrypoints_accept_the_operators_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """What mt5db_operator's TrainingRunSpec.train_args() passes (`--model randomForest`, ...)."""
    import argparse

    from mt5db_training import ray_entry
    from mt5db_training.cli import add_train_arguments, check_train_arguments

    monkeypatch.setenv("MT5DB_DATABASE_URL", "postgresql://u@db/x")
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(
        ["--run", "r", "--model", "randomForest", "--config", "simple", "--symbols", "EURUSD",
         "--timeframe", "H1", "--promote", "ifBetter", "--start", "2022-01-01", "--end", "2024-01-01"]
    )  # fmt: skip
    assert check_train_arguments(args) is None
    assert (args.model, args.symbol, args.promote) == ("rf", "EURUSD", "ifBetter")
    assert args.database_url == "postgresql://u@db/x" and args.symbols == ()
    # Several symbols (examples/trainingrun.yaml): one run and one version per symbol.
    several = parser.parse_args(["--run", "r", "--symbols", "EURUSD,GBPUSD", "--timeframe", "H1"])
    assert check_train_arguments(several) is None
    assert several.symbols == ("EURUSD", "GBPUSD") and several.symbol == "EURUSD"
    # A CSV holds one series: several symbols with one is a config error (exit 2, not retried).
    with pytest.raises(SystemExit) as exc:
        ray_entry.main(["--run", "r", "--csv", "x.csv", "--symbols", "EURUSD,GBPUSD", "--timeframe", "H1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        ray_entry.main(["--run", "r", "--symbols", "EURUSD,EURUSD", "--timeframe", "H1"])
    assert exc.value.code == 2
