"""`mt5db train` (the training component's subcommands). Cheap to import: torch, ray and sklearn are
imported inside the handlers only.

    mt5db train --model rf --csv PATH                      RandomForest, horizons 1,5,10
    mt5db train --model informer --config simple --csv PATH
    mt5db train --model rf --database-url URL --symbol EURUSD --timeframe H1
    mt5db train informer-paper --csv ETTh1.csv --features M  the paper's ETTh1 protocol

This is the only module that reads an argparse namespace: `train_config` and `paper_config` turn
it into the typed configs (config.py; informer_paper.PaperConfig), once, and the commands below
see only those.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mt5db_training.config import DataConfig, InformerRunConfig, RFConfig, TrainConfig

if TYPE_CHECKING:
    from mt5db_training.informer_paper import PaperConfig

MODEL_ALIASES = {"randomForest": "rf"}  # the TrainingRun's spec.model.type spelling


def _model(value: str) -> str:
    return MODEL_ALIASES.get(value, value)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of a training run (shared by `mt5db train` and `python -m mt5db_training.ray_entry`).

    Also accepts what the operator's TrainingRun passes (`--model randomForest`, `--symbols A`,
    `--promote`) and reads `MT5DB_DATABASE_URL` (set from the stack's Secret in its pods) when
    `--database-url` is not given.
    """
    p.add_argument(
        "--model", type=_model, choices=["rf", "informer"], default="rf", help="algorithm (default rf)"
    )
    p.add_argument(
        "--config",
        choices=["simple", "advanced", "grid"],
        default="simple",
        help="Informer config (docs/ml-protocol.md §5)",
    )
    p.add_argument("--run", default=None, help="run name (default <model>-<config>-<utc time>)")
    p.add_argument("--out", default=None, help="output directory (default runs/<run>)")
    src = p.add_argument_group("data")
    src.add_argument("--csv", default=None, help="MT5 history export (Date,Time,Open,High,Low,Close,Volume)")
    src.add_argument(
        "--database-url",
        default=os.environ.get("MT5DB_DATABASE_URL") or None,
        help="PostgreSQL DSN: read market_data and register the version (default $MT5DB_DATABASE_URL)",
    )
    src.add_argument("--registry-url", default=None, help="PostgreSQL DSN for model_versions only")
    src.add_argument(
        "--symbol",
        "--symbols",
        dest="symbol",
        default=None,
        help="symbol, or a comma list (from market_data: one run and one version per symbol)",
    )
    src.add_argument("--timeframe", default=None)
    src.add_argument("--start", default=None, help="first ts (inclusive) read from market_data")
    src.add_argument("--end", default=None, help="last ts (exclusive) read from market_data")
    proto = p.add_argument_group("protocol")
    proto.add_argument("--horizons", default="1,5,10", help="RF horizons in bars")
    proto.add_argument("--horizon", type=int, default=5, help="Informer classifier horizon in bars")
    proto.add_argument("--folds", type=int, default=8, help="walk-forward folds (test blocks)")
    proto.add_argument("--test-bars", type=int, default=0, help="test block length (0 = 22 trading days)")
    proto.add_argument(
        "--lockbox-start",
        default="2024-07-01",
        help="lockbox = bars from this date on ('' = last --lockbox-fraction)",
    )
    proto.add_argument("--lockbox-fraction", type=float, default=0.15)
    proto.add_argument(
        "--cost-pips", type=float, default=1.0, help="declared round-trip cost when there is no spread column"
    )
    proto.add_argument("--slippage-pips", type=float, default=0.0)
    proto.add_argument("--pip-size", type=float, default=1e-4)
    proto.add_argument("--bootstrap-reps", type=int, default=1000)
    proto.add_argument("--seed", type=int, default=0)
    rf = p.add_argument_group("random forest")
    rf.add_argument("--n-estimators", type=int, default=200)
    rf.add_argument("--max-depth", type=int, default=None, help="tree depth limit (default none)")
    rf.add_argument("--min-samples-leaf", type=int, default=20)
    rf.add_argument("--n-jobs", type=int, default=2)
    rf.add_argument("--no-leakage-check", action="store_true", help="skip the shuffled-K-fold comparison")
    p.add_argument(
        "--promote",
        choices=["never", "ifBetter", "always"],
        default="never",
        help="the gate: ifBetter promotes a version beating its baselines and the champion on the same "
        "folds (else challenger); always promotes and records the override; never registers only",
    )
    p.add_argument(
        "--signal-horizon",
        type=int,
        default=None,
        help="horizon whose forecast drives signals (default: first beating its baselines, else first)",
    )
    inf = p.add_argument_group("informer")
    inf.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    inf.add_argument(
        "--max-train-windows", type=int, default=0, help="subsample training windows per fold (CPU)"
    )
    inf.add_argument("--workers", type=int, default=2, help="Ray Train workers (0 = in-process, no Ray)")
    inf.add_argument("--use-gpu", action="store_true")
    inf.add_argument(
        "--informer-folds",
        type=int,
        default=3,
        help="walk-forward folds for the Informer (the last N of --folds)",
    )


def check_train_arguments(args: argparse.Namespace) -> str | None:
    """What a run cannot do, as an error message (callers exit 2: a config error, which the
    operator's Job does not retry); `--symbols A,B` becomes `args.symbols` (one run per symbol)."""
    symbols = [s.strip() for s in (args.symbol or "").split(",") if s.strip()]
    if len(set(symbols)) != len(symbols):
        return f"a symbol is listed twice: {args.symbol}"
    args.symbols = tuple(symbols) if len(symbols) > 1 else ()
    args.symbol = symbols[0] if symbols else None
    if args.symbols and args.csv:
        return f"a CSV holds one series; several symbols ({','.join(symbols)}) need --database-url"
    return None


def _actor() -> str:
    """Who or what trains: the TrainingRun (in its pods), else the local user."""
    run = os.environ.get("MT5DB_RUN_NAME")
    if run:
        return f"TrainingRun {run}"
    import getpass

    try:
        return f"mt5db train by {getpass.getuser()}"
    except (KeyError, OSError):
        return "mt5db train"


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The typed config of one run, from checked `add_train_arguments` options.

    `--run` defaults to `<model>-<config>-<utc time>` and `--out` to `runs/<run>`.
    """
    from datetime import UTC, datetime

    import pandas as pd

    def utc(value: str | None) -> datetime | None:
        return pd.Timestamp(value, tz="UTC").to_pydatetime() if value else None

    run = args.run or f"{args.model}-{args.config}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    data = DataConfig(
        csv=Path(args.csv) if args.csv else None,
        database_url=args.database_url,
        registry_url=args.registry_url,
        symbol=args.symbol,
        timeframe=args.timeframe,
        start=utc(args.start),
        end=utc(args.end),
        cost_pips=args.cost_pips,
        slippage_pips=args.slippage_pips,
        pip_size=args.pip_size,
        lockbox_start=pd.Timestamp(args.lockbox_start).to_pydatetime() if args.lockbox_start else None,
        lockbox_fraction=args.lockbox_fraction,
    )
    rf = RFConfig(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        min_samples_leaf=args.min_samples_leaf,
        n_folds=args.folds,
        test_bars=args.test_bars,
        bootstrap_reps=args.bootstrap_reps,
        leakage_check=not args.no_leakage_check,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    informer = InformerRunConfig(
        config=args.config,
        horizon=args.horizon,
        epochs=args.epochs,
        max_train_windows=args.max_train_windows,
        workers=args.workers,
        use_gpu=args.use_gpu,
        n_folds=args.folds,
        informer_folds=args.informer_folds,
        test_bars=args.test_bars,
        bootstrap_reps=args.bootstrap_reps,
        seed=args.seed,
    )
    return TrainConfig(
        run=run,
        model=args.model,
        out=Path(args.out or f"runs/{run}"),
        data=data,
        horizons=tuple(int(h) for h in args.horizons.split(",")),
        rf=rf,
        informer=informer,
        promote=args.promote,
        signal_horizon=args.signal_horizon,
        symbols=tuple(getattr(args, "symbols", ())),
        actor=_actor(),
    )


def add_paper_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ETTh1 reproduction; defaults = the reference CLI (docs/ml-protocol.md §2)."""
    p.add_argument("--csv", required=True, help="ETTh1-shaped CSV: date + channels")
    p.add_argument("--target", default="OT")
    p.add_argument("--features", choices=["M", "S", "MS"], default="M")
    p.add_argument("--seq-len", type=int, default=96)
    p.add_argument("--label-len", type=int, default=48)
    p.add_argument("--pred-len", type=int, default=24)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--n-heads", type=int, default=8)
    p.add_argument("--e-layers", type=int, default=2)
    p.add_argument("--d-layers", type=int, default=1)
    p.add_argument("--d-ff", type=int, default=2048)
    p.add_argument("--factor", type=int, default=5)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--attn", choices=["prob", "full"], default="prob")
    p.add_argument("--no-distil", action="store_true", help="disable self-attention distilling")
    p.add_argument("--no-mix", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--max-train-windows", type=int, default=0, help="subsample training windows (CPU smoke runs)"
    )
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")


def paper_config(args: argparse.Namespace) -> PaperConfig:
    """The typed config of the ETTh1 reproduction; the flags' negatives become positive booleans."""
    from mt5db_training.informer_paper import PaperConfig
    from mt5db_training.models.informer import InformerConfig

    model = InformerConfig(
        seq_len=args.seq_len,
        label_len=args.label_len,
        pred_len=args.pred_len,
        d_model=args.d_model,
        n_heads=args.n_heads,
        e_layers=args.e_layers,
        d_layers=args.d_layers,
        d_ff=args.d_ff,
        factor=args.factor,
        dropout=args.dropout,
        attn=args.attn,
        distil=not args.no_distil,
        mix=not args.no_mix,
    )
    return PaperConfig(
        csv=Path(args.csv),
        model=model,
        target=args.target,
        features=args.features,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        patience=args.patience,
        device=args.device,
        max_train_windows=args.max_train_windows,
        seed=args.seed,
        threads=args.threads,
    )


def _train(args: argparse.Namespace) -> int:
    from mt5db_training.sources import NoCandles
    from mt5db_training.splits import NotEnoughData
    from mt5db_training.train import run_train

    error = check_train_arguments(args)
    if error:
        print(f"mt5db train: error: {error}", file=sys.stderr)
        return 2
    try:
        return run_train(train_config(args))
    except NotEnoughData as exc:
        print(f"mt5db train: error: not enough data for this protocol: {exc}", file=sys.stderr)
        return 2
    except NoCandles as exc:  # a symbol or range that was never ingested: retrying cannot help
        print(f"mt5db train: error: {exc}", file=sys.stderr)
        return 2


def _paper(args: argparse.Namespace) -> int:
    from mt5db_training.informer_paper import run_paper

    return run_paper(paper_config(args))


def _bench(args: argparse.Namespace) -> int:
    from mt5db_training.features import bench_features

    bench_features(args.bars)
    return 0


def register(subparsers: Any) -> None:
    """Add this component's subcommands; keep imports inside handlers (cheap start-up)."""
    train = subparsers.add_parser(
        "train", help="features, RandomForest / Informer, walk-forward report, registry"
    )
    add_train_arguments(train)
    train.set_defaults(handler=_train)
    sub = train.add_subparsers(dest="train_command", metavar="SUBCOMMAND")
    paper = sub.add_parser("informer-paper", help="reproduce the Informer ETTh1 protocol (12/4/4 months)")
    add_paper_arguments(paper)
    paper.set_defaults(handler=_paper)
    bench = sub.add_parser("bench-features", help="time the feature function on synthetic candles")
    bench.add_argument("--bars", type=int, default=1_000_000)
    bench.set_defaults(handler=_bench)
