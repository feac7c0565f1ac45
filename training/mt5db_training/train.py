"""The `mt5db train --model rf|informer` driver (also behind `python -m mt5db_training.ray_entry`):
the model's run (rf_run.py / informer_run.py: data → protocol → report and artifacts), then the
registry rows when a database is configured, then the result for the operator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mt5db_training.config import TrainConfig


def run_train(cfg: TrainConfig) -> int:
    """One training run; returns the command's exit status (see register_and_publish)."""
    if cfg.model == "rf":
        from mt5db_training.rf_run import run
    else:
        from mt5db_training.informer_run import run
    report, path = run(cfg)
    return register_and_publish(cfg, report, path)


def register_and_publish(cfg: TrainConfig, report: dict[str, Any], path: Path) -> int:
    """Last step of both training commands: registry rows (with a database URL), then the result
    for the operator (`<run>-result` ConfigMap when MT5DB_RESULT_CONFIGMAP is set in a pod).

    Returns the command's exit status: 0; 1 when the registry database was never migrated
    (`mt5db migrate` creates model_versions); or publish.PUBLISH_FAILED_EXIT_CODE when the result
    could not be published. The report and artifacts are written before any of these.
    """
    from mt5db_training.publish import publish_run
    from mt5db_training.registry import RegistryNotMigrated, register_run

    versions = None
    dsn = cfg.data.registry_dsn
    if dsn:
        try:
            versions = register_run(dsn, report, path)
        except RegistryNotMigrated as exc:
            print(f"mt5db train: error: {exc}", file=sys.stderr)
            return 1
        print(f"registered: {versions}")
    return publish_run(report, path, versions)
