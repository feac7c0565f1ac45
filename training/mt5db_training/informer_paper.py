"""`mt5db train informer-paper`: the Informer ETTh1 protocol (docs/ml-protocol.md §3), for reproduction checks.

- split 12/4/4 months of 30 days: train rows [0, 8640), val [8640 − seq_len, 11520),
  test [11520 − seq_len, 14400); later rows unused;
- StandardScaler fitted on the train rows only (population std), applied to everything;
- windows: encoder x = rows [s, s + seq_len), decoder target y = rows [s + seq_len − label_len, s + seq_len + pred_len);
- Adam, MSE, lradj type1 (halve the LR after every epoch), early stopping on validation loss;
- test MSE / MAE on z-scored values over every test window × step (× channel for M), next to the
  repeat-last-value baseline on the same windows. Unlike the reference test loader (drop_last=True)
  every test window is scored, for both the model and the baseline (effect ≤ 0.006, §3).

The LAST printed line is one JSON object with both results.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5db_core.digest import file_sha256
from mt5db_training.sources import read_dated_csv

if TYPE_CHECKING:
    from mt5db_training.models.informer import InformerConfig

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PaperConfig:
    """`mt5db train informer-paper`: the ETTh1 protocol (docs/ml-protocol.md §3). The model's
    channel counts (enc_in, dec_in, c_out) are set from the file when the run starts."""

    csv: Path
    model: InformerConfig
    target: str = "OT"
    features: Literal["M", "S", "MS"] = "M"
    batch_size: int = 32
    lr: float = 1e-4
    epochs: int = 6
    patience: int = 3
    device: Literal["cpu", "cuda"] = "cpu"
    max_train_windows: int = 0  # subsample training windows (CPU smoke runs)
    seed: int = 2021
    threads: int = 0  # torch CPU threads (0 = torch default)


MONTH = 30 * 24
TRAIN_END, VAL_END, TEST_END = 12 * MONTH, 16 * MONTH, 20 * MONTH  # 8640, 11520, 14400


def load_ett(path: Path, target: str, features: str) -> tuple[F32, F32, pd.DatetimeIndex, list[str]]:
    """(model input channels, scaled later; time marks; index; channel names) with the target last (reference order)."""
    from mt5db_training.models.informer import time_features

    raw = read_dated_csv(path)
    index = pd.DatetimeIndex(raw.index)
    channels = [c for c in raw.columns if c != target] + [target]
    if features == "S":
        channels = [target]
    values = raw[channels].to_numpy(np.float64)
    return values.astype(np.float32), time_features(index, "h"), index, channels


def split_borders(seq_len: int) -> dict[str, tuple[int, int]]:
    """Row ranges of the three splits; val and test start seq_len early so their first window is complete."""
    return {
        "train": (0, TRAIN_END),
        "val": (TRAIN_END - seq_len, VAL_END),
        "test": (VAL_END - seq_len, TEST_END),
    }


def window_starts(border: tuple[int, int], seq_len: int, pred_len: int) -> npt.NDArray[np.int64]:
    """Start rows s of every window (x = [s, s+seq_len), y ends at s+seq_len+pred_len) inside a split."""
    lo, hi = border
    return np.arange(lo, hi - seq_len - pred_len + 1, dtype=np.int64)


def repeat_last_value(
    data: F64, starts: npt.NDArray[np.int64], seq_len: int, pred_len: int, out_cols: slice
) -> tuple[float, float]:
    """Persistence baseline: every future step = the last encoder value; (MSE, MAE) over windows × steps × channels."""
    last = data[starts + seq_len - 1][:, None, out_cols]  # (N, 1, C)
    future = data[(starts + seq_len)[:, None] + np.arange(pred_len)[None, :]][
        :, :, out_cols
    ]  # (N, pred_len, C)
    err = future - last
    return float(np.mean(err**2)), float(np.mean(np.abs(err)))


def run_paper(run: PaperConfig) -> int:
    """Train and test the forecaster under the paper's protocol; print metrics and the JSON line."""
    import torch

    from mt5db_training.informer_fit import seed_everything
    from mt5db_training.models.informer import Informer, decoder_input

    if run.threads:
        torch.set_num_threads(run.threads)
    seed_everything(run.seed)
    device = torch.device(run.device if run.device == "cpu" or torch.cuda.is_available() else "cpu")
    path = run.csv
    values, marks, index, channels = load_ett(path, run.target, run.features)
    if len(values) < TEST_END:
        raise SystemExit(f"{path.name}: {len(values)} rows, the protocol needs >= {TEST_END}")
    mu = values[:TRAIN_END].astype(np.float64).mean(axis=0)
    sd = values[:TRAIN_END].astype(np.float64).std(axis=0)  # population std, as StandardScaler
    data = (values.astype(np.float64) - mu) / sd
    data32 = data.astype(np.float32)
    c = data.shape[1]
    c_out = 1 if run.features in ("S", "MS") else c
    out_cols = slice(c - c_out, c)  # target is the last channel
    cfg = replace(run.model, enc_in=c, dec_in=c, c_out=c_out)  # channel counts come from the file
    borders = split_borders(cfg.seq_len)
    starts = {k: window_starts(b, cfg.seq_len, cfg.pred_len) for k, b in borders.items()}
    train_starts = starts["train"]
    if run.max_train_windows and len(train_starts) > run.max_train_windows:
        rng = np.random.default_rng(run.seed)
        train_starts = np.sort(rng.choice(train_starts, run.max_train_windows, replace=False))

    def batch(s: npt.NDArray[np.int64]) -> tuple[Any, Any, Any, Any, Any]:
        enc_rows = s[:, None] + np.arange(cfg.seq_len)[None, :]
        dec_rows = (s + cfg.seq_len - cfg.label_len)[:, None] + np.arange(cfg.label_len + cfg.pred_len)[
            None, :
        ]
        x = torch.from_numpy(data32[enc_rows]).to(device)
        xm = torch.from_numpy(marks[enc_rows]).to(device)
        y = torch.from_numpy(data32[dec_rows]).to(device)
        ym = torch.from_numpy(marks[dec_rows]).to(device)
        x_dec = decoder_input(y[:, : cfg.label_len, :], cfg.pred_len)
        return x, xm, x_dec, ym, y[:, -cfg.pred_len :, out_cols]

    model = Informer(cfg).to(device)

    def evaluate(s_all: npt.NDArray[np.int64]) -> tuple[float, float]:
        model.eval()
        se, ae, n = 0.0, 0.0, 0
        with torch.no_grad():
            for i in range(0, len(s_all), run.batch_size):
                x, xm, xd, ym, target = batch(s_all[i : i + run.batch_size])
                pred = model(x, xm, xd, ym)
                se += float(((pred - target) ** 2).sum())
                ae += float((pred - target).abs().sum())
                n += target.numel()
        return se / n, ae / n

    opt = torch.optim.Adam(model.parameters(), lr=run.lr)
    rng = np.random.default_rng(run.seed)
    best, best_state, bad = np.inf, None, 0
    samples, seconds, epochs_run = 0, 0.0, 0
    for epoch in range(run.epochs):
        model.train()
        order = rng.permutation(train_starts)
        started = time.perf_counter()
        for i in range(0, len(order) - run.batch_size + 1, run.batch_size):  # drop_last=True as the reference
            x, xm, xd, ym, target = batch(order[i : i + run.batch_size])
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x, xm, xd, ym), target)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            opt.step()
            samples += len(target)
        seconds += time.perf_counter() - started
        epochs_run += 1
        val_mse, _ = evaluate(starts["val"])
        print(
            f"epoch {epoch + 1}: train {time.perf_counter() - started:.1f}s, val mse {val_mse:.4f}, lr {opt.param_groups[0]['lr']:.2e}"
        )
        if val_mse < best:
            best, bad = val_mse, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= run.patience:
                print("early stopping")
                break
        # lradj type1 as the reference schedules it: epochs 1 and 2 at lr0, then halved every epoch
        for group in opt.param_groups:
            group["lr"] = run.lr * 0.5**epoch
    if best_state is not None:
        model.load_state_dict(best_state)
    mse, mae = evaluate(starts["test"])
    r_mse, r_mae = repeat_last_value(data, starts["test"], cfg.seq_len, cfg.pred_len, out_cols)
    print(f"test ({len(starts['test'])} windows, features {run.features}, pred_len {cfg.pred_len}):")
    print(f"  informer ({cfg.attn}) mse {mse:.4f} mae {mae:.4f}")
    print(f"  repeat-last-value      mse {r_mse:.4f} mae {r_mae:.4f}")
    result = {
        "informer": {"mse": mse, "mae": mae},
        "repeat": {"mse": r_mse, "mae": r_mae},
        "features": run.features,
        "target": run.target,
        "seq_len": cfg.seq_len,
        "label_len": cfg.label_len,
        "pred_len": cfg.pred_len,
        "attn": cfg.attn,
        "epochs_run": epochs_run,
        "train_windows": len(train_starts),
        "test_windows": len(starts["test"]),
        "samples_per_second": samples / seconds if seconds > 0 else None,
        "device": str(device),
        "data_sha256": file_sha256(path),
        "data_range": f"{index[0]} → {index[min(TEST_END, len(index)) - 1]}",
        "channels": channels,
        "config": asdict(cfg),
    }
    print(json.dumps(result))
    return 0
