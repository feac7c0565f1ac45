"""Every label a child carries or is selected by, and the object metadata built from them.

One place for the whole operator: the builders of all kinds, the reconcile layer's garbage
collection (label selectors) and the tests use these, never their own label dicts.
"""

from __future__ import annotations

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


def managed_selector(instance: str, component: str) -> str:
    """A label-selector query for the children we manage of one stack's component."""
    wanted = {c.LABEL_MANAGED_BY: c.MANAGED_BY, **selector(instance, component)}
    return ",".join(f"{key}={value}" for key, value in wanted.items())


def db_client_labels(stack_name: str, component: str) -> dict[str, str]:
    """Pod labels that the database NetworkPolicy admits (API, migrations, training, backups)."""
    return labels(stack_name, component, **{c.LABEL_STACK: stack_name, c.LABEL_DB_CLIENT: "true"})


def db_client_peer(stack_name: str) -> dict[str, str]:
    """The subset of `db_client_labels` the database NetworkPolicy selects its peers by."""
    return {c.LABEL_STACK: stack_name, c.LABEL_DB_CLIENT: "true"}


def meta(
    name: str,
    namespace: str,
    labels_: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A child's `metadata` (never its owner references: the reconcile layer adopts)."""
    out: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels_)}
    if annotations:
        out["annotations"] = dict(annotations)
    return out
