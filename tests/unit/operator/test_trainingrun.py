"""TrainingRun builders: RayJob and the Job fallback share one set of arguments."""

from __future__ import annotations

from mt5db_operator.models import Meta, TrainingRunSpec
from mt5db_operator.resources import trainingrun as tr

from .helpers import assert_child, assert_hardened, stack

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
