"""The `mt5db train --model rf|informer` driver (also behind `python -m mt5db_training.ray_entry`).

Per symbol (a run over several symbols trains and registers one version per symbol): read the
series' current champion (with a registry and `--promote` other than `never`), the model's run
(rf_run.py / informer_run.py: data → protocol → report and artifact; the champion's recipe is
re-evaluated on the same folds), the gate's decision (gate.py), then the version and its alias
change in one registry transaction. Last, one result for the operator covering every symbol.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from mt5db_training.config import TrainConfig


def run_train(cfg: TrainConfig) -> int:
    """One training run (one or several symbols); returns the command's exit status.

    0; 1 when the registry database was never migrated (`mt5db migrate` creates the registry
    tables); or publish.PUBLISH_FAILED_EXIT_CODE when the result could not be published. The
    report and artifacts of a symbol are written before any of these.
    """
    from mt5db_training.publish import publish_document, run_document
    from mt5db_training.registry import RegistryNotMigrated

    symbols = cfg.symbols or (cfg.data.symbol,)
    results: list[tuple[dict[str, Any], Any]] = []
    for symbol in symbols:
        one = (
            cfg
            if len(symbols) == 1
            else replace(cfg, data=replace(cfg.data, symbol=symbol), out=cfg.out / str(symbol))
        )
        if len(symbols) > 1:
            print(f"== {symbol} ({len(results) + 1}/{len(symbols)}) ==", flush=True)
        try:
            results.append(train_symbol(one))
        except RegistryNotMigrated as exc:
            print(f"mt5db train: error: {exc}", file=sys.stderr)
            return 1
    return publish_document(run_document(results), cfg.out)


def train_symbol(cfg: TrainConfig) -> tuple[dict[str, Any], Any]:
    """Champion → run → gate → registry for one symbol; returns (report, Registered or None)."""
    from mt5db_training.dataset import series_of
    from mt5db_training.gate import decide
    from mt5db_training.registry import read_champion, register_run

    if cfg.model == "rf":
        from mt5db_training.rf_run import run
    else:
        from mt5db_training.informer_run import run
    kind = "rf" if cfg.model == "rf" else "informer"
    dsn = cfg.data.registry_dsn
    champion = None
    if dsn and cfg.promote != "never":
        symbol, timeframe = series_of(cfg.data)
        champion = read_champion(dsn, symbol, timeframe, kind)
        print(f"current champion of {symbol} {timeframe} ({kind}): {champion.label if champion else 'none'}")
    report, path = run(cfg, champion)
    decision = decide(cfg.promote, report, champion.label if champion else None)
    if not dsn:
        print(
            f"gate ({cfg.promote}), not registered (no --database-url or --registry-url): {decision.reason}"
        )
        return report, None
    registered = register_run(
        dsn, report, path, decision, actor=cfg.actor or f"mt5db train --run {cfg.run}",
        expected_champion=champion.version_id if champion else None,
    )  # fmt: skip
    print(
        f"registered: {registered.label} (artifact {report['artifact']['sha256'][:12]}…, signals at h={report['signal']['horizon']})"
    )
    final = replace(decision, alias=registered.alias, action=registered.action, reasons=[registered.reason])
    print(final.line(registered.label), flush=True)
    return report, registered


def register_and_publish(cfg: TrainConfig, report: dict[str, Any], path: Path) -> int:
    """Register one finished report without the gate, then publish its result (kept for callers
    that ran a model themselves)."""
    from mt5db_training.publish import publish_document, result_document
    from mt5db_training.registry import RegistryNotMigrated, register_run

    registered = None
    dsn = cfg.data.registry_dsn
    if dsn:
        try:
            registered = register_run(
                dsn, report, path, None, actor=cfg.actor or f"mt5db train --run {cfg.run}"
            )
        except RegistryNotMigrated as exc:
            print(f"mt5db train: error: {exc}", file=sys.stderr)
            return 1
        print(f"registered: {registered.label}")
    return publish_document(result_document(report, registered=registered), path.parent)
