"""`mt5db train informer-paper` on synthetic data of ETTh1's shape: the JSON line, the split, and the
repeat-last-value baseline against an independent numpy computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5db_core.cli import main
from mt5db_training.informer_paper import split_borders


def independent_repeat(csv: Path, seq_len: int, pred_len: int, features: str) -> tuple[float, float]:
    raw = pd.read_csv(csv)
    cols = ["OT"] if features == "S" else [c for c in raw.columns[1:] if c != "OT"] + ["OT"]
    values = raw[cols].to_numpy(np.float64)
    mu, sd = values[:8640].mean(axis=0), values[:8640].std(axis=0, ddof=0)
    z = (values - mu) / sd
    errors = []
    for s in range(11520 - seq_len, 14400 - seq_len - pred_len + 1):
        errors.append(z[s + seq_len : s + seq_len + pred_len] - z[s + seq_len - 1])
    e = np.stack(errors)
    if features == "MS":
        e = e[..., -1:]
    return float(np.mean(e**2)), float(np.mean(np.abs(e)))


def test_split_borders_are_the_papers() -> None:
    assert split_borders(96) == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}


@pytest.mark.parametrize("features", ["M", "S", "MS"])
def test_tiny_paper_run_prints_json_with_repeat_baseline(
    features: str, ett_like_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = ett_like_csv
    argv = ["train", "informer-paper", "--csv", str(csv), "--target", "OT", "--features", features]
    argv += [
        "--seq-len",
        "48",
        "--label-len",
        "24",
        "--pred-len",
        "12",
        "--d-model",
        "16",
        "--n-heads",
        "2",
        "--d-ff",
        "32",
    ]
    argv += ["--epochs", "1", "--batch-size", "32", "--max-train-windows", "64", "--threads", "1"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert set(result) >= {"informer", "repeat"}
    assert result["informer"]["mse"] > 0 and result["informer"]["mae"] > 0
    mse, mae = independent_repeat(csv, 48, 12, features)
    assert result["repeat"]["mse"] == pytest.approx(mse, rel=1e-6)
    assert result["repeat"]["mae"] == pytest.approx(mae, rel=1e-6)
    assert result["test_windows"] == 14400 - 11520 - 12 + 1
    assert result["config"]["c_out"] == (7 if features == "M" else 1)
    assert result["config"]["enc_in"] == (1 if features == "S" else 7)
