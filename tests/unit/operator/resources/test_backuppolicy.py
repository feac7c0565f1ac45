"""BackupPolicy builders: a Forbid CronJob with deadlines running `mt5db backup`."""

from __future__ import annotations

from mt5db_operator.resources import backuppolicy as bp
from mt5db_operator.specs import BackupPolicySpec, Meta

from ..helpers import assert_child, assert_hardened, stack

META = Meta("nightly", "trading", "u", 1)


def policy(**spec: object) -> BackupPolicySpec:
    return BackupPolicySpec.parse({"stackRef": {"name": "demo"}, "schedule": "0 3 * * *", **spec}, META)


def test_cronjob_forbids_overlap_and_has_deadlines() -> None:
    cj = bp.build_backup_cronjob(policy(verify=True, retention={"keepLast": 3, "maxAge": "7d"}), stack())
    assert_child(cj, "CronJob", "nightly-backup")
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 300
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert_hardened(pod)
    command = pod["containers"][0]["command"]
    assert command[:2] == ["mt5db", "backup"]
    assert command[command.index("--keep-last") + 1] == "3" and "--verify" in command
    assert pod["containers"][0]["image"] == stack().api.image
    assert spec["jobTemplate"]["metadata"]["labels"]["mt5db.io/backup-policy"] == "nightly"


def test_pvc_destination_is_created_but_not_owned() -> None:
    p = policy()
    pvc = bp.build_backup_pvc(p)
    assert pvc is not None and pvc["metadata"]["name"] == "nightly-backups"
    assert bp.build_backup_pvc(policy(destination={"pvc": {"claimName": "mine"}})) is None
    cj = bp.build_backup_cronjob(p, stack())
    volumes = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "nightly-backups"}} in volumes


def test_s3_destination_reads_credentials_from_the_secret() -> None:
    p = policy(destination={"s3": {"bucket": "b", "credentialsSecret": "creds", "endpoint": "https://m"}})
    assert bp.build_backup_pvc(p) is None
    container = bp.build_backup_cronjob(p, stack())["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "creds"
    assert "s3://b/nightly" in container["command"]
