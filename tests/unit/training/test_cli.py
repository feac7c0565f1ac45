"""`mt5db train` is registered through the entry point, stays cheap to import, and turns its flags
into the typed run config once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from mt5db_core.cli import build_parser
from mt5db_training.cli import paper_config, train_config


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


def test_flags_become_one_typed_config() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["train", "--model", "randomForest", "--csv", "EURUSD_H1.csv", "--folds", "4", "--test-bars", "300",
         "--lockbox-start", "", "--no-leakage-check", "--seed", "7", "--horizons", "1,5",
         "--start", "2022-01-01", "--informer-folds", "2", "--epochs", "3", "--workers", "0"]
    )  # fmt: skip
    cfg = train_config(args)
    assert cfg.model == "rf" and cfg.run.startswith("rf-simple-") and cfg.out == Path("runs") / cfg.run
    assert cfg.horizons == (1, 5)
    assert cfg.data.csv == Path("EURUSD_H1.csv") and cfg.data.lockbox_start is None
    assert cfg.data.start == datetime(2022, 1, 1, tzinfo=UTC) and cfg.data.end is None
    assert (cfg.rf.n_folds, cfg.rf.test_bars, cfg.rf.seed, cfg.rf.leakage_check) == (4, 300, 7, False)
    assert (cfg.informer.n_folds, cfg.informer.informer_folds, cfg.informer.epochs) == (4, 2, 3)
    assert cfg.informer.workers == 0 and cfg.informer.seed == 7
    paper = paper_config(parser.parse_args(["train", "informer-paper", "--csv", "e.csv", "--no-distil"]))
    assert not paper.model.distil and paper.model.mix and paper.model.d_model == 512
