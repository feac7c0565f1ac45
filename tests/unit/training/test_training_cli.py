"""`mt5db train` is registered through the entry point and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

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
