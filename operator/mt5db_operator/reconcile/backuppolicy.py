"""The BackupPolicy pass: the backup claim and the CronJob, run history from the CronJob's Jobs,
the next fire time, Events for finished runs, one status patch.

The claim a policy creates for its dumps is deliberately not owned (deleting a policy must not
delete its backups), so it is applied without adoption and never deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mt5db_operator import constants as c
from mt5db_operator.constants import Cond, Phase, Reason
from mt5db_operator.context import Context
from mt5db_operator.cron import next_fire
from mt5db_operator.kubeapi import ApiError
from mt5db_operator.reconcile.children import Children
from mt5db_operator.reconcile.owner import TERMINAL, Owner, parse_time, read_live
from mt5db_operator.resources import backuppolicy as bp
from mt5db_operator.specs import BackupPolicySpec, Meta, TradingStackSpec
from mt5db_operator.status import (
    Condition,
    backup_result,
    backup_status_fields,
    job_outcome,
    ready_condition,
    verification_condition,
)

RECENT_RUNS = 10  # status.recentRuns, newest first
LOG_TAIL_LINES = 20  # the result is the last line; read a few more lines than that one


def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One level-based pass over BackupPolicy `namespace/name` (gone or deleting: nothing to do)."""
    owner = Owner.read(ctx, c.KIND_POLICY, namespace, name)
    if owner is None:
        return
    policy = BackupPolicySpec.parse(owner.spec, owner.meta)
    stack_body = read_live(ctx, c.KIND_STACK, namespace, policy.stack)
    if stack_body is None:
        msg = f"TradingStack {policy.stack} not found"
        owner.write_status(
            phase=Phase.PENDING, message=msg,
            conditions=[Condition(Cond.READY, False, Reason.STACK_NOT_FOUND, msg),
                        Condition(Cond.STACK_READY, False, Reason.STACK_NOT_FOUND, msg)],
        )  # fmt: skip
        return
    stack = TradingStackSpec.parse(stack_body.get("spec"), Meta(policy.stack, namespace))
    children = Children(ctx, owner.body)
    claim = bp.build_backup_pvc(policy)
    if claim is not None:
        children.ensure(claim, owned=False)
    cron = children.ensure(bp.build_backup_cronjob(policy, stack)) or {}
    runs, uids, verifying = _backup_runs(ctx, namespace, policy)
    result = _newest_result(ctx, namespace, runs, uids)
    _write_status(ctx, owner, policy, cron, runs, result, verifying)


def _write_status(
    ctx: Context,
    owner: Owner,
    policy: BackupPolicySpec,
    cron: dict[str, Any],
    runs: list[dict[str, Any]],
    result: dict[str, Any] | None,
    verifying: set[str],
) -> None:
    succeeded = [r for r in runs if r["phase"] == Phase.SUCCEEDED]
    finished = [r for r in runs if r["phase"] in TERMINAL]
    extra: dict[str, Any] = {
        "recentRuns": runs[:RECENT_RUNS],
        "lastScheduleTime": (cron.get("status") or {}).get("lastScheduleTime"),
    }
    # What exists, as the newest successful run saw it after pruning; never an estimate. Until a
    # run's result is read, the previous figures stay.
    if result is not None:
        extra.update(backup_status_fields(result))
    else:
        extra.update({k: owner.status[k] for k in ("kept", "keptDumps", "lastBackup") if k in owner.status})
    if not policy.suspend:
        upcoming = next_fire(policy.schedule, dt.datetime.now(dt.UTC))
        extra["nextScheduleTime"] = upcoming.isoformat().replace("+00:00", "Z") if upcoming else None
    if succeeded:
        last = max(str(r.get("completionTime") or "") for r in succeeded)
        extra["lastSuccessTime"] = last
        parsed = parse_time(last)
        if parsed:
            ctx.metrics.last_backup.labels(policy.meta.namespace, policy.name).set(parsed.timestamp())
    # A run with --verify exits 0 only after its dump was restored into a scratch database and
    # compared (docs/backup.md), so its success is the newest verified restore.
    verified_runs = [r for r in succeeded if r["name"] in verifying]
    if verified_runs:
        parsed = parse_time(max(str(r.get("completionTime") or "") for r in verified_runs))
        if parsed:
            ctx.metrics.last_verified.labels(policy.meta.namespace, policy.name).set(parsed.timestamp())
    extra = {k: v for k, v in extra.items() if v is not None}
    if not finished:
        last_cond = Condition(Cond.LAST_BACKUP_SUCCEEDED, True, Reason.NO_RUNS_YET, "no finished backup yet")
    elif finished[0]["phase"] == Phase.SUCCEEDED:
        last_cond = Condition(Cond.LAST_BACKUP_SUCCEEDED, True, Reason.BACKUP_SUCCEEDED, finished[0]["name"])
    else:
        last_cond = Condition(Cond.LAST_BACKUP_SUCCEEDED, False, Reason.BACKUP_FAILED, finished[0]["name"])
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
    kept = extra.get("kept")
    message = (
        (f"{policy.schedule}; {kept if kept is not None else 'no'} dumps kept") if ready.ok else ready.message
    )
    if finished:
        newest = f"{finished[0]['name']}:{finished[0]['phase']}"
        extra["lastRun"] = newest
        if newest != owner.status.get("lastRun"):
            if finished[0]["phase"] == Phase.SUCCEEDED:
                owner.event(Reason.BACKUP_SUCCEEDED, f"backup {finished[0]['name']} succeeded")
            else:
                owner.event(Reason.BACKUP_FAILED, f"backup {finished[0]['name']} failed", warning=True)
    verified = verification_condition(policy.verify, result)
    if result is None and policy.verify:
        # Keep the condition a previous pass computed from a result it could read.
        previous = next(
            (cd for cd in owner.status.get("conditions") or [] if cd.get("type") == Cond.BACKUP_VERIFIED),
            None,
        )
        if previous is not None:
            verified = Condition(Cond.BACKUP_VERIFIED, previous.get("status") == "True",
                                 previous.get("reason", ""), previous.get("message", ""))  # fmt: skip
    owner.write_status(
        phase=phase, message=message, conditions=[ready, stack_cond, sched, last_cond, verified], extra=extra
    )


def _backup_runs(
    ctx: Context, namespace: str, policy: BackupPolicySpec
) -> tuple[list[dict[str, Any]], dict[str, str], set[str]]:
    """The CronJob's Jobs (labelled with the policy) as run records, newest first, their uids, and
    the names of the runs that verify their dump (their command has --verify)."""
    jobs = ctx.kube.list("batch/v1", "Job", namespace, f"{c.LABEL_POLICY}={policy.name}")
    runs = []
    uids = {}
    verifying = set()
    for job in jobs:
        uids[job["metadata"]["name"]] = job["metadata"].get("uid", "")
        containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        if any("--verify" in [*(k.get("command") or []), *(k.get("args") or [])] for k in containers):
            verifying.add(job["metadata"]["name"])
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
    return runs, uids, verifying


def _newest_result(
    ctx: Context, namespace: str, runs: list[dict[str, Any]], uids: dict[str, str]
) -> dict[str, Any] | None:
    """The result line of the newest successful run (`runs` newest first), from its pod's log
    (read once per Job: a finished Job never changes). None while it cannot be read (no
    successful run, no pod, no log yet)."""
    newest = next((r for r in runs if r["phase"] == Phase.SUCCEEDED), None)
    if newest is None:
        return None
    name = newest["name"]
    key = f"{namespace}/{name}/{uids.get(name, '')}"
    if key in ctx.results:
        return ctx.results[key]
    try:
        pods = ctx.kube.list("v1", "Pod", namespace, f"batch.kubernetes.io/job-name={name}")
        for pod in pods:
            if (pod.get("status") or {}).get("phase") != "Succeeded":
                continue
            result = backup_result(
                ctx.kube.pod_log(namespace, pod["metadata"]["name"], "backup", LOG_TAIL_LINES)
            )
            if result is not None:
                ctx.remember_result(key, result)
                return result
    except ApiError:
        return None  # e.g. the pod's node is gone: retried on the next pass
    return None
