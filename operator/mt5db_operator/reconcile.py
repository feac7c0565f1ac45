"""Level-based reconcilers: read the object, derive every child, apply, read children's
status, write one status patch. Called by the create/update/resume handlers, the drift timer
and the child watchers alike; each call starts from the live object, so callers are equal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf

from mt5db_operator import constants as c
from mt5db_operator.constants import Cond, Phase, Reason
from mt5db_operator.context import Context
from mt5db_operator.credentials import generate_db_passwords, generate_first_api_key
from mt5db_operator.cron import next_fire
from mt5db_operator.kubeapi import ApiError
from mt5db_operator.resources import backuppolicy as bp
from mt5db_operator.resources import monitoring as mon
from mt5db_operator.resources import tradingstack as ts
from mt5db_operator.resources import trainingrun as tr
from mt5db_operator.specs import BackupPolicySpec, Meta, TradingStackSpec, TrainingRunSpec
from mt5db_operator.status import (
    Condition,
    deployment_condition,
    job_outcome,
    rayjob_outcome,
    ready_condition,
    rolling_out,
    stack_phase,
    statefulset_condition,
    status_patch,
)

log = logging.getLogger(__name__)

TERMINAL = (Phase.SUCCEEDED, Phase.FAILED)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _human_duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"


class Reconciler:
    """One per operator; methods are the three kinds' reconcile passes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.kube = ctx.kube

    # -- shared ---------------------------------------------------------------------------------

    def run(self, kind: str, namespace: str, name: str, trigger: str) -> None:
        """Coalesced, instrumented pass for one object (safe from any handler thread)."""
        work: dict[str, Callable[[str, str], None]] = {
            c.KIND_STACK: self.stack,
            c.KIND_RUN: self.training_run,
            c.KIND_POLICY: self.backup_policy,
        }
        fn = work[kind]

        def one_pass() -> None:
            started = time.perf_counter()
            self.ctx.metrics.reconciles.labels(kind, trigger).inc()
            try:
                fn(namespace, name)
            except Exception:
                self.ctx.metrics.errors.labels(kind).inc()
                raise
            finally:
                self.ctx.metrics.duration.labels(kind).observe(time.perf_counter() - started)

        self.ctx.coalesced(f"{kind}/{namespace}/{name}", one_pass)

    def _apply(self, owner: Any, obj: dict[str, Any] | None, *, adopt: bool = True) -> dict[str, Any] | None:
        if obj is None:
            return None
        if adopt:
            kopf.adopt(obj, owner=owner)
        self.ctx.metrics.applies.labels(obj["kind"]).inc()
        return self.kube.apply(obj)

    def _remove(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete a child the spec no longer wants (absent is fine)."""
        if self.kube.delete(api_version, kind, namespace, name):
            log.info("deleted %s %s/%s: no longer in the spec", kind, namespace, name)

    def _write_status(
        self,
        body: Any,
        plural_kind: str,
        *,
        phase: str,
        message: str,
        conditions: list[Condition],
        extra: dict[str, Any] | None = None,
    ) -> None:
        old = body.get("status") or {}
        md = body["metadata"]
        patch = status_patch(
            old,
            phase=phase,
            message=message,
            conditions=conditions,
            generation=int(md.get("generation") or 0),
            now=now_iso(),
            extra=extra,
        )
        if patch is None:
            return
        self.kube.patch_status(c.API_VERSION, plural_kind, md["namespace"], md["name"], patch)
        if old.get("phase") != phase:
            warn = phase in (Phase.FAILED, Phase.DEGRADED)
            kopf.event(
                body,
                type="Warning" if warn else "Normal",
                reason=phase,
                message=f"phase {old.get('phase') or 'None'} -> {phase}: {message}"[:1000],
            )

    def _live(self, kind: str, namespace: str, name: str) -> Any:
        body = self.kube.get(c.API_VERSION, kind, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        return body

    # -- TradingStack --------------------------------------------------------------------------

    def _ensure_secrets(self, body: Any, stack: TradingStackSpec) -> Condition:
        """Generate DB credentials and the first API key once; never regenerate existing ones."""
        ns = stack.namespace
        if stack.database_managed():
            if self.kube.get("v1", "Secret", ns, stack.db_credentials_secret()) is None:
                secret = ts.build_db_credentials_secret(stack, generate_db_passwords())
                kopf.adopt(secret, owner=body)
                if self.kube.create(secret) is not None:
                    kopf.event(
                        body,
                        type="Normal",
                        reason="SecretGenerated",
                        message=f"generated {stack.db_credentials_secret()}",
                    )
        elif self.kube.get("v1", "Secret", ns, stack.db_secret_name()) is None:
            return Condition(
                Cond.SECRETS_READY,
                False,
                Reason.EXTERNAL_SECRET_MISSING,
                f"external database Secret {stack.db_secret_name()} not found",
            )
        key_secret = self.kube.get("v1", "Secret", ns, stack.api_key_secret())
        if key_secret is None:
            key = generate_first_api_key()
            secret = ts.build_api_key_secret(stack, key.secret_key, key.key_id)
            kopf.adopt(secret, owner=body)
            created = self.kube.create(secret)
            key_secret = created or self.kube.get("v1", "Secret", ns, stack.api_key_secret())
            if created is not None:
                kopf.event(
                    body,
                    type="Normal",
                    reason="ApiKeyGenerated",
                    message=f"first API key in Secret {stack.api_key_secret()}",
                )
        if self.kube.get("v1", "Secret", ns, stack.api_key_hash_secret()) is None and key_secret:
            # Derived from the key Secret (not from memory), so a crash between the two creates
            # still ends with a matching hash.
            import base64

            from mt5db_core.apikeys import hash_key

            data = key_secret.get("data") or {}
            secret_key = base64.b64decode(data["api-key"]).decode()
            key_id = base64.b64decode(data["key-id"]).decode()
            hashed = ts.build_api_key_hash_secret(stack, key_id, hash_key(secret_key))
            kopf.adopt(hashed, owner=body)
            self.kube.create(hashed)
        reason = Reason.GENERATED if stack.database_managed() else Reason.EXTERNAL
        return Condition(Cond.SECRETS_READY, True, reason, "credentials and first API key present")

    def stack(self, namespace: str, name: str) -> None:
        body = self._live(c.KIND_STACK, namespace, name)
        if body is None:
            return
        stack = TradingStackSpec.parse(body.get("spec"), Meta.from_body(body))
        ns = namespace
        try:
            secrets_cond = self._ensure_secrets(body, stack)
            conditions = self._stack_children(body, stack, secrets_cond)
        except ApiError as exc:
            cond = Condition(Cond.READY, False, Reason.APPLY_FAILED, exc.message[:500])
            self._write_status(
                body, c.KIND_STACK, phase=Phase.DEGRADED if body.get("status", {}).get("phase") else Phase.PROVISIONING,
                message=f"apply failed: {exc.message[:300]}", conditions=[cond],
            )  # fmt: skip
            raise kopf.TemporaryError(f"applying children failed: {exc}", delay=15) from exc
        parts, extra = conditions
        old_phase = (body.get("status") or {}).get("phase")
        upgrading = bool(extra.pop("_upgrading", False))
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
        last_backup = self._last_backup_of(ns, name)
        if last_backup:
            extra["lastBackupTime"] = last_backup
        self._write_status(
            body, c.KIND_STACK, phase=phase, message=message, conditions=[ready, *parts], extra=extra
        )

    def _stack_children(
        self, body: Any, stack: TradingStackSpec, secrets_cond: Condition
    ) -> tuple[list[Condition], dict[str, Any]]:
        ns = stack.namespace
        parts = [secrets_cond]
        sts: dict[str, Any] | None = None
        # Database
        if stack.database_managed():
            self._apply(body, ts.build_db_service(stack))
            desired_sts, refusal = self._statefulset_keeping_claims(body, stack)
            sts = self._apply(body, desired_sts)
            self._apply(body, ts.build_db_network_policy(stack))
            db_cond = statefulset_condition(sts)
            if refusal:
                parts.append(
                    Condition(Cond.DB_VERSION_SUPPORTED, False, Reason.UNSUPPORTED_VERSION_CHANGE, refusal)
                )
            else:
                parts.append(Condition(Cond.DB_VERSION_SUPPORTED, True, Reason.APPLIED, stack.database.image))
            sts_status = (sts or {}).get("status") or {}
            db_summary = f"{int(sts_status.get('readyReplicas') or 0)}/1"
        else:
            for api_version, kind, child in (
                ("apps/v1", "StatefulSet", stack.db_name()),
                ("v1", "Service", stack.db_service_name()),
                ("networking.k8s.io/v1", "NetworkPolicy", stack.network_policy_name()),
            ):
                self._remove(api_version, kind, ns, child)
            db_cond = Condition(Cond.DATABASE_READY, True, Reason.EXTERNAL, "external database (not probed)")
            db_summary = "external"
        parts.append(db_cond)
        # Migrations: a Job per (image, policy settings); older ones are removed once superseded.
        job = self._apply(body, ts.build_migrate_job(stack))
        current = ts.migrate_hash(stack)
        for old in self.kube.list(
            "batch/v1", "Job", ns, f"{c.LABEL_INSTANCE}={stack.name},{c.LABEL_COMPONENT}=migrate"
        ):
            if old["metadata"]["name"] != stack.migrate_job_name(current):
                self._remove("batch/v1", "Job", ns, old["metadata"]["name"])
        outcome, detail = job_outcome(job)
        if outcome == Phase.SUCCEEDED:
            parts.append(Condition(Cond.MIGRATIONS_COMPLETE, True, Reason.JOB_COMPLETE, "migrations applied"))
        elif outcome == Phase.FAILED:
            parts.append(Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.JOB_FAILED, detail))
        elif not db_cond.ok:
            parts.append(Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.WAITING_FOR_DATABASE, detail))
        else:
            parts.append(Condition(Cond.MIGRATIONS_COMPLETE, False, Reason.JOB_RUNNING, detail))
        # API
        self._apply(body, ts.build_api_service(stack))
        if not (body.get("status") or {}).get("api"):
            # First pass: create with replicas = minReplicas under a separate manager, so the
            # API starts at its floor before the HPA acts, and our applies never own replicas.
            first = ts.build_api_deployment(stack, replicas=stack.desired_api_replicas())
            kopf.adopt(first, owner=body)
            self.kube.create(first, field_manager=c.BOOTSTRAP_FIELD_MANAGER)
        dep = self._apply(body, ts.build_api_deployment(stack))
        live_replicas = ((dep or {}).get("spec") or {}).get("replicas")
        if stack.suspend:
            self._remove("autoscaling/v2", "HorizontalPodAutoscaler", ns, stack.api_name())
            if live_replicas != 0:
                dep = self._scale(stack, 0)
        else:
            if live_replicas == 0:
                # Back from suspend: an HPA ignores a target at 0, so restore the floor once.
                dep = self._scale(stack, stack.api.min_replicas)
            self._apply(body, ts.build_api_hpa(stack))
        self._apply(body, ts.build_api_pdb(stack))
        ingress = ts.build_api_ingress(stack)
        if ingress is None:
            self._remove("networking.k8s.io/v1", "Ingress", ns, stack.api_name())
        else:
            self._apply(body, ingress)
        api_cond = deployment_condition(dep)
        parts.append(api_cond)
        dep_status = (dep or {}).get("status") or {}
        desired = int(((dep or {}).get("spec") or {}).get("replicas") or 0)
        api_summary = f"{int(dep_status.get('readyReplicas') or 0)}/{desired}"
        parts.append(self._monitoring(body, stack))
        migrating = outcome in (Phase.PENDING, Phase.RUNNING)
        upgrading = rolling_out(dep, sts) or migrating
        return parts, {"db": db_summary, "api": api_summary, "_upgrading": upgrading}

    def _statefulset_keeping_claims(
        self, body: Any, stack: TradingStackSpec
    ) -> tuple[dict[str, Any], str | None]:
        """The desired StatefulSet with the live claim size (volumeClaimTemplates are immutable)
        and the live image when the wanted one is a refused version change (and why).

        `storage.size` may only grow (CEL); growth is applied to the existing claim instead,
        which the storage class must allow (allowVolumeExpansion).
        """
        from kubernetes.utils import parse_quantity

        desired = ts.build_db_statefulset(stack)
        live = self.kube.get("apps/v1", "StatefulSet", stack.namespace, stack.db_name())
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
        pvc = self.kube.get("v1", "PersistentVolumeClaim", stack.namespace, claim)
        want = stack.database.storage_size
        # Only a Bound claim may grow (the API refuses resizing a Pending one).
        if pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound":
            have = pvc["spec"]["resources"]["requests"]["storage"]
            if parse_quantity(want) > parse_quantity(have):  # type: ignore[no-untyped-call]
                self.kube.call(
                    "PATCH", f"/api/v1/namespaces/{stack.namespace}/persistentvolumeclaims/{claim}",
                    body={"spec": {"resources": {"requests": {"storage": want}}}},
                    query=[("fieldManager", c.FIELD_MANAGER)], content_type="application/merge-patch+json",
                )  # fmt: skip
                kopf.event(
                    body,
                    type="Normal",
                    reason="StorageExpansionRequested",
                    message=f"{claim}: {have} -> {want}",
                )
        return desired, refusal

    def _scale(self, stack: TradingStackSpec, replicas: int) -> dict[str, Any] | None:
        """Set replicas through /scale as the bootstrap manager (never part of our applies)."""
        path = f"/apis/apps/v1/namespaces/{stack.namespace}/deployments/{stack.api_name()}"
        self.kube.call(
            "PATCH", path + "/scale", body={"spec": {"replicas": replicas}},
            query=[("fieldManager", c.BOOTSTRAP_FIELD_MANAGER)], content_type="application/merge-patch+json",
        )  # fmt: skip
        return self.kube.get("apps/v1", "Deployment", stack.namespace, stack.api_name())

    def _monitoring(self, body: Any, stack: TradingStackSpec) -> Condition:
        m = stack.monitoring
        ns = stack.namespace
        if m.enabled and m.dashboards:
            self._apply(body, mon.build_dashboards_configmap(stack))
        else:
            self._remove("v1", "ConfigMap", ns, stack.dashboards_name())
        wants_crds = m.enabled and (m.rules or m.service_monitor)
        if not wants_crds:
            return Condition(
                Cond.MONITORING_READY, True, Reason.DISABLED, "monitoring objects disabled by spec"
            )
        if not self.ctx.capabilities.monitoring():
            return Condition(
                Cond.MONITORING_READY,
                False,
                Reason.CRDS_MISSING,
                "monitoring.coreos.com/v1 ServiceMonitor/PrometheusRule not served; dashboards only",
            )
        for wanted, build, kind, child in (
            (m.service_monitor, mon.build_service_monitor, "ServiceMonitor", stack.api_name()),
            (m.rules, mon.build_prometheus_rule, "PrometheusRule", stack.rules_name()),
        ):
            if wanted:
                self._apply(body, build(stack))
            else:
                self._remove(c.MONITORING_GROUP_VERSION, kind, ns, child)
        return Condition(Cond.MONITORING_READY, True, Reason.APPLIED, "ServiceMonitor/PrometheusRule applied")

    def _last_backup_of(self, namespace: str, stack_name: str) -> str | None:
        times = [
            (p.get("status") or {}).get("lastSuccessTime")
            for p in self.kube.list(c.API_VERSION, c.KIND_POLICY, namespace)
            if (p.get("spec") or {}).get("stackRef", {}).get("name") == stack_name
        ]
        found = [t for t in times if t]
        return max(found) if found else None

    # -- TrainingRun ---------------------------------------------------------------------------

    def training_run(self, namespace: str, name: str) -> None:
        body = self._live(c.KIND_RUN, namespace, name)
        if body is None:
            return
        run = TrainingRunSpec.parse(body.get("spec"), Meta.from_body(body))
        old = body.get("status") or {}
        stack_body = self._live(c.KIND_STACK, namespace, run.stack)
        if stack_body is None and old.get("phase") not in TERMINAL:
            cond = Condition(
                Cond.STACK_READY, False, Reason.STACK_NOT_FOUND, f"TradingStack {run.stack} not found"
            )
            self._write_status(
                body, c.KIND_RUN, phase=Phase.PENDING, message=cond.message,
                conditions=[Condition(Cond.READY, False, Reason.STACK_NOT_FOUND, cond.message), cond],
                extra={"backend": old.get("backend")},
            )  # fmt: skip
            return
        backend = old.get("backend") or self._choose_backend(run)
        if backend is None:
            msg = "spec.backend is ray but KubeRay (ray.io/v1 RayJob) is not installed"
            cond = Condition(Cond.SUBMITTED, False, Reason.RAY_UNAVAILABLE, msg)
            self._write_status(
                body, c.KIND_RUN, phase=Phase.PENDING, message=msg,
                conditions=[Condition(Cond.READY, False, Reason.RAY_UNAVAILABLE, msg), cond],
            )  # fmt: skip
            return
        stack = TradingStackSpec.parse((stack_body or {}).get("spec"), Meta(run.stack, namespace))
        child_version, child_kind = (
            (c.RAY_GROUP_VERSION, "RayJob") if backend == "ray" else ("batch/v1", "Job")
        )
        if old.get("phase") in TERMINAL:
            # Finished runs are never resubmitted, even after the TTL removed the child.
            child = self.kube.get(child_version, child_kind, namespace, run.child_name())
        else:
            # The pods' identity first: admission refuses a pod whose ServiceAccount is missing.
            for access in tr.build_trainer_access(run):
                self._apply(body, access)
            build = tr.build_rayjob if backend == "ray" else tr.build_job
            try:
                child = self._apply(body, build(run, stack))
            except ApiError as exc:
                if exc.status != 422 or backend == "ray":
                    raise
                # A Job's pod template is immutable: a run submitted by an older operator (e.g.
                # without the trainer ServiceAccount) keeps its Job and is followed as it is.
                log.warning("TrainingRun %s/%s: keeping its Job as submitted (%s)", namespace, name,
                            exc.message[:200])  # fmt: skip
                child = self.kube.get(child_version, child_kind, namespace, run.child_name())
            if old.get("backend") is None:
                log.info("TrainingRun %s/%s runs as a %s", namespace, name, child_kind)
        if child is None and old.get("phase") in TERMINAL:
            return
        phase, detail = rayjob_outcome(child) if backend == "ray" else job_outcome(child)
        status = (child or {}).get("status") or {}
        started = status.get("startTime") or old.get("startTime")
        finished = status.get("completionTime") or status.get("endTime") or old.get("completionTime")
        if phase not in TERMINAL and started:
            begun = _parse_time(started)
            limit = run.active_deadline_seconds + 300
            if begun and (dt.datetime.now(dt.UTC) - begun).total_seconds() > limit:
                phase, detail = Phase.FAILED, f"DeadlineExceeded: running longer than {limit}s"
        extra: dict[str, Any] = {"backend": backend, "childName": run.child_name()}
        if started:
            extra["startTime"] = started
        if finished and phase in TERMINAL:
            extra["completionTime"] = finished
        begun, ended = _parse_time(started), _parse_time(finished) or dt.datetime.now(dt.UTC)
        if phase in TERMINAL and begun:
            seconds = int((ended - begun).total_seconds())
            extra["duration"] = old.get("duration") or _human_duration(seconds)
            if old.get("phase") not in TERMINAL:
                self.ctx.metrics.run_duration.labels(backend, phase).observe(seconds)
        if phase == Phase.SUCCEEDED:
            extra.update(self._training_result(namespace, run))
        submitted = Condition(
            Cond.SUBMITTED, True, Reason.RAY_JOB_CREATED if backend == "ray" else Reason.JOB_CREATED,
            f"{child_kind} {run.child_name()}",
        )  # fmt: skip
        reason = {
            Phase.SUCCEEDED: Reason.SUCCEEDED,
            Phase.FAILED: Reason.FAILED,
            Phase.RUNNING: Reason.RUNNING,
        }
        ready = Condition(Cond.READY, phase == Phase.SUCCEEDED, reason.get(phase, Reason.PENDING), detail)
        stack_cond = Condition(Cond.STACK_READY, True, Reason.STACK_FOUND, f"TradingStack {run.stack}")
        self._write_status(
            body,
            c.KIND_RUN,
            phase=phase,
            message=detail,
            conditions=[ready, stack_cond, submitted],
            extra=extra,
        )

    def _choose_backend(self, run: TrainingRunSpec) -> str | None:
        if run.backend == "job":
            return "job"
        has_ray = self.ctx.capabilities.ray()
        if run.backend == "ray":
            return "ray" if has_ray else None
        return "ray" if has_ray else "job"

    def _training_result(self, namespace: str, run: TrainingRunSpec) -> dict[str, Any]:
        """Metrics and model version the entrypoint left in `<run>-result` (when it did)."""
        cm = self.kube.get("v1", "ConfigMap", namespace, run.result_configmap())
        if cm is None:
            return {}
        try:
            result = json.loads((cm.get("data") or {}).get("result.json", "{}"))
        except ValueError:
            return {}
        metrics = {
            str(k): float(v) for k, v in (result.get("metrics") or {}).items() if isinstance(v, int | float)
        }
        out: dict[str, Any] = {"metrics": metrics}
        if result.get("modelVersion"):
            out["modelVersion"] = str(result["modelVersion"])
        primary = result.get("primaryMetric") or (sorted(metrics)[0] if metrics else None)
        if primary in metrics:
            out["metric"] = f"{primary}={metrics[primary]:.4g}"
        return out

    # -- BackupPolicy --------------------------------------------------------------------------

    def backup_policy(self, namespace: str, name: str) -> None:
        body: Any = self._live(c.KIND_POLICY, namespace, name)
        if body is None:
            return
        policy = BackupPolicySpec.parse(body.get("spec"), Meta.from_body(body))
        stack_body = self._live(c.KIND_STACK, namespace, policy.stack)
        if stack_body is None:
            msg = f"TradingStack {policy.stack} not found"
            self._write_status(
                body, c.KIND_POLICY, phase=Phase.PENDING, message=msg,
                conditions=[Condition(Cond.READY, False, Reason.STACK_NOT_FOUND, msg),
                            Condition(Cond.STACK_READY, False, Reason.STACK_NOT_FOUND, msg)],
            )  # fmt: skip
            return
        stack = TradingStackSpec.parse(stack_body.get("spec"), Meta(policy.stack, namespace))
        self._apply(body, bp.build_backup_pvc(policy), adopt=False)
        cron = self._apply(body, bp.build_backup_cronjob(policy, stack)) or {}
        runs = self._backup_runs(namespace, policy)
        succeeded = [r for r in runs if r["phase"] == Phase.SUCCEEDED]
        finished = [r for r in runs if r["phase"] in TERMINAL]
        extra: dict[str, Any] = {
            "recentRuns": runs[:10],
            "kept": min(len(succeeded), policy.keep_last),
            "lastScheduleTime": (cron.get("status") or {}).get("lastScheduleTime"),
        }
        if not policy.suspend:
            upcoming = next_fire(policy.schedule, dt.datetime.now(dt.UTC))
            extra["nextScheduleTime"] = upcoming.isoformat().replace("+00:00", "Z") if upcoming else None
        if succeeded:
            last = max(str(r.get("completionTime") or "") for r in succeeded)
            extra["lastSuccessTime"] = last
            parsed = _parse_time(last)
            if parsed:
                self.ctx.metrics.last_backup.labels(namespace, name).set(parsed.timestamp())
        extra = {k: v for k, v in extra.items() if v is not None}
        if not finished:
            last_cond = Condition(
                Cond.LAST_BACKUP_SUCCEEDED, True, Reason.NO_RUNS_YET, "no finished backup yet"
            )
        elif finished[0]["phase"] == Phase.SUCCEEDED:
            last_cond = Condition(
                Cond.LAST_BACKUP_SUCCEEDED, True, Reason.BACKUP_SUCCEEDED, finished[0]["name"]
            )
        else:
            last_cond = Condition(
                Cond.LAST_BACKUP_SUCCEEDED, False, Reason.BACKUP_FAILED, finished[0]["name"]
            )
        sched = Condition(
            Cond.SCHEDULED, True, Reason.CRONJOB_READY, f"CronJob {policy.cronjob_name()} ({policy.schedule})"
        )
        stack_cond = Condition(Cond.STACK_READY, True, Reason.STACK_FOUND, f"TradingStack {policy.stack}")
        ready = ready_condition([stack_cond, sched, last_cond], suspended=policy.suspend)
        if policy.suspend:
            phase = Phase.SUSPENDED
        elif not last_cond.ok:
            phase = Phase.DEGRADED
        else:
            phase = Phase.READY
        message = f"{policy.schedule}; {extra['kept']} kept" if ready.ok else ready.message
        if finished:
            newest = f"{finished[0]['name']}:{finished[0]['phase']}"
            extra["lastRun"] = newest
            if newest != (body.get("status") or {}).get("lastRun"):
                if finished[0]["phase"] == Phase.SUCCEEDED:
                    kopf.event(
                        body,
                        type="Normal",
                        reason=Reason.BACKUP_SUCCEEDED,
                        message=f"backup {finished[0]['name']} succeeded",
                    )
                else:
                    kopf.event(
                        body,
                        type="Warning",
                        reason=Reason.BACKUP_FAILED,
                        message=f"backup {finished[0]['name']} failed",
                    )
        self._write_status(
            body,
            c.KIND_POLICY,
            phase=phase,
            message=message,
            conditions=[ready, stack_cond, sched, last_cond],
            extra=extra,
        )

    def _backup_runs(self, namespace: str, policy: BackupPolicySpec) -> list[dict[str, Any]]:
        jobs = self.kube.list("batch/v1", "Job", namespace, f"{c.LABEL_POLICY}={policy.name}")
        runs = []
        for job in jobs:
            phase, _ = job_outcome(job)
            status = job.get("status") or {}
            run = {
                "name": job["metadata"]["name"],
                "phase": phase,
                "startTime": status.get("startTime") or job["metadata"].get("creationTimestamp"),
            }
            if status.get("completionTime"):
                run["completionTime"] = status["completionTime"]
            runs.append(run)
        runs.sort(key=lambda r: str(r.get("startTime") or ""), reverse=True)
        return runs
