"""The Informer classifier end to end: in-process (`--workers 0`) and ONE real Ray Train run with
2 CPU workers (TorchTrainer, ScalingConfig(num_workers=2, use_gpu=False)), loopback only."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mt5db_core.cli import main
from mt5db_training.models.informer import InformerClassifier, InformerConfig
from mt5db_training.registry import load_torch_state


def informer_argv(csv: Path, out: Path, workers: int) -> list[str]:
    argv = [
        "train",
        "--model",
        "informer",
        "--config",
        "simple",
        "--csv",
        str(csv),
        "--run",
        f"t-inf-{workers}",
        "--out",
        str(out),
    ]
    argv += [
        "--epochs",
        "1",
        "--max-train-windows",
        "256",
        "--folds",
        "3",
        "--test-bars",
        "300",
        "--informer-folds",
        "1",
    ]
    return [
        *argv,
        "--bootstrap-reps",
        "100",
        "--lockbox-start",
        "",
        "--workers",
        str(workers),
        "--horizon",
        "5",
    ]


def check_report(out: Path) -> dict[str, object]:
    report = json.loads((out / "report.json").read_text())
    block = report["horizons"]["5"]
    cls = block["classification"]
    assert {"informer", "logistic_regression", "prior", "always_long"} <= set(cls)
    assert len(cls["informer"]["auc_ci95"]) == 2
    assert {"informer", "always_long", "always_short"} <= set(block["backtest"])
    assert report["configs_tried"] == 1
    assert report["training"]["samples_per_second"] > 0
    art = report["artifacts"]["5"]
    state = load_torch_state(out / art["uri"], art["sha256"])
    card = json.loads((out / "model_card.json").read_text())
    cfg = InformerConfig(**{k: tuple(v) if k == "s_layers" else v for k, v in card["model_config"].items()})
    model = InformerClassifier(cfg)
    model.load_state_dict(state)
    x, xm = torch.randn(2, cfg.seq_len, cfg.enc_in), torch.zeros(2, cfg.seq_len, 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, xm), model(x, xm))
    return report


def test_informer_in_process(backtesting_csv: Path, tmp_path: Path) -> None:
    assert main(informer_argv(backtesting_csv, tmp_path / "local", 0)) == 0
    check_report(tmp_path / "local")


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # a short temp dir: Ray's AF_UNIX socket paths must stay under 107 bytes
    ray_tmp = tempfile.mkdtemp(prefix="mt5ray-")
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield ray_tmp
    import ray

    ray.shutdown()  # ends the Ray processes this test started
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_informer_through_ray_train_with_two_cpu_workers(
    backtesting_csv: Path, tmp_path: Path, local_ray: None
) -> None:
    assert main(informer_argv(backtesting_csv, tmp_path / "ray-run", 2)) == 0
    report = check_report(tmp_path / "ray-run")
    assert report["training"]["ray_workers"] == 2
    import ray

    assert ray.is_initialized()
    node = ray.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"
    assert os.environ["RAY_TMPDIR"] == local_ray
