"""Names that more than one module must agree on: API group, kinds, labels, phases, conditions.

Condition types and reasons are CamelCase constants (the Kubernetes `metav1.Condition`
convention); phases are short readable strings from a closed enum declared in the CRDs.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "mt5db.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

TRADINGSTACKS: Final = "tradingstacks"
TRAININGRUNS: Final = "trainingruns"
BACKUPPOLICIES: Final = "backuppolicies"
KIND_STACK: Final = "TradingStack"
KIND_RUN: Final = "TrainingRun"
KIND_POLICY: Final = "BackupPolicy"

# One stable field manager for every server-side apply, so drift correction re-takes exactly
# the fields we own and never touches fields owned by others (the HPA's spec.replicas).
FIELD_MANAGER: Final = "mt5db-operator"
# Creates the API Deployment once with replicas = minReplicas; our applies never mention
# replicas, so that field stays with this manager until the HPA takes it over.
BOOTSTRAP_FIELD_MANAGER: Final = "mt5db-operator-bootstrap"

# Labels on every child; `managed-by` lets the child watchers ignore everything else.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "mt5db-operator"
PART_OF: Final = "mt5db"
# Which stack a child belongs to (network policy peers select on it; the TrainingRun's and
# BackupPolicy's pods carry it so the database lets them in).
LABEL_STACK: Final = "mt5db.io/stack"
LABEL_DB_CLIENT: Final = "mt5db.io/db-client"
LABEL_POLICY: Final = "mt5db.io/backup-policy"
LABEL_RUN: Final = "mt5db.io/training-run"
ANNOTATION_SPEC_HASH: Final = "mt5db.io/spec-hash"

GRAFANA_DASHBOARD_LABEL: Final = "grafana_dashboard"
GRAFANA_FOLDER_ANNOTATION: Final = "grafana_folder"

# Optional integrations, detected by API discovery.
MONITORING_GROUP_VERSION: Final = "monitoring.coreos.com/v1"
RAY_GROUP_VERSION: Final = "ray.io/v1"

# Default images (pinned tags: never :latest).
DEFAULT_DB_IMAGE: Final = "timescale/timescaledb-ha:pg16.6-ts2.17.2-all"
DEFAULT_API_IMAGE: Final = "ghcr.io/mt5db/mt5db-api:0.1.0"
DEFAULT_TRAINING_IMAGE: Final = "ghcr.io/mt5db/mt5db-training:0.1.0"
DEFAULT_RAY_VERSION: Final = "2.49.0"

# Server settings the stack's database needs (docs/operator.md, "Database server settings"):
# `mt5db migrate` creates up to 15 TimescaleDB jobs per database (6 aggregate refreshes, compression,
# retention on 2 tables and 6 aggregates) besides TimescaleDB's own 2, and each running job holds a
# background worker. The defaults (max_worker_processes = 8) left jobs failing to start. Workers:
# every job at once + one scheduler per database (mt5db, postgres, template1) + headroom; the
# process pool: those + parallel query workers + the launcher and one spare.
DB_BACKGROUND_WORKERS: Final = 24
DB_PARALLEL_WORKERS: Final = 4
DB_SERVER_SETTINGS: Final = {
    "max_parallel_workers": str(DB_PARALLEL_WORKERS),
    "max_worker_processes": str(DB_BACKGROUND_WORKERS + DB_PARALLEL_WORKERS + 2),
}
# Only for an image that has TimescaleDB: a plain PostgreSQL refuses to start preloading it.
DB_TIMESCALE_SETTINGS: Final = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.max_background_workers": str(DB_BACKGROUND_WORKERS),
}


class Phase:
    """Short phase enum shared by the three kinds (each CRD declares its own subset)."""

    PROVISIONING: Final = "Provisioning"
    READY: Final = "Ready"
    DEGRADED: Final = "Degraded"
    UPGRADING: Final = "Upgrading"
    SUSPENDED: Final = "Suspended"
    FAILED: Final = "Failed"
    PENDING: Final = "Pending"
    RUNNING: Final = "Running"
    SUCCEEDED: Final = "Succeeded"


class Cond:
    """Condition types."""

    READY: Final = "Ready"
    SECRETS_READY: Final = "SecretsReady"
    DATABASE_READY: Final = "DatabaseReady"
    DB_VERSION_SUPPORTED: Final = "DatabaseVersionSupported"
    MIGRATIONS_COMPLETE: Final = "MigrationsComplete"
    API_READY: Final = "ApiReady"
    SERVING_READY: Final = "ServingReady"
    MONITORING_READY: Final = "MonitoringReady"
    STACK_READY: Final = "StackReady"
    SUBMITTED: Final = "Submitted"
    SCHEDULED: Final = "Scheduled"
    LAST_BACKUP_SUCCEEDED: Final = "LastBackupSucceeded"
    BACKUP_VERIFIED: Final = "BackupVerified"


class Reason:
    """Condition reasons (CamelCase, stable: dashboards and alerts match on them)."""

    ALL_COMPONENTS_READY: Final = "AllComponentsReady"
    COMPONENTS_NOT_READY: Final = "ComponentsNotReady"
    SUSPENDED: Final = "Suspended"
    GENERATED: Final = "Generated"
    EXTERNAL: Final = "ExternalDatabase"
    EXTERNAL_SECRET_MISSING: Final = "ExternalSecretMissing"  # noqa: S105 - a reason, not a secret
    REPLICAS_READY: Final = "ReplicasReady"
    REPLICAS_NOT_READY: Final = "ReplicasNotReady"
    DEPLOYMENT_AVAILABLE: Final = "DeploymentAvailable"
    DEPLOYMENT_UNAVAILABLE: Final = "DeploymentUnavailable"
    SCALED_TO_ZERO: Final = "ScaledToZero"
    JOB_COMPLETE: Final = "JobComplete"
    JOB_FAILED: Final = "JobFailed"
    JOB_RUNNING: Final = "JobRunning"
    WAITING_FOR_DATABASE: Final = "WaitingForDatabase"
    CRDS_MISSING: Final = "CRDsMissing"
    DISABLED: Final = "Disabled"
    APPLIED: Final = "Applied"
    STACK_NOT_FOUND: Final = "StackNotFound"
    STACK_FOUND: Final = "StackFound"
    RAY_JOB_CREATED: Final = "RayJobCreated"
    JOB_CREATED: Final = "JobCreated"
    RAY_UNAVAILABLE: Final = "KubeRayMissing"
    SUCCEEDED: Final = "Succeeded"
    FAILED: Final = "Failed"
    RUNNING: Final = "Running"
    PENDING: Final = "Pending"
    CRONJOB_READY: Final = "CronJobReady"
    NO_RUNS_YET: Final = "NoRunsYet"
    BACKUP_SUCCEEDED: Final = "BackupSucceeded"
    BACKUP_FAILED: Final = "BackupFailed"
    RESTORE_VERIFIED: Final = "RestoreVerified"
    VERIFICATION_FAILED: Final = "VerificationFailed"
    VERIFICATION_DISABLED: Final = "VerificationDisabled"
    APPLY_FAILED: Final = "ApplyFailed"
    UNSUPPORTED_VERSION_CHANGE: Final = "UnsupportedVersionChange"
