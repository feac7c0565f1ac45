"""Pieces every builder shares: labels, object metadata, hardened security contexts, hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mt5db_operator import constants as c


def labels(instance: str, component: str, name: str = "mt5db", **extra: str) -> dict[str, str]:
    """Recommended labels (`app.kubernetes.io/*`) plus ours; selectors use a stable subset."""
    out = {
        c.LABEL_NAME: name,
        c.LABEL_INSTANCE: instance,
        c.LABEL_COMPONENT: component,
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }
    out.update(extra)
    return out


def selector(instance: str, component: str) -> dict[str, str]:
    """The immutable selector subset (never include labels that might change)."""
    return {c.LABEL_INSTANCE: instance, c.LABEL_COMPONENT: component}


def meta(
    name: str,
    namespace: str,
    labels_: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels_)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def short_hash(value: Any, length: int = 8) -> str:
    """Stable hash of a JSON-able value (children are hashed from spec only, never the operator)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:length]


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
