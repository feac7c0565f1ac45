"""The TradingStack pass: secrets, database, migrations, API, monitoring, then one status patch.

Each step builds its children (`resources/tradingstack.py`, `resources/monitoring.py`), hands
them to `Children.ensure` and turns what came back into conditions. The stack's special cases
live in their step: the StatefulSet keeps its live claim size and, on a refused version change,
its live image (`_statefulset_keeping_claims`); the API Deployment's `replicas` belong to the
HPA (`_api`); migration Jobs are named by the hash of their spec and superseded ones are
garbage-collected (`_migrations`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.utils import parse_quantity

from mt5db_core.apikeys import hash_key
from mt5db_operator import constants as c
from mt5db_operator.constants import Cond, Phase, Reason
from mt5db_operator.context import Context
from mt5db_operator.credentials import generate_db_passwords, generate_first_api_key
from mt5db_operator.kubeapi import ApiError
from mt5db_operator.reconcile.children import Children, Ref
from mt5db_operator.reconcile.owner import Owner
from mt5db_operator.resources import monitoring as mon
from mt5db_operator.resources import tradingstack as ts
from mt5db_operator.resources.labels import managed_selector
from mt5db_operator.specs import TradingStackSpec
from mt5db_operator.status import (
    Condition,
    deployment_condition,
    job_outcome,
    ready_condition,
    rolling_out,
    stack_phase,
    statefulset_condition,
)


def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One level-based pass over TradingStack `namespace/name` (gone or deleting: nothing to do)."""
    owner = Owner.read(ctx, c.KIND_STACK, namespace, name)
    if owner is None:
        return
    stack = TradingStackSpec.parse(owner.spec, owner.meta)
    children = Children(ctx, owner.body)
    try:
        secrets = _secrets(children, owner, stack)
        db = _database(children, owner, stack)
        migrations = _migrations(children, stack, db.ready)
        api = _api(ctx, children, owner, stack)
        serving = _serving(children, stack)
        monitoring = _monitoring(ctx, children, stack)
    except ApiError as exc:
        cond = Condition(Cond.READY, False, Reason.APPLY_FAILED, exc.message[:500])
        owner.write_status(
            phase=Phase.DEGRADED if owner.status.get("phase") else Phase.PROVISIONING,
            message=f"apply failed: {exc.message[:300]}", conditions=[cond],
        )  # fmt: skip
        raise kopf.TemporaryError(f"applying children failed: {exc}", delay=15) from exc
    parts = [secrets, *db.conditions, migrations.condition, api.condition, serving.condition, monitoring]
    upgrading = rolling_out(api.deployment, db.statefulset) or migrations.running
    extra: dict[str, Any] = {"db": db.summary, "api": api.summary, "serving": serving.summary}
    last_backup = _last_backup_of(ctx, namespace, name)
    if last_backup:
        extra["lastBackupTime"] = last_backup
    _write_status(owner, stack, parts, upgrading, extra)


def _write_status(
    owner: Owner, stack: TradingStackSpec, parts: list[Condition], upgrading: bool, extra: dict[str, Any]
) -> None:
    old_phase = owner.status.get("phase")
    # The running version keeps serving while a new version's migrations run: once the stack
    # has been Ready, a *running* migration Job no longer gates Ready (a failed one does).
    serving = upgrading and old_phase in (Phase.READY, Phase.UPGRADING)
    gating = [
        p for p in parts
        if p.type != Cond.MONITORING_READY
        and not (serving and p.type == Cond.MIGRATIONS_COMPLETE and p.reason != Reason.JOB_FAILED)
    ]  # fmt: skip
    ready = ready_condition(gating, suspended=stack.suspend)
    failed = any(p.type == Cond.MIGRATIONS_COMPLETE and p.reason == Reason.JOB_FAILED for p in parts)
    phase = stack_phase(ready.ok, stack.suspend, failed, old_phase, upgrading)
    message = f"API {extra['api']} ready; DB {extra['db']}" if ready.ok else ready.message
    if phase == Phase.UPGRADING:
        message = f"rolling out; {message}"
    owner.write_status(phase=phase, message=message, conditions=[ready, *parts], extra=extra)


# -- Secrets ------------------------------------------------------------------------------------


def _secrets(children: Children, owner: Owner, stack: TradingStackSpec) -> Condition:
    """Generate DB credentials and the first API key once; never regenerate existing ones.

    Created with POST, never applied: a Secret that exists (ours, or one the user provided) is
    used as it is.
    """
    ns = stack.namespace
    if stack.database_managed():
        if children.live(Ref("v1", "Secret", ns, stack.db_credentials_secret())) is None:
            secret = ts.build_db_credentials_secret(stack, generate_db_passwords())
            if children.create_once(secret) is not None:
                owner.event("SecretGenerated", f"generated {stack.db_credentials_secret()}")
    elif children.live(Ref("v1", "Secret", ns, stack.db_secret_name())) is None:
        return Condition(
            Cond.SECRETS_READY,
            False,
            Reason.EXTERNAL_SECRET_MISSING,
            f"external database Secret {stack.db_secret_name()} not found",
        )
    key_ref = Ref("v1", "Secret", ns, stack.api_key_secret())
    key_secret = children.live(key_ref)
    if key_secret is None:
        key = generate_first_api_key()
        created = children.create_once(ts.build_api_key_secret(stack, key.secret_key, key.key_id))
        # Lost a race to another creator: read theirs (the hash must match the key that exists).
        key_secret = created or children.kube.get("v1", "Secret", ns, stack.api_key_secret())
        if created is not None:
            owner.event("ApiKeyGenerated", f"first API key in Secret {stack.api_key_secret()}")
    if children.live(Ref("v1", "Secret", ns, stack.api_key_hash_secret())) is None and key_secret:
        # Derived from the key Secret (not from memory), so a crash between the two creates
        # still ends with a matching hash.
        data = key_secret.get("data") or {}
        secret_key = base64.b64decode(data["api-key"]).decode()
        key_id = base64.b64decode(data["key-id"]).decode()
        children.create_once(ts.build_api_key_hash_secret(stack, key_id, hash_key(secret_key)))
    reason = Reason.GENERATED if stack.database_managed() else Reason.EXTERNAL
    return Condition(Cond.SECRETS_READY, True, reason, "credentials and first API key present")


# -- Database -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Database:
    conditions: list[Condition]  # DatabaseVersionSupported (managed only), then DatabaseReady
    ready: Condition
    summary: str  # "ready/desired" or "external" (the printer column)
    statefulset: dict[str, Any] | None


def _database(children: Children, owner: Owner, stack: TradingStackSpec) -> _Database:
    """The StatefulSet, its headless Service and NetworkPolicy; none of them with an external DB."""
    if not stack.database_managed():
        children.ensure(ts.build_db_statefulset(stack), enabled=False)
        children.ensure(ts.build_db_service(stack), enabled=False)
        children.ensure(ts.build_db_network_policy(stack), enabled=False)
        ready = Condition(Cond.DATABASE_READY, True, Reason.EXTERNAL, "external database (not probed)")
        return _Database([ready], ready, "external", None)
    children.ensure(ts.build_db_service(stack))
    desired, refusal = _statefulset_keeping_claims(children, owner, stack)
    sts = children.ensure(desired)
    children.ensure(ts.build_db_network_policy(stack))
    if refusal:
        version = Condition(Cond.DB_VERSION_SUPPORTED, False, Reason.UNSUPPORTED_VERSION_CHANGE, refusal)
    else:
        version = Condition(Cond.DB_VERSION_SUPPORTED, True, Reason.APPLIED, stack.database.image)
    ready = statefulset_condition(sts)
    ready_replicas = int(((sts or {}).get("status") or {}).get("readyReplicas") or 0)
    return _Database([version, ready], ready, f"{ready_replicas}/1", sts)


def _statefulset_keeping_claims(
    children: Children, owner: Owner, stack: TradingStackSpec
) -> tuple[dict[str, Any], str | None]:
    """The desired StatefulSet with the live claim size (volumeClaimTemplates are immutable)
    and the live image when the wanted one is a refused version change (and why).

    `storage.size` may only grow (CEL); growth is applied to the existing claim instead,
    which the storage class must allow (allowVolumeExpansion).
    """
    desired = ts.build_db_statefulset(stack)
    live = children.live(Ref.of(desired))
    if live is None:
        return desired, None
    live_image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    refusal = ts.refused_db_image_change(live_image, stack.database.image)
    if refusal:
        # Keep running the current image; say why in DatabaseVersionSupported.
        desired["spec"]["template"]["spec"]["containers"][0]["image"] = live_image
    live_size = live["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    desired["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = live_size
    claim = f"data-{stack.db_name()}-0"
    pvc = children.live(Ref("v1", "PersistentVolumeClaim", stack.namespace, claim))
    want = stack.database.storage_size
    # Only a Bound claim may grow (the API refuses resizing a Pending one).
    if pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound":
        have = pvc["spec"]["resources"]["requests"]["storage"]
        if parse_quantity(want) > parse_quantity(have):  # type: ignore[no-untyped-call]
            children.kube.call(
                "PATCH", f"/api/v1/namespaces/{stack.namespace}/persistentvolumeclaims/{claim}",
                body={"spec": {"resources": {"requests": {"storage": want}}}},
                query=[("fieldManager", c.FIELD_MANAGER)], content_type="application/merge-patch+json",
            )  # fmt: skip
            owner.event("StorageExpansionRequested", f"{claim}: {have} -> {want}")
    return desired, refusal


# -- Migrations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Migrations:
    condition: Condition
    running: bool  # pending or running: part of "Upgrading"


def _migrations(children: Children, stack: TradingStackSpec, db_ready: Condition) -> _Migrations:
    """A Job per hash of its spec (pod templates are immutable); superseded Jobs are collected."""
    job = children.ensure(ts.build_migrate_job(stack))
    children.collect("batch/v1", "Job", stack.namespace, managed_selector(stack.name, "migrate"))
    outcome, detail = job_outcome(job)
    if outcome == Phase.SUCCEEDED:
        cond = Condition(Cond.MIGRATIONS_COMPLETE, True, Reason.JOB_COMPLETE, "migrations applied")
    elif outcome == Phase.FAILED:
        cond = Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.JOB_FAILED, detail)
    elif not db_ready.ok:
        cond = Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.WAITING_FOR_DATABASE, detail)
    else:
        cond = Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.JOB_RUNNING, detail)
    return _Migrations(cond, outcome in (Phase.PENDING, Phase.RUNNING))


# -- API ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Api:
    condition: Condition
    summary: str  # "ready/desired" (the printer column)
    deployment: dict[str, Any] | None


def _api(ctx: Context, children: Children, owner: Owner, stack: TradingStackSpec) -> _Api:
    """Service, Deployment, HPA (not while suspended), PDB, Ingress (only with a host).

    The applied Deployment never contains `replicas`: the first create sets `minReplicas` under
    a separate field manager, then the HPA owns the field; suspend and resume go through /scale.
    """
    children.ensure(ts.build_api_service(stack))
    if not owner.status.get("api"):
        # First pass: create with replicas = minReplicas under a separate manager, so the
        # API starts at its floor before the HPA acts, and our applies never own replicas.
        first = ts.build_api_deployment(stack, replicas=stack.desired_api_replicas())
        children.create_once(first, field_manager=c.BOOTSTRAP_FIELD_MANAGER)
    dep = children.ensure(ts.build_api_deployment(stack))
    live_replicas = ((dep or {}).get("spec") or {}).get("replicas")
    hpa = ts.build_api_hpa(stack)
    if stack.suspend:
        children.ensure(hpa, enabled=False)
        if live_replicas != 0:
            dep = _scale(ctx, stack, 0)
    else:
        if live_replicas == 0:
            # Back from suspend: an HPA ignores a target at 0, so restore the floor once.
            dep = _scale(ctx, stack, stack.api.min_replicas)
        children.ensure(hpa)
    children.ensure(ts.build_api_pdb(stack))
    children.ensure(ts.build_api_network_policy(stack))
    ingress = ts.build_api_ingress(stack)
    if ingress is None:
        children.ensure(Ref("networking.k8s.io/v1", "Ingress", stack.namespace, stack.api_name()), False)
    else:
        children.ensure(ingress)
    status = (dep or {}).get("status") or {}
    desired = int(((dep or {}).get("spec") or {}).get("replicas") or 0)
    summary = f"{int(status.get('readyReplicas') or 0)}/{desired}"
    return _Api(deployment_condition(dep), summary, dep)


def _scale(ctx: Context, stack: TradingStackSpec, replicas: int) -> dict[str, Any] | None:
    """Set replicas through /scale as the bootstrap manager (never part of our applies)."""
    path = f"/apis/apps/v1/namespaces/{stack.namespace}/deployments/{stack.api_name()}"
    ctx.kube.call(
        "PATCH", path + "/scale", body={"spec": {"replicas": replicas}},
        query=[("fieldManager", c.BOOTSTRAP_FIELD_MANAGER)], content_type="application/merge-patch+json",
    )  # fmt: skip
    return ctx.kube.get("apps/v1", "Deployment", stack.namespace, stack.api_name())


# -- Serving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Serving:
    condition: Condition
    summary: str  # "ready/desired", or "off" (the wide printer column)


def _serving(children: Children, stack: TradingStackSpec) -> _Serving:
    """`mt5db serve`'s Deployment and Service (the Ingress routes /predict to it, `_api`)."""
    enabled = stack.serving.enabled
    dep = children.ensure(ts.build_serving_deployment(stack), enabled)
    children.ensure(ts.build_serving_service(stack), enabled)
    if not enabled:
        return _Serving(
            Condition(Cond.SERVING_READY, True, Reason.DISABLED, "serving disabled by spec"), "off"
        )
    status = (dep or {}).get("status") or {}
    desired = int(((dep or {}).get("spec") or {}).get("replicas") or 0)
    summary = f"{int(status.get('readyReplicas') or 0)}/{desired}"
    if stack.suspend:
        return _Serving(Condition(Cond.SERVING_READY, True, Reason.SCALED_TO_ZERO, "suspended"), summary)
    ready = deployment_condition(dep)
    return _Serving(
        Condition(Cond.SERVING_READY, ready.ok, ready.reason, f"serving {summary} ready"), summary
    )


# -- Monitoring ---------------------------------------------------------------------------------


def _monitoring(ctx: Context, children: Children, stack: TradingStackSpec) -> Condition:
    """Dashboards ConfigMap; ServiceMonitor and PrometheusRule only where their CRDs are served."""
    m = stack.monitoring
    children.ensure(mon.build_dashboards_configmap(stack), m.enabled and m.dashboards)
    if not (m.enabled and (m.rules or m.service_monitor)):
        return Condition(Cond.MONITORING_READY, True, Reason.DISABLED, "monitoring objects disabled by spec")
    if not ctx.capabilities.monitoring():
        return Condition(
            Cond.MONITORING_READY,
            False,
            Reason.CRDS_MISSING,
            "monitoring.coreos.com/v1 ServiceMonitor/PrometheusRule not served; dashboards only",
        )
    children.ensure(mon.build_service_monitor(stack), m.service_monitor)
    children.ensure(mon.build_serving_service_monitor(stack), m.service_monitor and stack.serving.enabled)
    children.ensure(mon.build_prometheus_rule(stack), m.rules)
    return Condition(Cond.MONITORING_READY, True, Reason.APPLIED, "ServiceMonitor/PrometheusRule applied")


def _last_backup_of(ctx: Context, namespace: str, stack_name: str) -> str | None:
    """Newest `lastSuccessTime` of the BackupPolicies that reference this stack."""
    times = [
        (p.get("status") or {}).get("lastSuccessTime")
        for p in ctx.kube.list(c.API_VERSION, c.KIND_POLICY, namespace)
        if (p.get("spec") or {}).get("stackRef", {}).get("name") == stack_name
    ]
    found = [t for t in times if t]
    return max(found) if found else None
