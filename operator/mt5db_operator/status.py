"""The status contract shared by all three kinds, as small pure functions.

`Condition` values are composed into one status patch that also carries the top-level
`observedGeneration`; `status_patch` returns None when nothing changed, so an idle resync
writes nothing. `lastTransitionTime` changes only when a condition's status flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mt5db_operator.constants import Cond, Phase, Reason


@dataclass(frozen=True)
class Condition:
    type: str
    ok: bool
    reason: str
    message: str = ""

    @property
    def status(self) -> str:
        return "True" if self.ok else "False"


def merge_conditions(
    old: list[dict[str, Any]] | None, new: list[Condition], generation: int, now: str
) -> list[dict[str, Any]]:
    """Full condition list (merge-patch replaces lists whole), in the order given."""
    previous = {str(item.get("type")): item for item in old or []}
    out = []
    for cond in new:
        before = previous.get(cond.type)
        changed = before is None or before.get("status") != cond.status
        out.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": now
                if changed or before is None
                else before.get("lastTransitionTime", now),
                "observedGeneration": generation,
            }
        )
    return out


def ready_condition(parts: list[Condition], suspended: bool = False) -> Condition:
    """`Ready` is the conjunction of the parts that gate readiness."""
    if suspended:
        return Condition(Cond.READY, False, Reason.SUSPENDED, "suspended by spec.suspend")
    waiting = [p for p in parts if not p.ok]
    if not waiting:
        return Condition(Cond.READY, True, Reason.ALL_COMPONENTS_READY, "all components ready")
    return Condition(
        Cond.READY,
        False,
        Reason.COMPONENTS_NOT_READY,
        "; ".join(f"{p.type}: {p.message or p.reason}" for p in waiting),
    )


def stack_phase(
    ready: bool, suspended: bool, failed: bool, old_phase: str | None, upgrading: bool = False
) -> str:
    """Provisioning until first Ready; afterwards a roll-out is Upgrading and a regression Degraded."""
    if suspended:
        return Phase.SUSPENDED
    if failed:
        return Phase.FAILED
    if upgrading and old_phase in (Phase.READY, Phase.UPGRADING):
        return Phase.UPGRADING
    if ready:
        return Phase.READY
    if old_phase in (Phase.READY, Phase.DEGRADED):
        return Phase.DEGRADED
    return Phase.PROVISIONING


def status_patch(
    old_status: dict[str, Any] | None,
    *,
    phase: str,
    message: str,
    conditions: list[Condition],
    generation: int,
    now: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The complete new status, or None when it equals the old one."""
    old_status = dict(old_status or {})
    new: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "observedGeneration": generation,
        "conditions": merge_conditions(old_status.get("conditions"), conditions, generation, now),
    }
    new.update(extra or {})
    if all(old_status.get(key) == value for key, value in new.items()):
        return None
    return new


# -- readiness of children, from their real status -----------------------------------------------


def statefulset_condition(sts: dict[str, Any] | None) -> Condition:
    if sts is None:
        return Condition(Cond.DATABASE_READY, False, Reason.REPLICAS_NOT_READY, "StatefulSet not created yet")
    want = int(sts.get("spec", {}).get("replicas", 1) or 0)
    status = sts.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    current = status.get("observedGeneration", 0) >= sts["metadata"].get("generation", 0)
    if want and ready >= want and current:
        return Condition(Cond.DATABASE_READY, True, Reason.REPLICAS_READY, f"database {ready}/{want} ready")
    return Condition(Cond.DATABASE_READY, False, Reason.REPLICAS_NOT_READY, f"database {ready}/{want} ready")


def deployment_condition(dep: dict[str, Any] | None) -> Condition:
    if dep is None:
        return Condition(Cond.API_READY, False, Reason.DEPLOYMENT_UNAVAILABLE, "Deployment not created yet")
    status = dep.get("status") or {}
    want = int(dep.get("spec", {}).get("replicas", 1) or 0)
    ready = int(status.get("readyReplicas") or 0)
    if want == 0:
        return Condition(Cond.API_READY, False, Reason.SCALED_TO_ZERO, "API scaled to 0")
    available = any(
        cond.get("type") == "Available" and cond.get("status") == "True"
        for cond in status.get("conditions") or []
    )
    # Not gated on observedGeneration: during a roll-out (maxUnavailable 0) the previous
    # ReplicaSet keeps serving, and that is what ApiReady reports; `rolling_out` covers the rest.
    if available and int(status.get("availableReplicas") or 0) >= 1:
        return Condition(Cond.API_READY, True, Reason.DEPLOYMENT_AVAILABLE, f"API {ready}/{want} ready")
    return Condition(Cond.API_READY, False, Reason.DEPLOYMENT_UNAVAILABLE, f"API {ready}/{want} ready")


def rolling_out(dep: dict[str, Any] | None, sts: dict[str, Any] | None) -> bool:
    """A new API or database revision is still being rolled out."""
    if dep is not None:
        status = dep.get("status") or {}
        want = int((dep.get("spec") or {}).get("replicas") or 0)
        if status.get("observedGeneration", 0) < dep["metadata"].get("generation", 0):
            return True
        if want and (
            int(status.get("updatedReplicas") or 0) < want or int(status.get("replicas") or 0) > want
        ):
            return True
    if sts is not None:
        status = sts.get("status") or {}
        current, update = status.get("currentRevision"), status.get("updateRevision")
        if current and update and current != update:
            return True
    return False


def job_outcome(job: dict[str, Any] | None) -> tuple[str, str]:
    """(phase, message) of a batch/v1 Job: only Complete/Failed are terminal (not SuccessCriteriaMet)."""
    if job is None:
        return Phase.PENDING, "Job not created yet"
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return Phase.SUCCEEDED, cond.get("message") or "Job complete"
        if cond.get("type") == "Failed":
            return Phase.FAILED, f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".strip(": ")
    if status.get("active") or status.get("startTime"):
        return Phase.RUNNING, "Job running"
    return Phase.PENDING, "Job pending"


def rayjob_outcome(rayjob: dict[str, Any] | None) -> tuple[str, str]:
    """(phase, message) of a RayJob: never trust one field (KubeRay #2314, #3553)."""
    if rayjob is None:
        return Phase.PENDING, "RayJob not created yet"
    status = rayjob.get("status") or {}
    job_status = status.get("jobStatus") or ""
    deployment = status.get("jobDeploymentStatus") or ""
    detail = status.get("message") or status.get("reason") or ""
    if job_status == "SUCCEEDED" and deployment == "Complete":
        return Phase.SUCCEEDED, "RayJob succeeded"
    if deployment == "Failed" or job_status in ("FAILED", "STOPPED"):
        reason = status.get("reason") or job_status or deployment
        return Phase.FAILED, f"RayJob failed ({reason}){': ' + detail if detail else ''}"
    if job_status in ("RUNNING", "SUCCEEDED") or deployment in ("Running", "Complete"):
        return Phase.RUNNING, f"RayJob {deployment or 'running'} / {job_status or 'pending'}"
    return Phase.PENDING, f"RayJob {deployment or 'initializing'}"


KEPT_DUMPS_SHOWN = 50  # status.keptDumps lists at most this many names (newest first)


def backup_result(log_tail: str) -> dict[str, Any] | None:
    """The result of a `mt5db backup` run: its last log line, one JSON object (the backup
    component's contract, mt5db_backup.outcome). None when the tail holds no such line."""
    import json

    for line in reversed(log_tail.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) and value.get("action") == "backup" else None
    return None


def backup_status_fields(result: dict[str, Any]) -> dict[str, Any]:
    """What a run's result puts in BackupPolicy status: the dumps that exist after its retention
    pass (`kept`, `keptDumps`) and the dump it made (`lastBackup`)."""
    kept = [str(name) for name in result.get("kept") or []]
    last: dict[str, Any] = {
        "file": str(result.get("file", "")).rsplit("/", 1)[-1],
        "sizeBytes": result.get("size"),
        "sha256": result.get("sha256"),
        "verified": result.get("verified"),
        "durationSeconds": result.get("duration_s"),
    }
    return {
        "kept": len(kept),
        "keptDumps": kept[:KEPT_DUMPS_SHOWN],
        "lastBackup": {k: v for k, v in last.items() if v is not None and v != ""},
    }


def verification_condition(verify: bool, result: dict[str, Any] | None) -> Condition:
    """BackupVerified: the newest successful dump was restored into a scratch database and checked."""
    if not verify:
        return Condition(Cond.BACKUP_VERIFIED, False, Reason.VERIFICATION_DISABLED, "spec.verify is false")
    if result is None:
        return Condition(Cond.BACKUP_VERIFIED, False, Reason.NO_RUNS_YET, "no verified backup yet")
    name = str(result.get("file", "")).rsplit("/", 1)[-1]
    if result.get("verified") is True:
        return Condition(Cond.BACKUP_VERIFIED, True, Reason.RESTORE_VERIFIED, f"{name} restored and checked")
    return Condition(Cond.BACKUP_VERIFIED, False, Reason.VERIFICATION_FAILED, f"{name} was not verified")
