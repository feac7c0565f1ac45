"""The status contract: transitions, observedGeneration, no-op detection, child readiness."""

from __future__ import annotations

from mt5db_operator import status
from mt5db_operator.constants import Cond, Phase, Reason
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

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_status_patch_writes_generation_with_conditions_and_skips_no_change() -> None:
    conds = [Condition(Cond.READY, False, Reason.COMPONENTS_NOT_READY, "x")]
    first = status_patch({}, phase=Phase.PROVISIONING, message="m", conditions=conds, generation=2, now=T0)
    assert first is not None
    assert first["observedGeneration"] == 2 and first["conditions"][0]["observedGeneration"] == 2
    again = status_patch(first, phase=Phase.PROVISIONING, message="m", conditions=conds, generation=2, now=T1)
    assert again is None


def test_last_transition_time_moves_only_on_status_flip() -> None:
    old = status_patch(
        {}, phase="P", message="", conditions=[Condition("A", False, "R1", "")], generation=1, now=T0
    )
    same = status_patch(
        old, phase="P", message="", conditions=[Condition("A", False, "R2", "m")], generation=1, now=T1
    )
    assert same is not None and same["conditions"][0]["lastTransitionTime"] == T0
    flipped = status_patch(
        old, phase="P", message="", conditions=[Condition("A", True, "R2", "")], generation=1, now=T1
    )
    assert flipped is not None and flipped["conditions"][0]["lastTransitionTime"] == T1


def test_ready_and_phase() -> None:
    ok = Condition(Cond.API_READY, True, "r")
    bad = Condition(Cond.DATABASE_READY, False, "r", "db 0/1")
    assert ready_condition([ok]).ok
    assert "DatabaseReady: db 0/1" in ready_condition([ok, bad]).message
    assert ready_condition([ok], suspended=True).reason == Reason.SUSPENDED
    assert stack_phase(False, False, False, None) == Phase.PROVISIONING
    assert stack_phase(False, False, False, Phase.READY) == Phase.DEGRADED
    assert stack_phase(True, False, False, Phase.DEGRADED) == Phase.READY
    assert stack_phase(True, True, False, None) == Phase.SUSPENDED
    assert stack_phase(True, False, False, Phase.READY, upgrading=True) == Phase.UPGRADING
    assert stack_phase(False, False, False, Phase.UPGRADING, upgrading=True) == Phase.UPGRADING
    assert stack_phase(False, False, False, None, upgrading=True) == Phase.PROVISIONING
    assert stack_phase(True, False, False, Phase.UPGRADING) == Phase.READY


def test_rolling_out() -> None:
    dep = {"metadata": {"generation": 2}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1}}  # fmt: skip
    assert rolling_out(dep, None)
    dep["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2}
    assert not rolling_out(dep, None)
    sts = {"metadata": {}, "status": {"currentRevision": "a", "updateRevision": "b"}}
    assert rolling_out(None, sts)


def test_statefulset_and_deployment_readiness_from_real_status() -> None:
    sts = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 1, "observedGeneration": 1},
    }
    assert not statefulset_condition(sts).ok, "stale observedGeneration is not ready"
    sts["status"]["observedGeneration"] = 2
    assert statefulset_condition(sts).ok
    dep = {"metadata": {"generation": 1}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 1, "availableReplicas": 2, "readyReplicas": 2,
                      "conditions": [{"type": "Available", "status": "True"}]}}  # fmt: skip
    assert deployment_condition(dep).ok
    dep["status"]["conditions"][0]["status"] = "False"
    assert not deployment_condition(dep).ok


def test_job_terminal_only_on_complete_or_failed() -> None:
    job = {"status": {"startTime": T0, "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}}
    assert job_outcome(job)[0] == Phase.RUNNING
    job["status"]["conditions"].append({"type": "Complete", "status": "True"})
    assert job_outcome(job)[0] == Phase.SUCCEEDED
    failed = {
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    }
    assert job_outcome(failed) == (Phase.FAILED, "BackoffLimitExceeded")


def test_rayjob_needs_both_fields_to_succeed() -> None:
    def rj(job: str, dep: str) -> dict[str, object]:
        return {"status": {"jobStatus": job, "jobDeploymentStatus": dep}}

    assert rayjob_outcome(rj("SUCCEEDED", "Complete"))[0] == Phase.SUCCEEDED
    assert rayjob_outcome(rj("SUCCEEDED", "Running"))[0] == Phase.RUNNING
    assert rayjob_outcome(rj("RUNNING", "Failed"))[0] == Phase.FAILED  # KubeRay #2314
    assert rayjob_outcome(rj("STOPPED", "Running"))[0] == Phase.FAILED
    assert rayjob_outcome(rj("", "Initializing"))[0] == Phase.PENDING


# -- backup results (the last JSON line of a `mt5db backup` run's log) ----------------------------


def test_backup_result_is_the_last_json_line_of_a_backup_run() -> None:
    log = 'dump: 3 tables\n{"action": "verify", "ok": true}\nretention: kept 2\n' \
          '{"action": "backup", "ok": true, "file": "/backups/p-1.dump", "kept": ["p-1.dump", "p-0.dump"]}\n'  # fmt: skip
    result = status.backup_result(log)
    assert result is not None and result["kept"] == ["p-1.dump", "p-0.dump"]
    assert status.backup_result("no json here\n") is None
    assert status.backup_result('{"action": "restore", "ok": true}') is None
    assert status.backup_result('{"action": "backup", "ok": tr') is None


def test_backup_status_fields_report_what_exists_never_an_estimate() -> None:
    fields = status.backup_status_fields(
        {"file": "/backups/p-1.dump", "size": 2048, "sha256": "ab", "verified": True, "duration_s": 1.5,
         "kept": ["p-1.dump", "p-0.dump"]}
    )  # fmt: skip
    assert fields == {
        "kept": 2,
        "keptDumps": ["p-1.dump", "p-0.dump"],
        "lastBackup": {
            "file": "p-1.dump",
            "sizeBytes": 2048,
            "sha256": "ab",
            "verified": True,
            "durationSeconds": 1.5,
        },
    }
    assert status.backup_status_fields({"file": "/b/x.dump"}) == {
        "kept": 0,
        "keptDumps": [],
        "lastBackup": {"file": "x.dump"},
    }


def test_verification_condition() -> None:
    assert status.verification_condition(False, None).reason == "VerificationDisabled"
    assert status.verification_condition(True, None).reason == "NoRunsYet"
    ok = status.verification_condition(True, {"file": "/b/x.dump", "verified": True})
    assert ok.ok and "x.dump" in ok.message
    assert not status.verification_condition(True, {"file": "/b/x.dump", "verified": False}).ok
