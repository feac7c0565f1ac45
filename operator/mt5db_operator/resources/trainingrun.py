"""Builders for a TrainingRun: a KubeRay RayJob, or a batch/v1 Job with the same entrypoint."""

from __future__ import annotations

from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.models import TradingStackSpec, TrainingRunSpec
from mt5db_operator.resources.common import (
    container_security_context,
    meta,
    pod_security_context,
    secret_env,
    tmp_volume,
)
from mt5db_operator.resources.tradingstack import db_client_labels

TRAINING_UID = 1000  # the Ray base images' `ray` user
CONFIG_ERROR_EXIT_CODE = 2  # argparse/config errors: retrying cannot help


def _labels(run: TrainingRunSpec) -> dict[str, str]:
    return db_client_labels(run.stack, "training") | {c.LABEL_RUN: run.name}


def _env(run: TrainingRunSpec, stack: TradingStackSpec) -> list[dict[str, Any]]:
    return [
        secret_env("MT5DB_DATABASE_URL", stack.db_secret_name(), stack.db_secret_key()),
        {"name": "MT5DB_RUN_NAME", "value": run.name},
        {"name": "MT5DB_RESULT_CONFIGMAP", "value": run.result_configmap()},
    ]


def _limits(run: TrainingRunSpec) -> dict[str, Any]:
    # KubeRay derives --num-cpus/--memory from container *limits*: set limits, not rayStartParams.
    limits: dict[str, Any] = {"cpu": run.cpu, "memory": run.memory}
    if run.gpu:
        limits["nvidia.com/gpu"] = run.gpu
    return {"requests": {"cpu": run.cpu, "memory": run.memory}, "limits": limits}


def _ray_pod(run: TrainingRunSpec, stack: TradingStackSpec, name: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": _labels(run)},
        "spec": {
            "securityContext": pod_security_context(TRAINING_UID, fs_group=TRAINING_UID),
            "containers": [
                {
                    "name": name,
                    "image": run.image,
                    "env": _env(run, stack),
                    "resources": _limits(run),
                    "securityContext": container_security_context(),
                    "volumeMounts": [
                        {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - memory emptyDir
                        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - emptyDir for /tmp/ray
                    ],
                }
            ],
            "volumes": [
                # The Ray object store lives in /dev/shm: give it memory, not the node default 64 MiB.
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                tmp_volume(size="2Gi"),
            ],
        },
    }


def ray_entrypoint(run: TrainingRunSpec) -> str:
    return " ".join(["python", "-m", "mt5db_training.ray_entry", *run.train_args()])


def build_rayjob(run: TrainingRunSpec, stack: TradingStackSpec) -> dict[str, Any]:
    """A RayJob with an inline cluster torn down after the job (shutdownAfterJobFinishes)."""
    workers = max(run.workers - 1, 0)
    cluster: dict[str, Any] = {
        "rayVersion": c.DEFAULT_RAY_VERSION,
        "headGroupSpec": {"rayStartParams": {}, "template": _ray_pod(run, stack, "ray-head")},
        "workerGroupSpecs": [],
    }
    if workers:
        cluster["workerGroupSpecs"] = [
            {
                "groupName": "gpu" if run.gpu else "cpu",
                "replicas": workers,
                "minReplicas": workers,
                "maxReplicas": workers,
                "rayStartParams": {},
                "template": _ray_pod(run, stack, "ray-worker"),
            }
        ]
    return {
        "apiVersion": c.RAY_GROUP_VERSION,
        "kind": "RayJob",
        "metadata": meta(run.child_name(), run.meta.namespace, _labels(run)),
        "spec": {
            "entrypoint": ray_entrypoint(run),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": run.ttl_seconds_after_finished,
            "activeDeadlineSeconds": run.active_deadline_seconds,
            "submitterConfig": {"backoffLimit": 2},
            "rayClusterSpec": cluster,
        },
    }


def build_job(run: TrainingRunSpec, stack: TradingStackSpec) -> dict[str, Any]:
    """The fallback without KubeRay: the same arguments through `mt5db train`, one pod."""
    pod = {
        "metadata": {"labels": _labels(run)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(TRAINING_UID, fs_group=TRAINING_UID),
            "containers": [
                {
                    "name": "train",
                    "image": run.image,
                    "command": ["mt5db", "train", *run.train_args()],
                    "env": _env(run, stack),
                    "resources": _limits(run),
                    "securityContext": container_security_context(),
                    "volumeMounts": [
                        {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - memory emptyDir
                        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                    ],
                }
            ],
            "volumes": [
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                tmp_volume(size="2Gi"),
            ],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(run.child_name(), run.meta.namespace, _labels(run)),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 2,
            "activeDeadlineSeconds": run.active_deadline_seconds,
            "ttlSecondsAfterFinished": run.ttl_seconds_after_finished,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "train",
                            "operator": "In",
                            "values": [CONFIG_ERROR_EXIT_CODE],
                        },
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": pod,
        },
    }
