"""The typed configs of a training run, built once from the command line (`cli.py`) and read by
everything below it; nothing under the CLI sees an argparse namespace. (The ETTh1 reproduction's
config, PaperConfig, sits with its run in informer_paper.py: it carries an InformerConfig.)

Standard library only: `mt5db --help` imports this module and must stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class DataConfig:
    """Where the candles come from, how the development set is cut and costed, and where versions
    are registered."""

    csv: Path | None = None  # an MT5 history export (or a generic dated CSV, see sources.py)
    database_url: str | None = None  # read market_data from here (and register here)
    registry_url: str | None = None  # register model_versions here instead
    symbol: str | None = None  # one symbol per run
    timeframe: str | None = None
    start: datetime | None = None  # first ts read from market_data (inclusive); None = open
    end: datetime | None = None  # last ts read from market_data (exclusive); None = open
    # labels (docs/ml-protocol.md §6.2): a declared round trip when the data has no spread column
    cost_pips: float = 1.0
    slippage_pips: float = 0.0
    pip_size: float = 1e-4
    # lockbox (docs/ml-protocol.md §6.3): bars from this date on, else the last `lockbox_fraction`
    lockbox_start: datetime | None = None
    lockbox_fraction: float = 0.15

    @property
    def registry_dsn(self) -> str | None:
        """The database that receives the model_versions rows, if any."""
        return self.registry_url or self.database_url


@dataclass(frozen=True)
class RFConfig:
    """RandomForestRegressor settings and the walk-forward protocol (report.json's `config`)."""

    n_estimators: int = 200
    max_depth: int | None = None  # None: grown until min_samples_leaf stops them
    min_samples_leaf: int = 20
    max_features: str | float = "sqrt"
    n_folds: int = 8
    test_bars: int = 0  # 0 → one month of bars (22 trading days)
    val_fraction: float = 0.15
    min_trades_val: int = 30
    bootstrap_reps: int = 1000
    leakage_check: bool = True
    seed: int = 0
    n_jobs: int = 2


@dataclass(frozen=True)
class InformerRunConfig:
    """The Informer classifier's run: which config(s), the horizon, folds and Ray Train resources."""

    config: Literal["simple", "advanced", "grid"] = "simple"  # docs/ml-protocol.md §5
    horizon: int = 5
    epochs: int | None = None  # None = the config's own epochs
    max_train_windows: int = 0  # 0 = every training window of a fold
    workers: int = 2  # Ray Train workers; 0 = in-process, no Ray
    use_gpu: bool = False
    n_folds: int = 8  # walk-forward folds of the protocol ...
    informer_folds: int = 3  # ... of which the Informer trains the last N
    test_bars: int = 0  # 0 → one month of bars (22 trading days)
    bootstrap_reps: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """One `mt5db train` run (also `python -m mt5db_training.ray_entry`)."""

    run: str
    model: Literal["rf", "informer"]
    out: Path
    data: DataConfig
    horizons: tuple[int, ...] = (1, 5, 10)  # RF horizons in bars
    rf: RFConfig = field(default_factory=RFConfig)
    informer: InformerRunConfig = field(default_factory=InformerRunConfig)
    # The registry and its gate (docs/training.md, "Registry, gate and aliases").
    promote: Literal["never", "ifBetter", "always"] = "never"
    signal_horizon: int | None = (
        None  # the horizon signals use; None = first beating its baselines, else first
    )
    symbols: tuple[str, ...] = ()  # several: one run (and one version) per symbol; () = data.symbol
    actor: str = ""  # who/what registers and promotes (recorded in the alias history)
