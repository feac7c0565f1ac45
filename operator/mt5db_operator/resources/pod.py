"""Pod-level pieces every workload builder shares: the users our images run as, hardened
security contexts, Secret-backed environment variables and scratch volumes.
"""

from __future__ import annotations

from typing import Any

# The users the images run as (their Dockerfiles / upstream images decide; we only match them).
DB_UID = 1000  # the TimescaleDB HA image runs as `postgres` (uid 1000)
API_UID = 10001  # mt5db-api: the API, the migration Job and the backup CronJob run in it
TRAINING_UID = 1000  # the Ray base images' `ray` user


def pod_security_context(uid: int, fs_group: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        out["fsGroup"] = fs_group
    return out


def container_security_context(read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def tmp_volume(name: str = "tmp", size: str = "64Mi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size}}
