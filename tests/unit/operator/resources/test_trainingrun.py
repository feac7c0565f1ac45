"""TrainingRun builders: RayJob and the Job fallback share one set of arguments."""

from __future__ import annotations

from pathlib import Path

from mt5db_operator.resources import trainingrun as tr
from mt5db_operator.specs import Meta, TrainingRunSpec

from ..helpers import assert_child, assert_grants_only, assert_hardened, assert_runs_as, stack

REPO = Path(__file__).resolve().parents[4]

RUN = TrainingRunSpec.parse(
    {
        "stackRef": {"name": "demo"},
        "model": {"type": "informer", "config": "advanced"},
        "data": {
            "symbols": ["EURUSD", "GBPUSD"],
            "timeframe": "H1",
            "start": "2022-01-01",
            "end": "2024-01-01",
        },
        "resources": {"workers": 3, "cpu": "4", "memory": "8Gi", "gpu": 1},
        "ttlSecondsAfterFinished": 600,
        "activeDeadlineSeconds": 3600,
    },
    Meta("run1", "trading", "u", 1),
)


def test_rayjob_shape() -> None:
    rj = tr.build_rayjob(RUN, stack())
    assert_child(rj, "RayJob", "run1")
    assert rj["apiVersion"] == "ray.io/v1"
    spec = rj["spec"]
    assert spec["entrypoint"].startswith("python -m mt5db_training.ray_entry --run run1 ")
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 600
    assert spec["activeDeadlineSeconds"] == 3600
    (workers,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 2
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1}
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in head["volumes"])
    assert_hardened(head)


def test_job_fallback_runs_the_same_arguments() -> None:
    job = tr.build_job(RUN, stack())
    assert_child(job, "Job", "run1")
    spec = job["spec"]
    assert spec["completions"] == spec["parallelism"] == 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["ttlSecondsAfterFinished"] == 600 and spec["activeDeadlineSeconds"] == 3600
    command = spec["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["mt5db", "train"]
    assert command[2:] == tr.ray_entrypoint(RUN).split()[3:]
    actions = [r["action"] for r in spec["podFailurePolicy"]["rules"]]
    assert actions == ["FailJob", "Ignore"]
    assert_hardened(spec["template"]["spec"])


def test_training_pods_may_reach_the_database() -> None:
    labels = tr.build_job(RUN, stack())["spec"]["template"]["metadata"]["labels"]
    assert labels["mt5db.io/db-client"] == "true" and labels["mt5db.io/stack"] == "demo"


def test_trainer_may_write_its_result_configmap_only() -> None:
    sa, role, binding, cm = tr.build_trainer_access(RUN)
    for obj, kind, name in ((sa, "ServiceAccount", "run1-trainer"), (role, "Role", "run1-trainer"),
                            (binding, "RoleBinding", "run1-trainer"), (cm, "ConfigMap", "run1-result")):  # fmt: skip
        assert_child(obj, kind, name)
        assert obj["metadata"]["labels"]["mt5db.io/training-run"] == "run1"
    assert sa["automountServiceAccountToken"] is False  # pods opt in
    assert_grants_only(role, "configmaps", [RUN.result_configmap()], ["get", "update", "patch"])
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "run1-trainer",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "run1-trainer", "namespace": "trading"}]
    # The operator's apply never sets data: the entrypoint owns `result.json`.
    assert "data" not in cm and RUN.result_configmap() == "run1-result"
    assert tr.build_trainer_access(RUN) == tr.build_trainer_access(RUN)  # deterministic


def test_training_pods_run_as_the_trainer() -> None:
    job_pod = tr.build_job(RUN, stack())["spec"]["template"]["spec"]
    assert_runs_as(job_pod, "run1-trainer", token=True)
    env = {e["name"]: e for e in job_pod["containers"][0]["env"]}
    assert (
        env["MT5DB_RESULT_CONFIGMAP"]["value"] == "run1-result" and env["MT5DB_RUN_NAME"]["value"] == "run1"
    )
    spec = tr.build_rayjob(RUN, stack())["spec"]
    cluster = spec["rayClusterSpec"]
    assert_runs_as(cluster["headGroupSpec"]["template"]["spec"], "run1-trainer", token=True)  # the driver
    (workers,) = cluster["workerGroupSpecs"]
    assert_runs_as(workers["template"]["spec"], "run1-trainer", token=False)
    submitter = spec["submitterPodTemplate"]["spec"]
    assert_runs_as(submitter, "run1-trainer", token=False)
    assert submitter["restartPolicy"] == "Never"
    (container,) = submitter["containers"]
    assert container["name"] == "ray-job-submitter" and "command" not in container  # KubeRay fills it
    assert container["image"] == RUN.image
    assert_hardened(submitter)


def test_a_failed_publish_fails_the_job_instead_of_retraining() -> None:
    (fail, _) = tr.build_job(RUN, stack())["spec"]["podFailurePolicy"]["rules"]
    assert fail["onExitCodes"]["values"] == [tr.CONFIG_ERROR_EXIT_CODE, tr.PUBLISH_FAILED_EXIT_CODE] == [2, 3]


def test_the_examples_params_reach_the_trainers_config() -> None:
    """spec.model.params becomes the trainer's options: the example's 300 trees of depth 8 are what
    trains (once they were ignored), and every key the CRD admits is an option the trainer has."""
    import argparse

    import yaml

    from mt5db_operator.specs import TRAINER_PARAMS
    from mt5db_training.cli import add_train_arguments, check_train_arguments, train_config

    example = yaml.safe_load((REPO / "examples" / "trainingrun.yaml").read_text())
    run = TrainingRunSpec.parse(example["spec"], Meta("rf", "trading", "u", 1))
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args([*run.train_args(), "--database-url", "postgresql://x"])
    assert check_train_arguments(args) is None
    rf = train_config(args).rf
    assert (rf.n_estimators, rf.max_depth) == (300, 8)
    assert args.symbols == ("EURUSD", "GBPUSD")
    schema = yaml.safe_load((REPO / "crds" / "trainingruns.mt5db.io.yaml").read_text())
    version = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    admitted = version["properties"]["spec"]["properties"]["model"]["properties"]["params"]["properties"]
    assert set(admitted) == set(TRAINER_PARAMS)
    options = {opt for action in parser._actions for opt in action.option_strings}
    assert set(TRAINER_PARAMS.values()) <= options
