"""Classifier configs (docs/ml-protocol.md §5) and the grid: selection happens inside the training fold,
on its validation block, and every candidate tried is counted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mt5db_training.informer_fit import CONFIGS, ClassifierRun, grid_candidates, model_config, train_loop
from mt5db_training.models.informer import InformerClassifier


def test_grid_is_the_protocols_24_configs() -> None:
    grid = grid_candidates()
    assert len(grid) == 24
    assert {c.seq_len for c in grid} == {32, 48, 64}
    assert {c.d_model for c in grid} == {64, 128}
    assert {c.dropout for c in grid} == {0.1, 0.2}
    assert {c.lr for c in grid} == {3e-4, 1e-3}


def test_simple_and_advanced_build_and_are_deterministic_in_eval() -> None:
    assert CONFIGS["simple"].attn == "full" and not CONFIGS["simple"].distil
    assert (
        CONFIGS["advanced"].attn == "prob" and CONFIGS["advanced"].factor == 3 and CONFIGS["advanced"].distil
    )
    for run in CONFIGS.values():
        model = InformerClassifier(model_config(run, 23, seed=1)).eval()
        x, xm = torch.randn(2, run.seq_len, 23), torch.rand(2, run.seq_len, 4) - 0.5
        with torch.no_grad():
            assert torch.equal(model(x, xm), model(x, xm))


def test_selection_uses_validation_only_and_counts_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 900
    x = rng.normal(size=(n, 5))
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    marks = np.zeros((n, 4), dtype=np.float32)
    tiny = ClassifierRun(seq_len=16, d_model=16, n_heads=2, d_ff=32, epochs=1, patience=1, batch_size=64)
    candidates = [tiny, replace(tiny, lr=1e-5)]
    fold = {
        "number": 0,
        "fit": list(range(16, 600)),
        "val": list(range(620, 740)),
        "test": list(range(760, 900)),
    }
    # run twice, the second time with the test block's labels flipped: selection and test
    # predictions must not change (test labels never reach training or selection)
    config = {
        "data": {"x": x, "marks": marks, "y": y, "valid_end": np.arange(n) >= 15},
        "folds": [fold],
        "candidates": [c.__dict__ for c in candidates],
        "seed": 0,
        "max_train_windows": 0,
        "use_gpu": False,
        "distributed": False,
        "result_dir": str(tmp_path / "a"),
    }
    train_loop(config)
    y2 = y.copy()
    y2[760:] = 1 - y2[760:]
    train_loop(config | {"data": config["data"] | {"y": y2}, "result_dir": str(tmp_path / "b")})
    import json

    a = json.loads((tmp_path / "a" / "folds.json").read_text())[0]
    b = json.loads((tmp_path / "b" / "folds.json").read_text())[0]
    assert len(a["candidates_val_loss"]) == 2
    assert a["val_loss"] == min(a["candidates_val_loss"])
    assert a["chosen"] == b["chosen"] and a["candidates_val_loss"] == b["candidates_val_loss"]
    assert a["p_test"] == b["p_test"]
