"""The operator's own Prometheus instruments, in a registry owned by one operator instance.

(The API's ingest metrics, which the generated rules and dashboards query, are the API's.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.reconciles = Counter(
            "mt5db_operator_reconciles_total",
            "Reconcile passes by kind and trigger.",
            ["kind", "trigger"],
            registry=self.registry,
        )
        self.errors = Counter(
            "mt5db_operator_reconcile_errors_total",
            "Reconcile passes that raised, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mt5db_operator_reconcile_duration_seconds",
            "Wall time of one reconcile pass, by kind.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.applies = Counter(
            "mt5db_operator_applies_total",
            "Server-side applies of children, by child kind.",
            ["kind"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "mt5db_operator_training_run_duration_seconds",
            "Start-to-finish time of TrainingRuns, by backend and outcome (observed once per run).",
            ["backend", "phase"],
            buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
            registry=self.registry,
        )
        self.last_backup = Gauge(
            "mt5db_operator_last_backup_success_timestamp_seconds",
            "Completion time of the newest successful backup Job per policy.",
            ["namespace", "policy"],
            registry=self.registry,
        )
        self.last_verified = Gauge(
            "mt5db_operator_last_backup_verified_timestamp_seconds",
            "Completion time of the newest successful backup Job per policy that ran with --verify "
            "(its dump was restored into a scratch database and compared).",
            ["namespace", "policy"],
            registry=self.registry,
        )
