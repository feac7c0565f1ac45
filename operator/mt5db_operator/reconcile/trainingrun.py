"""The TrainingRun pass: choose the backend once, submit the run's identity and its RayJob or Job,
follow the child's outcome, mirror the published result, write one status patch.

Finished runs are never resubmitted (not even after the TTL removed the child), and a Job whose
(immutable) pod template differs from what this operator would build is followed as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.constants import Cond, Phase, Reason
from mt5db_operator.context import Context
from mt5db_operator.kubeapi import ApiError
from mt5db_operator.reconcile.children import Children, Ref
from mt5db_operator.reconcile.owner import TERMINAL, Owner, parse_time, read_live
from mt5db_operator.resources import trainingrun as tr
from mt5db_operator.specs import Meta, TradingStackSpec, TrainingRunSpec
from mt5db_operator.status import Condition, job_outcome, rayjob_outcome

log = logging.getLogger(__name__)

# Our own deadline on top of the child's activeDeadlineSeconds (KubeRay's may never fire).
DEADLINE_GRACE_SECONDS = 300


def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One level-based pass over TrainingRun `namespace/name` (gone or deleting: nothing to do)."""
    owner = Owner.read(ctx, c.KIND_RUN, namespace, name)
    if owner is None:
        return
    run = TrainingRunSpec.parse(owner.spec, owner.meta)
    old = owner.status
    stack_body = read_live(ctx, c.KIND_STACK, namespace, run.stack)
    if stack_body is None and old.get("phase") not in TERMINAL:
        cond = Condition(
            Cond.STACK_READY, False, Reason.STACK_NOT_FOUND, f"TradingStack {run.stack} not found"
        )
        owner.write_status(
            phase=Phase.PENDING, message=cond.message,
            conditions=[Condition(Cond.READY, False, Reason.STACK_NOT_FOUND, cond.message), cond],
            extra={"backend": old.get("backend")},
        )  # fmt: skip
        return
    backend = old.get("backend") or _choose_backend(ctx, run)
    if backend is None:
        msg = "spec.backend is ray but KubeRay (ray.io/v1 RayJob) is not installed"
        cond = Condition(Cond.SUBMITTED, False, Reason.RAY_UNAVAILABLE, msg)
        owner.write_status(
            phase=Phase.PENDING, message=msg,
            conditions=[Condition(Cond.READY, False, Reason.RAY_UNAVAILABLE, msg), cond],
        )  # fmt: skip
        return
    stack = TradingStackSpec.parse((stack_body or {}).get("spec"), Meta(run.stack, namespace))
    child_ref = (
        Ref(c.RAY_GROUP_VERSION, "RayJob", namespace, run.child_name())
        if backend == "ray"
        else Ref("batch/v1", "Job", namespace, run.child_name())
    )
    if old.get("phase") in TERMINAL:
        # Finished runs are never resubmitted, even after the TTL removed the child.
        child = ctx.kube.get(child_ref.api_version, child_ref.kind, namespace, child_ref.name)
        if child is None:
            return
    else:
        child = _submit(ctx, owner, run, stack, backend, child_ref)
    _write_status(ctx, owner, run, backend, child_ref, child)


def _choose_backend(ctx: Context, run: TrainingRunSpec) -> str | None:
    """`ray` or `job` (recorded in status.backend and kept); None: ray wanted but not served."""
    if run.backend == "job":
        return "job"
    has_ray = ctx.capabilities.ray()
    if run.backend == "ray":
        return "ray" if has_ray else None
    return "ray" if has_ray else "job"


def _submit(
    ctx: Context, owner: Owner, run: TrainingRunSpec, stack: TradingStackSpec, backend: str, child_ref: Ref
) -> dict[str, Any] | None:
    """The pods' identity, then the RayJob or Job; returns the child as the API server has it."""
    children = Children(ctx, owner.body)
    # The pods' identity first: admission refuses a pod whose ServiceAccount is missing.
    for access in tr.build_trainer_access(run):
        children.ensure(access)
    build = tr.build_rayjob if backend == "ray" else tr.build_job
    try:
        child = children.ensure(build(run, stack))
    except ApiError as exc:
        if exc.status != 422 or backend == "ray":
            raise
        # A Job's pod template is immutable: a run submitted by an older operator (e.g.
        # without the trainer ServiceAccount) keeps its Job and is followed as it is.
        log.warning("TrainingRun %s/%s: keeping its Job as submitted (%s)", run.meta.namespace, run.name,
                    exc.message[:200])  # fmt: skip
        child = children.live(child_ref)
    if owner.status.get("backend") is None:
        log.info("TrainingRun %s/%s runs as a %s", run.meta.namespace, run.name, child_ref.kind)
    return child


def _write_status(
    ctx: Context,
    owner: Owner,
    run: TrainingRunSpec,
    backend: str,
    child_ref: Ref,
    child: dict[str, Any] | None,
) -> None:
    old = owner.status
    phase, detail = rayjob_outcome(child) if backend == "ray" else job_outcome(child)
    status = (child or {}).get("status") or {}
    started = status.get("startTime") or old.get("startTime")
    finished = status.get("completionTime") or status.get("endTime") or old.get("completionTime")
    if phase not in TERMINAL and started:
        begun = parse_time(started)
        limit = run.active_deadline_seconds + DEADLINE_GRACE_SECONDS
        if begun and (dt.datetime.now(dt.UTC) - begun).total_seconds() > limit:
            phase, detail = Phase.FAILED, f"DeadlineExceeded: running longer than {limit}s"
    extra: dict[str, Any] = {"backend": backend, "childName": run.child_name()}
    if started:
        extra["startTime"] = started
    if finished and phase in TERMINAL:
        extra["completionTime"] = finished
    begun, ended = parse_time(started), parse_time(finished) or dt.datetime.now(dt.UTC)
    if phase in TERMINAL and begun:
        seconds = int((ended - begun).total_seconds())
        extra["duration"] = old.get("duration") or _human_duration(seconds)
        if old.get("phase") not in TERMINAL:
            ctx.metrics.run_duration.labels(backend, phase).observe(seconds)
    if phase == Phase.SUCCEEDED:
        extra.update(_training_result(ctx, run))
    submitted = Condition(
        Cond.SUBMITTED, True, Reason.RAY_JOB_CREATED if backend == "ray" else Reason.JOB_CREATED,
        f"{child_ref.kind} {run.child_name()}",
    )  # fmt: skip
    reason = {
        Phase.SUCCEEDED: Reason.SUCCEEDED,
        Phase.FAILED: Reason.FAILED,
        Phase.RUNNING: Reason.RUNNING,
    }
    ready = Condition(Cond.READY, phase == Phase.SUCCEEDED, reason.get(phase, Reason.PENDING), detail)
    stack_cond = Condition(Cond.STACK_READY, True, Reason.STACK_FOUND, f"TradingStack {run.stack}")
    owner.write_status(phase=phase, message=detail, conditions=[ready, stack_cond, submitted], extra=extra)


def _human_duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"


def _models(raw: Any) -> list[dict[str, Any]]:
    """The registered version(s) per symbol and whether the gate promoted each (typed, bounded)."""
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw[:50]:
        if not isinstance(item, dict) or not isinstance(item.get("version"), str):
            continue
        alias = item.get("alias") if item.get("alias") in ("champion", "challenger") else "none"
        out.append(
            {
                "symbol": str(item.get("symbol", "")),
                "timeframe": str(item.get("timeframe", "")),
                "version": item["version"],
                "alias": alias,
                "promoted": bool(item.get("promoted")),
                "reason": str(item.get("reason", ""))[:2000],
            }
        )
    return out


def _training_result(ctx: Context, run: TrainingRunSpec) -> dict[str, Any]:
    """Metrics and model version the entrypoint left in `<run>-result` (when it did)."""
    cm = ctx.kube.get("v1", "ConfigMap", run.meta.namespace, run.result_configmap())
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
    models = _models(result.get("models"))
    if models:
        out["models"] = models
    primary = result.get("primaryMetric") or (sorted(metrics)[0] if metrics else None)
    if primary in metrics:
        out["metric"] = f"{primary}={metrics[primary]:.4g}"
    return out
