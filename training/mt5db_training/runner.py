"""`mt5db train --model rf|informer`: load candles, evaluate under purged walk-forward, write the report,
save content-addressed artifacts and, with a database URL, register the version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mt5db_core.digest import file_sha256
from mt5db_core.market.mt5files import series_from_name
from mt5db_training.dataset import Dataset, DataSource, prepare
from mt5db_training.evaluation import code_version, format_tables, write_plots, write_report
from mt5db_training.features import FEATURE_SET_VERSION, WARMUP_BARS
from mt5db_training.sources import DECLARED_CLOCK, frame_sha256, load_candles, read_candle_file
from mt5db_training.targets import CostModel

LABEL_DEFINITION = (
    "regression r_h[t] = ln(close[t+h] / open[t+1]); classification y_h[t] = 1[(close[t+h] - open[t+1]) - cost_t > 0]; "
    "decision at the close of bar t, entry at the open of t+1"
)


def load_source(args: argparse.Namespace) -> tuple[pd.DataFrame, DataSource]:
    """Candles from --csv or from market_data (--database-url, --symbol, --timeframe)."""
    if args.csv:
        path = Path(args.csv)
        symbol, timeframe = series_from_name(path)
        return read_candle_file(path), DataSource(
            "csv",
            path.name,
            args.symbol or symbol or "UNKNOWN",
            args.timeframe or timeframe or "UNKNOWN",
            file_sha256(path),
        )
    if not (args.database_url and args.symbol and args.timeframe):
        raise SystemExit("give --csv PATH, or --database-url with --symbol and --timeframe")
    start = pd.Timestamp(args.start, tz="UTC").to_pydatetime() if args.start else None
    end = pd.Timestamp(args.end, tz="UTC").to_pydatetime() if args.end else None
    candles = load_candles(args.database_url, args.symbol, args.timeframe, start, end)
    return candles, DataSource(
        "market_data",
        f"market_data {args.symbol} {args.timeframe}",
        args.symbol,
        args.timeframe,
        frame_sha256(candles),
    )


def build_dataset(args: argparse.Namespace, horizons: tuple[int, ...]) -> Dataset:
    """Candles → development set with the declared cost model and lockbox."""
    candles, source = load_source(args)
    cost = CostModel(cost_pips=args.cost_pips, pip=args.pip_size, slippage_pips=args.slippage_pips)
    lockbox = pd.Timestamp(args.lockbox_start) if args.lockbox_start else None
    return prepare(
        candles,
        source,
        cost=cost,
        horizons=horizons,
        lockbox_start=lockbox,
        lockbox_fraction=args.lockbox_fraction,
    )


def base_report(
    args: argparse.Namespace, ds: Dataset, algo: str, task: str, config: dict[str, Any], configs_tried: int
) -> dict[str, Any]:
    """Everything a report carries besides the per-horizon blocks."""
    return {
        "run": args.run,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "algo": algo,
        "task": task,
        "code_version": code_version(),
        "config": config,
        "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ],
        "configs_tried": configs_tried,
        "data": {
            "source": ds.source.kind,
            "name": ds.source.name,
            "symbol": ds.source.symbol,
            "timeframe": ds.source.timeframe,
            "sha256": ds.source.sha256,
            "clock": DECLARED_CLOCK,
            "range": f"{ds.full_range[0]} → {ds.full_range[1]} ({ds.full_range[2]} bars)",
            "development_range": f"{ds.index[0]} → {ds.index[-1]} ({len(ds.index)} rows after warm-up/purge)",
            "lockbox": {
                "range": f"{ds.lockbox_range[0]} → {ds.lockbox_range[1]}",
                "rows": ds.lockbox_range[2],
                "evaluated": False,
                "note": "untouched until a release decision; no number in this report uses it",
            },
            "quality": asdict(ds.quality),
        },
        "label": {
            "definition": LABEL_DEFINITION,
            "cost": asdict(ds.cost)
            | {
                "source": "spread column"
                if ds.extra.get("has_spread")
                else "declared constant per round trip"
            },
        },
        "features": {
            "version": FEATURE_SET_VERSION,
            "names": list(ds.features.columns),
            "warmup_bars": WARMUP_BARS,
        },
        "bars_per_year_for_sharpe": ds.bars_per_year,
    }


def overall_verdict(blocks: dict[str, Any]) -> str:
    """'beats baselines at h=…' if any horizon passes, else 'does not beat baselines'."""
    winners = [h for h, b in blocks.items() if b["verdict"] == "beats baselines"]
    return f"beats baselines at h={','.join(winners)}" if winners else "does not beat baselines (any horizon)"


def finish(
    args: argparse.Namespace,
    out: Path,
    report: dict[str, Any],
    oos: dict[int, Any],
    importance: dict[int, dict[str, float] | None],
) -> Path:
    """Plots per horizon, then report.json, then the printed tables."""
    plots: list[str] = []
    for h, block in report["horizons"].items():
        curves = block.pop("_curves")
        plots += write_plots(out, f"h{h}", oos[int(h)], curves, importance.get(int(h)))
    report["plots"] = plots
    report["verdict"] = overall_verdict(report["horizons"])
    path = write_report(out, report)
    print(format_tables(report))
    print(f"report: {path}")
    return path


def run_rf_command(args: argparse.Namespace) -> int:
    """--model rf: three horizons, report, artifacts, optional registry."""
    from mt5db_training.registry import save_sklearn_artifact
    from mt5db_training.rf import RFConfig, run_rf

    started = time.perf_counter()
    horizons = tuple(int(h) for h in args.horizons.split(","))
    ds = build_dataset(args, horizons)
    cfg = RFConfig(
        n_estimators=args.n_estimators,
        min_samples_leaf=args.min_samples_leaf,
        n_folds=args.folds,
        test_bars=args.test_bars,
        bootstrap_reps=args.bootstrap_reps,
        leakage_check=not args.no_leakage_check,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    out = Path(args.out or f"runs/{args.run}")
    out.mkdir(parents=True, exist_ok=True)
    blocks, models, oos = run_rf(ds, cfg, horizons)
    report = base_report(args, ds, "random_forest", "regression", asdict(cfg), configs_tried=1)
    report["horizons"] = blocks
    artifacts = {}
    for h, model in models.items():
        uri, sha = save_sklearn_artifact(model, out)
        artifacts[str(h)] = {"uri": uri, "sha256": sha, "note": "model of the last walk-forward fold"}
    report["artifacts"] = artifacts
    report["seconds"] = round(time.perf_counter() - started, 1)
    path = finish(args, out, report, oos, {h: blocks[str(h)]["feature_importance"] for h in horizons})
    return register_and_publish(args, report, path)


def register_and_publish(args: argparse.Namespace, report: dict[str, Any], path: Path) -> int:
    """Last step of both training commands: registry rows (with a database URL), then the result
    for the operator (`<run>-result` ConfigMap when MT5DB_RESULT_CONFIGMAP is set in a pod).

    Returns the command's exit status: 0; 1 when the registry database was never migrated
    (`mt5db migrate` creates model_versions); or publish.PUBLISH_FAILED_EXIT_CODE when the result
    could not be published. The report and artifacts are written before any of these.
    """
    from mt5db_training.publish import publish_run
    from mt5db_training.registry import RegistryNotMigrated, register_run

    versions = None
    if args.registry_url or args.database_url:
        try:
            versions = register_run(args.registry_url or args.database_url, report, path)
        except RegistryNotMigrated as exc:
            print(f"mt5db train: error: {exc}", file=sys.stderr)
            return 1
        print(f"registered: {versions}")
    return publish_run(report, path, versions)


def run_informer_command(args: argparse.Namespace) -> int:
    """--model informer: the classifier under the same protocol, trained through Ray Train."""
    from mt5db_training.informer_train import run_informer_report

    return run_informer_report(args)
