"""Builders for a TrainingRun: a KubeRay RayJob, or a batch/v1 Job with the same entrypoint."""

from __future__ import annotations

from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.resources.labels import db_client_labels, labels, meta
from mt5db_operator.resources.pod import (
    TRAINING_UID,
    container_security_context,
    pod_security_context,
    secret_env,
    tmp_volume,
)
from mt5db_operator.specs import TradingStackSpec, TrainingRunSpec

CONFIG_ERROR_EXIT_CODE = 2  # argparse/config errors: retrying cannot help
# The training command wrote its artifacts and registry rows but could not publish its result
# (mt5db_training.publish.PUBLISH_FAILED_EXIT_CODE): retrying would retrain and register again.
PUBLISH_FAILED_EXIT_CODE = 3
RBAC_GROUP_VERSION = "rbac.authorization.k8s.io/v1"
# What the run's pods may do with the API: write their own result ConfigMap, nothing else.
# No `create`: RBAC cannot restrict create by name, so the operator creates the ConfigMap.
RESULT_VERBS = ("get", "update", "patch")


def _labels(run: TrainingRunSpec) -> dict[str, str]:
    return db_client_labels(run.stack, "training") | {c.LABEL_RUN: run.name}


def _env(run: TrainingRunSpec, stack: TradingStackSpec) -> list[dict[str, Any]]:
    return [
        # Read-only role: training reads bars and writes only the model registry.
        secret_env("MT5DB_DATABASE_URL", stack.db_secret_name(), stack.db_secret_key("readonly")),
        {"name": "MT5DB_RUN_NAME", "value": run.name},
        {"name": "MT5DB_RESULT_CONFIGMAP", "value": run.result_configmap()},
    ]


def _limits(run: TrainingRunSpec) -> dict[str, Any]:
    # KubeRay derives --num-cpus/--memory from container *limits*: set limits, not rayStartParams.
    limits: dict[str, Any] = {"cpu": run.cpu, "memory": run.memory}
    if run.gpu:
        limits["nvidia.com/gpu"] = run.gpu
    return {"requests": {"cpu": run.cpu, "memory": run.memory}, "limits": limits}


def _trainer_labels(run: TrainingRunSpec) -> dict[str, str]:
    return labels(run.stack, "training") | {c.LABEL_RUN: run.name}


def build_trainer_service_account(run: TrainingRunSpec) -> dict[str, Any]:
    """The identity of the run's pods (`<run>-trainer`); its Role is `build_trainer_role`."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(run.trainer_name(), run.meta.namespace, _trainer_labels(run)),
        # Pods opt in (only the pod that runs the entrypoint mounts a token).
        "automountServiceAccountToken": False,
    }


def build_trainer_role(run: TrainingRunSpec) -> dict[str, Any]:
    """get/update/patch on the ConfigMap `<run>-result` only (resourceNames), nothing else."""
    return {
        "apiVersion": RBAC_GROUP_VERSION,
        "kind": "Role",
        "metadata": meta(run.trainer_name(), run.meta.namespace, _trainer_labels(run)),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [run.result_configmap()],
                "verbs": list(RESULT_VERBS),
            }
        ],
    }


def build_trainer_role_binding(run: TrainingRunSpec) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_GROUP_VERSION,
        "kind": "RoleBinding",
        "metadata": meta(run.trainer_name(), run.meta.namespace, _trainer_labels(run)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": run.trainer_name()},
        "subjects": [{"kind": "ServiceAccount", "name": run.trainer_name(), "namespace": run.meta.namespace}],
    }


def build_result_configmap(run: TrainingRunSpec) -> dict[str, Any]:
    """The (empty) `<run>-result` ConfigMap, created and owned by the operator so that it goes
    with the run; the entrypoint fills `data["result.json"]` (a field this apply never sets)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(run.result_configmap(), run.meta.namespace, _trainer_labels(run)),
    }


def build_trainer_access(run: TrainingRunSpec) -> list[dict[str, Any]]:
    """Everything the run's pods need before they can be created, in apply order (a pod naming
    a missing ServiceAccount is refused by admission)."""
    return [
        build_trainer_service_account(run),
        build_trainer_role(run),
        build_trainer_role_binding(run),
        build_result_configmap(run),
    ]


def _ray_pod(run: TrainingRunSpec, stack: TradingStackSpec, name: str, *, token: bool) -> dict[str, Any]:
    return {
        "metadata": {"labels": _labels(run)},
        "spec": {
            "serviceAccountName": run.trainer_name(),
            # The entrypoint (driver) runs on the head: only it publishes the result.
            "automountServiceAccountToken": token,
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


def _submitter_pod(run: TrainingRunSpec) -> dict[str, Any]:
    """KubeRay's default submitter (head image, 1 CPU / 1Gi, `ray job submit` filled in because
    `command` is empty), plus our identity and hardening; it talks only to the head's dashboard."""
    return {
        "metadata": {"labels": _labels(run)},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": run.trainer_name(),
            "automountServiceAccountToken": False,
            "securityContext": pod_security_context(TRAINING_UID, fs_group=TRAINING_UID),
            "containers": [
                {
                    "name": "ray-job-submitter",
                    "image": run.image,
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "200Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "securityContext": container_security_context(),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                }
            ],
            "volumes": [tmp_volume(size="256Mi")],
        },
    }


def ray_entrypoint(run: TrainingRunSpec) -> str:
    return " ".join(["python", "-m", "mt5db_training.ray_entry", *run.train_args()])


def build_rayjob(run: TrainingRunSpec, stack: TradingStackSpec) -> dict[str, Any]:
    """A RayJob with an inline cluster torn down after the job (shutdownAfterJobFinishes)."""
    workers = max(run.workers - 1, 0)
    cluster: dict[str, Any] = {
        "rayVersion": c.DEFAULT_RAY_VERSION,
        "headGroupSpec": {"rayStartParams": {}, "template": _ray_pod(run, stack, "ray-head", token=True)},
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
                "template": _ray_pod(run, stack, "ray-worker", token=False),
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
            "submitterPodTemplate": _submitter_pod(run),
            "rayClusterSpec": cluster,
        },
    }


def build_job(run: TrainingRunSpec, stack: TradingStackSpec) -> dict[str, Any]:
    """The fallback without KubeRay: the same arguments through `mt5db train`, one pod."""
    pod = {
        "metadata": {"labels": _labels(run)},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": run.trainer_name(),
            "automountServiceAccountToken": True,  # the entrypoint publishes `<run>-result`
            "enableServiceLinks": False,  # KUBERNETES_SERVICE_HOST/PORT are set regardless
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
                            "values": [CONFIG_ERROR_EXIT_CODE, PUBLISH_FAILED_EXIT_CODE],
                        },
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": pod,
        },
    }
