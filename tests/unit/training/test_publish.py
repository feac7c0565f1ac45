"""The run's result document for the operator (`<run>-result` ConfigMap) and when it is written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mt5db_training import publish

SMALL_RF = ["--horizons", "1", "--n-estimators", "5", "--folds", "2", "--test-bars", "300"]
SMALL_RF += ["--bootstrap-reps", "50", "--lockbox-start", "", "--no-leakage-check", "--n-jobs", "1"]


def _report(algo: str = "random_forest", task: str = "regression") -> dict[str, Any]:
    model = "random_forest" if algo == "random_forest" else "informer"
    block: dict[str, Any] = {
        "classification": {
            model: {
                "auc": 0.526,
                "auc_ci95": [0.502, 0.55],
                "brier_skill": -0.05,
                "brier_skill_ci95": [-0.1, 0.0],
            },
            "logistic_regression": {"auc": 0.494, "auc_ci95": [0.46, 0.52], "brier_skill": -0.009},
            "prior": {"auc": 0.5, "brier_skill": 0.0},
        },
        "backtest": {
            model: {
                "trades": 526,
                "total_net_pips": 40.2,
                "total_net_pips_ci95": [-646.0, 821.0],
                "hit_rate": 0.5,
            },
            "always_long": {"total_net_pips": -783.0},
            "always_short": {"total_net_pips": -907.0},
        },
        "verdict": "does not beat baselines",
        "verdict_reasons": ["R2_OOS CI lower bound <= 0"],
    }
    if task == "regression":
        block["regression"] = {
            model: {"r2_oos": -0.0006, "r2_oos_ci95": [-0.0249, 0.0246], "mae": 1.194e-3},
            "zero": {"r2_oos": 0.0, "mae": 1.175e-3},
            "persistence": {"r2_oos": -0.973, "mae": 2e-3},
        }
    other = json.loads(json.dumps(block))
    other["verdict"] = "beats baselines"
    other["backtest"][model]["hit_rate"] = float("nan")
    other["classification"][model]["brier_skill"] = None  # RF scores have no probability
    return {
        "run": "tr-1",
        "algo": algo,
        "task": task,
        "data": {"symbol": "EURUSD", "timeframe": "H1"},
        "horizons": {"5": block, "10": other},
        "artifacts": {"5": {"sha256": "a" * 64}, "10": {"sha256": "b" * 64}},
        "verdict": "beats baselines at h=10",
    }


def test_document_has_numbers_only_next_to_their_baselines() -> None:
    doc = publish.result_document(_report(), {"rf_ret_EURUSD_H1": 7})
    metrics = doc["metrics"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["r2_oos_h5"] == -0.0006 and metrics["r2_oos_ci_low_h5"] == -0.0249
    assert metrics["r2_oos_persistence_h5"] == -0.973 and metrics["mae_zero_h5"] == 1.175e-3
    assert metrics["auc_h5"] == 0.526 and metrics["auc_ci_low_h5"] == 0.502 and metrics["auc_lr_h5"] == 0.494
    assert metrics["brier_skill_h5"] == -0.05 and "brier_skill_h10" not in metrics  # None is dropped
    assert metrics["net_pips_h5"] == 40.2 and metrics["net_pips_ci_low_h5"] == -646.0
    assert metrics["trades_h5"] == 526.0
    assert metrics["net_pips_always_long_h5"] == -783.0 and metrics["net_pips_always_short_h5"] == -907.0
    assert metrics["beats_baselines_h5"] == 0.0 and metrics["beats_baselines_h10"] == 1.0
    # The horizon that beats its baselines is the headline; one version bundles every horizon.
    assert doc["primaryMetric"] == "r2_oos_h10"
    assert doc["modelVersion"] == "rf_ret_EURUSD_H1:v7"
    assert doc["modelVersions"] == {"rf_ret_EURUSD_H1": 7}
    assert doc["verdict"] == "beats baselines at h=10" and doc["run"] == "tr-1"
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN/inf anywhere


def test_classification_run_headlines_auc_and_has_no_version_without_a_registry() -> None:
    report = _report("informer", "classification")
    for block in report["horizons"].values():
        block["verdict"] = "does not beat baselines"
    doc = publish.result_document(report)
    assert doc["primaryMetric"] == "auc_h5"  # none beats its baselines: the first horizon
    assert "r2_oos_h5" not in doc["metrics"] and doc["metrics"]["auc_h10"] == 0.526
    assert "modelVersion" not in doc and "modelVersions" not in doc


def test_writer_does_nothing_without_the_variable_or_outside_a_pod(tmp_path: Path) -> None:
    token = tmp_path / "token"
    assert publish.write_result_configmap({"metrics": {}}, env={}, token_path=token) is None
    env = {publish.ENV_CONFIGMAP: "tr-1-result"}
    assert publish.write_result_configmap({"metrics": {}}, env=env, token_path=token) is None
    env |= {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert publish.write_result_configmap({"metrics": {}}, env=env, token_path=token) is None  # no token


def test_unreachable_api_is_a_publish_error(tmp_path: Path) -> None:
    import certifi

    from mt5db_core.net import free_port

    (tmp_path / "token").write_text("t")
    (tmp_path / "namespace").write_text("ns")
    env = {publish.ENV_CONFIGMAP: "tr-1-result", "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(free_port())}  # fmt: skip
    with pytest.raises(publish.PublishError, match="ns/tr-1-result"):
        # any PEM bundle builds the TLS context; nothing listens on the port
        publish.write_result_configmap(
            {"metrics": {}}, env=env, token_path=tmp_path / "token", ca_path=Path(certifi.where()),
            namespace_path=tmp_path / "namespace", attempts=1, timeout=2,
        )  # fmt: skip


def test_missing_pod_credentials_are_a_publish_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    env = {publish.ENV_CONFIGMAP: "tr-1-result", "KUBERNETES_SERVICE_HOST": "10.0.0.1",
           "KUBERNETES_SERVICE_PORT": "443"}  # fmt: skip
    with pytest.raises(publish.PublishError, match="credentials"):
        publish.write_result_configmap(
            {"metrics": {}}, env=env, token_path=tmp_path / "token", namespace_path=tmp_path / "no-namespace"
        )


def test_entrypoint_writes_the_result_beside_the_report(
    backtesting_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5db_training import ray_entry

    monkeypatch.setenv(publish.ENV_CONFIGMAP, "job-1-result")  # set, but this is no pod: no-op
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    out = tmp_path / "job"
    argv = ["--run", "job-1", "--model", "rf", "--csv", str(backtesting_csv), "--out", str(out), *SMALL_RF]
    assert ray_entry.main(argv) == 0
    doc = json.loads((out / "result.json").read_text())
    assert doc["primaryMetric"] == "r2_oos_h1" and doc["run"] == "job-1"
    assert {"r2_oos_h1", "auc_h1", "net_pips_h1", "beats_baselines_h1"} <= set(doc["metrics"])
    assert all(isinstance(v, float) for v in doc["metrics"].values())


def test_failed_publish_exits_3_after_the_artifacts_are_written(
    backtesting_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5db_training import ray_entry

    def refuse(document: Any, **_: Any) -> None:
        raise publish.PublishError("writing ConfigMap ns/job-2-result failed: HTTP 403: forbidden")

    monkeypatch.setattr(publish, "write_result_configmap", refuse)
    out = tmp_path / "job"
    argv = ["--run", "job-2", "--model", "rf", "--csv", str(backtesting_csv), "--out", str(out), *SMALL_RF]
    assert ray_entry.main(argv) == publish.PUBLISH_FAILED_EXIT_CODE == 3
    report = json.loads((out / "report.json").read_text())
    (artifact,) = report["artifacts"].values()
    assert (out / artifact["uri"]).is_file() and (out / "result.json").is_file()


def test_publisher_needs_neither_the_kubernetes_client_nor_the_operator() -> None:
    import subprocess
    import sys

    code = "import sys, mt5db_training.publish; print(sorted(m for m in ('kubernetes', 'mt5db_operator', 'kopf') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
