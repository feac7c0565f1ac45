"""Kopf handlers, registered into a registry built per operator (no module-level registry).

Handlers are thin: every one of them asks the reconcile layer (`reconcile.run`) for one
level-based pass of one object. Children are watched (server-side label selector) so that a deleted or edited child
is restored, and a child's status change (StatefulSet ready, Job complete) reaches the
owner's status without waiting for the drift timer.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kopf._cogs.structs.references import Selector  # not re-exported at the top level in 1.45

from mt5db_operator import constants as c
from mt5db_operator import reconcile
from mt5db_operator.context import Options

OWNED_KINDS = {c.KIND_STACK, c.KIND_RUN, c.KIND_POLICY}

# (group, version, plural) of the child kinds the operator watches.
CHILD_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "deployments"),
    ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
# Generated Secrets are not watched either: a watch needs list/watch on every Secret in scope
# (RBAC cannot narrow by label), so the operator holds only get/create on them and the resync
# timer re-creates a deleted one (docs/operator.md, "RBAC").
# Children of *optional* CRDs (ServiceMonitor, PrometheusRule, RayJob) are deliberately not
# watched: when such a CRD is removed while Kopf runs, a watcher's re-list gets 404 and Kopf's
# orchestrator re-raises it, stopping the whole operator (seen in our tests with Kopf 1.45).
# The resync timer re-applies them instead, and active TrainingRuns poll their RayJob.
# Kinds whose *status* feeds an owner's status: every change of theirs matters.
STATUS_CHILDREN = {"statefulsets", "deployments", "jobs", "rayjobs", "cronjobs"}

KINDS: tuple[tuple[str, str], ...] = (
    (c.TRADINGSTACKS, c.KIND_STACK),
    (c.TRAININGRUNS, c.KIND_RUN),
    (c.BACKUPPOLICIES, c.KIND_POLICY),
)


def edited_by_someone_else(body: Any) -> bool:
    """True when a manager other than ours wrote the object's spec (not a status subresource)."""
    for entry in body.get("metadata", {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        if entry.get("manager") != c.FIELD_MANAGER:
            return True
    return False


def owners_of(body: Any) -> list[tuple[str, str]]:
    """(kind, name) of the mt5db object(s) a child belongs to, directly or via a CronJob."""
    out = []
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("apiVersion") == c.API_VERSION and ref.get("kind") in OWNED_KINDS:
            out.append((ref["kind"], ref["name"]))
        elif ref.get("kind") == "CronJob":
            policy = (body.get("metadata", {}).get("labels") or {}).get(c.LABEL_POLICY)
            if policy:
                out.append((c.KIND_POLICY, policy))
    return out


def build_registry(options: Options, kubeconfig: str | None = None) -> kopf.OperatorRegistry:
    """All handlers of one operator instance, in a fresh registry."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Structural schemas prune status.kopf (Kopf #321): keep progress in annotations only.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage()
        # Watches that silently stop delivering (Kopf #585, #955, #1276): bounded server-side
        # timeouts and a client timeout a bit above them force a periodic re-list.
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        settings.watching.connect_timeout = 10
        # Our own Events are explicit (kopf.event, which ignores this level); handler log lines become Events
        # except warnings and errors.
        settings.posting.level = logging.WARNING
        # Sync handlers run in threads; bound them (2 cores here, hundreds of objects).
        settings.execution.max_workers = 8
        # Child watches only see what we manage: server-side label selector, not a client filter
        # (otherwise every Secret and Job of the cluster streams through the operator).
        selector = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        for group, version, plural in CHILD_RESOURCES:
            settings.watching.label_selectors[Selector(group=group, version=version, plural=plural)] = (
                selector
            )

    if kubeconfig:

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection_info(kubeconfig)

    else:

        @kopf.on.login(registry=registry)
        def login_default(**kwargs: Any) -> kopf.ConnectionInfo | None:
            return kopf.login_via_client(**kwargs)

    for plural, kind in KINDS:
        _register_kind(registry, plural, kind, options)

    for group, version, plural in CHILD_RESOURCES:
        _register_child(registry, group, version, plural)
    return registry


def _register_kind(registry: kopf.OperatorRegistry, plural: str, kind: str, options: Options) -> None:
    def changed(**kw: Any) -> None:
        reconcile.run(kw["memo"].ctx, kind, kw["namespace"], kw["name"], str(kw["reason"]))

    def resync(**kw: Any) -> None:
        reconcile.run(kw["memo"].ctx, kind, kw["namespace"], kw["name"], "timer")

    def deleted(**kw: Any) -> None:
        kw["memo"].ctx.forget(f"{kind}/{kw['namespace']}/{kw['name']}")

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(c.GROUP, c.VERSION, plural, registry=registry, id=f"{plural}-{decorator.__name__}")(changed)
    kopf.timer(
        c.GROUP, c.VERSION, plural,
        registry=registry, id=f"{plural}-resync",
        interval=options.resync_seconds, initial_delay=options.resync_seconds,
    )(resync)  # fmt: skip
    if kind == c.KIND_RUN:
        # RayJob status is not watched (see CHILD_RESOURCES): poll active runs more often.
        kopf.timer(
            c.GROUP, c.VERSION, plural,
            registry=registry, id=f"{plural}-poll",
            interval=min(options.run_poll_seconds, options.resync_seconds),
            when=lambda status, **_: (status or {}).get("phase") not in ("Succeeded", "Failed"),
        )(resync)  # fmt: skip
    # optional=True: no finalizer; children go by ownerReference GC, nothing external to clean.
    kopf.on.delete(c.GROUP, c.VERSION, plural, registry=registry, id=f"{plural}-forget", optional=True)(
        deleted
    )


def _register_child(registry: kopf.OperatorRegistry, group: str, version: str, plural: str) -> None:
    def child_event(**kw: Any) -> None:
        type_, body = kw["type"], kw["body"]
        if type_ is None:
            return  # the initial listing: the owners' resume handlers cover it
        if type_ == "MODIFIED" and plural not in STATUS_CHILDREN and not edited_by_someone_else(body):
            return  # our own apply echoing back
        for kind, owner in owners_of(body):
            reconcile.run(kw["memo"].ctx, kind, kw["namespace"], owner, f"child-{type_.lower()}")

    kopf.on.event(
        group, version, plural,
        registry=registry, id=f"child-{plural}",
        labels={c.LABEL_MANAGED_BY: c.MANAGED_BY},
    )(child_event)  # fmt: skip


def connection_info(kubeconfig: str) -> kopf.ConnectionInfo:
    """Kopf credentials from a kubeconfig file (token, client cert or CA, as the file says)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    keys = cfg.api_key or {}
    # Older clients store "authorization", newer ones (>= 35) "BearerToken"; both "Bearer <token>".
    header = keys.get("BearerToken") or keys.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )
