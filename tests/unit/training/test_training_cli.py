"""`mt5db train` is registered through the entry point and stays cheap to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mt5db_core.cli import build_parser


def test_train_subcommands_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["train", "--model", "informer", "--config", "simple", "--csv", "x.csv", "--workers", "2"]
    )
    assert args.model == "informer" and args.workers == 2 and callable(args.handler)
    paper = parser.parse_args(["train", "informer-paper", "--csv", "ETTh1.csv", "--features", "M"])
    assert paper.train_command == "informer-paper"
    assert (paper.d_model, paper.n_heads, paper.e_layers, paper.d_layers, paper.d_ff) == (512, 8, 2, 1, 2048)
    assert (paper.factor, paper.dropout, paper.batch_size, paper.lr, paper.epochs, paper.patience) == (
        5,
        0.05,
        32,
        1e-4,
        6,
        3,
    )
    assert paper.attn == "prob" and not paper.no_distil and not paper.no_mix
    assert paper.handler is not args.handler


def test_cli_module_imports_no_heavy_libraries() -> None:
    code = "import sys, mt5db_training.cli; print(sorted(m for m in ('torch', 'ray', 'sklearn', 'talib') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


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
