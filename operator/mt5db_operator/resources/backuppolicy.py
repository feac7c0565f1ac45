"""Builders for a BackupPolicy: the CronJob running `mt5db backup`, and its PVC destination."""

from __future__ import annotations

from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.resources.labels import db_client_labels, labels, meta
from mt5db_operator.resources.pod import (
    API_UID,
    container_security_context,
    pod_security_context,
    secret_env,
    tmp_volume,
)
from mt5db_operator.specs import BackupPolicySpec, TradingStackSpec

BACKUP_MOUNT = "/backups"
HISTORY_LIMIT = 5


def backup_args(policy: BackupPolicySpec) -> list[str]:
    destination = f"s3://{policy.s3_bucket}/{policy.s3_prefix}" if policy.s3_bucket else BACKUP_MOUNT
    args = [
        "--destination", destination,
        "--keep-last", str(policy.keep_last),
        "--max-age", policy.max_age,
        "--policy", policy.name,
    ]  # fmt: skip
    if policy.verify:
        args.append("--verify")
    return args


def build_backup_pvc(policy: BackupPolicySpec) -> dict[str, Any] | None:
    """A claim for the dumps when the policy names none.

    Deliberately *not* owned by the policy: deleting a BackupPolicy must not delete backups.
    """
    if not policy.pvc_managed or policy.pvc_claim is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(policy.pvc_claim, policy.meta.namespace, labels(policy.stack, "backup")),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": policy.pvc_size}}},
    }


def build_backup_cronjob(policy: BackupPolicySpec, stack: TradingStackSpec) -> dict[str, Any]:
    pod_labels = db_client_labels(stack.name, "backup") | {c.LABEL_POLICY: policy.name}
    env = [
        secret_env("MT5DB_DATABASE_URL", stack.db_secret_name(), stack.db_secret_key()),
        {"name": "MT5DB_BACKUP_POLICY", "value": policy.name},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    volumes: list[dict[str, Any]] = [tmp_volume(size="1Gi")]
    if policy.s3_bucket:
        if policy.s3_endpoint:
            env.append({"name": "AWS_ENDPOINT_URL", "value": policy.s3_endpoint})
        if policy.s3_credentials_secret:
            env += [
                secret_env("AWS_ACCESS_KEY_ID", policy.s3_credentials_secret, "accessKeyId"),
                secret_env("AWS_SECRET_ACCESS_KEY", policy.s3_credentials_secret, "secretAccessKey"),
            ]
    elif policy.pvc_claim:
        mounts.append({"name": "backups", "mountPath": BACKUP_MOUNT})
        volumes.append({"name": "backups", "persistentVolumeClaim": {"claimName": policy.pvc_claim}})
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(policy.cronjob_name(), policy.meta.namespace, pod_labels),
        "spec": {
            "schedule": policy.schedule,
            "timeZone": "Etc/UTC",
            "suspend": policy.suspend,
            # A stuck backup must not pile up runs behind it (CNPG #10745): Forbid + deadlines.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": policy.starting_deadline_seconds,
            "successfulJobsHistoryLimit": HISTORY_LIMIT,
            "failedJobsHistoryLimit": HISTORY_LIMIT,
            "jobTemplate": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": policy.active_deadline_seconds,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "securityContext": pod_security_context(API_UID, fs_group=API_UID),
                            "containers": [
                                {
                                    "name": "backup",
                                    "image": policy.image or stack.api.image,
                                    "command": ["mt5db", "backup", *backup_args(policy)],
                                    "env": env,
                                    "resources": {
                                        "requests": {"cpu": "100m", "memory": "256Mi"},
                                        "limits": {"memory": "1Gi"},
                                    },
                                    "securityContext": container_security_context(),
                                    "volumeMounts": mounts,
                                }
                            ],
                            "volumes": volumes,
                        },
                    },
                },
            },
        },
    }
