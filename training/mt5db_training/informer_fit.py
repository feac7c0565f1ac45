"""Fitting the Informer direction classifier on walk-forward folds, through Ray Train (TorchTrainer).

One `train_loop` serves three places: a Ray Train worker (`--workers N`, DDP over gloo or NCCL),
the in-process path (`--workers 0`, same code without Ray, for fast tests), and a RayJob container
(`python -m mt5db_training.ray_entry`, which connects with `ray.init()` when RAY_ADDRESS is set).

Per fold: features are z-scored with the fit rows' statistics, windows end at bar t (the label's
decision bar), the model trains with early stopping on the purged validation block, and only then
is the test block predicted. Config selection (`grid`) happens inside each fold on validation only;
the number of configs tried is reported. The run around it (data, protocol, report) is
informer_run.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClassifierRun:
    """Training settings of one classifier config (model shape lives in InformerConfig)."""

    seq_len: int = 48
    attn: str = "full"
    factor: int = 5
    e_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.1
    distil: bool = False
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 30
    patience: int = 5
    label_smoothing: float = 0.0


# docs/ml-protocol.md §5. `simple` serves with full attention (deterministic and cheap at L ≤ 64);
# `advanced` uses ProbSparse with factor 3 and distilling, as in the forecaster.
CONFIGS: dict[str, ClassifierRun] = {
    "simple": ClassifierRun(),
    "advanced": ClassifierRun(
        seq_len=64,
        attn="prob",
        factor=3,
        e_layers=3,
        d_model=128,
        n_heads=8,
        d_ff=256,
        dropout=0.15,
        distil=True,
        label_smoothing=0.05,
    ),
}


def grid_candidates() -> list[ClassifierRun]:
    """{seq_len 32, 48, 64} × {d_model 64, 128} × {dropout 0.1, 0.2} × {lr 3e-4, 1e-3} = 24 configs."""
    base = CONFIGS["simple"]
    return [
        replace(base, seq_len=s, d_model=d, d_ff=2 * d, dropout=p, lr=lr)
        for s, d, p, lr in itertools.product((32, 48, 64), (64, 128), (0.1, 0.2), (3e-4, 1e-3))
    ]


def classifier_candidates(config: str, epochs: int | None = None) -> list[ClassifierRun]:
    """The configs a run tries per fold: one named config, or the grid; `epochs` overrides theirs."""
    candidates = grid_candidates() if config == "grid" else [CONFIGS[config]]
    return candidates if epochs is None else [replace(c, epochs=epochs) for c in candidates]


def model_config(run: ClassifierRun, n_features: int, seed: int) -> Any:
    """InformerConfig of the classifier for one ClassifierRun."""
    from mt5db_training.models.informer import InformerConfig

    return InformerConfig(
        enc_in=n_features,
        seq_len=run.seq_len,
        d_model=run.d_model,
        n_heads=run.n_heads,
        e_layers=run.e_layers,
        d_ff=run.d_ff,
        dropout=run.dropout,
        attn="prob" if run.attn == "prob" else "full",
        factor=run.factor,
        distil=run.distil,
        num_class=2,
        eval_seed=seed,
    )


def seed_everything(seed: int) -> None:
    """torch, numpy and random seeds (CPU reproducibility, docs/ml-protocol.md §4)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- the worker loop ---------------------------------------------------------------------------


def _windows(x: F32, marks: F32, ends: I64, seq_len: int) -> tuple[F32, F32]:
    """Stack windows x[t−L+1 .. t] for each end t: (N, L, C) and (N, L, n_time)."""
    offsets = np.arange(-seq_len + 1, 1)
    rows = ends[:, None] + offsets[None, :]
    return x[rows], marks[rows]


def _predict(model: Any, xw: F32, mw: F32, device: Any, batch: int = 512) -> F64:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(xw), batch):
            logits = model(
                torch.from_numpy(xw[i : i + batch]).to(device), torch.from_numpy(mw[i : i + batch]).to(device)
            )
            out.append(torch.softmax(logits, dim=-1)[:, 1].double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _fit_one(
    run: ClassifierRun, data: dict[str, Any], fold: dict[str, Any], ctx: dict[str, Any]
) -> dict[str, Any]:
    """Train one config on a fold's fit rows with early stopping on its validation rows."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from mt5db_training.models.informer import InformerClassifier

    seed_everything(ctx["seed"])
    x, marks, y = data["x"], data["marks"], data["y"]
    fit = np.asarray(fold["fit"], dtype=np.int64)
    mu = x[fit].mean(axis=0)
    sd = x[fit].std(axis=0)
    xs = ((x - mu) / np.where(sd > 0, sd, 1.0)).astype(np.float32)
    fit_w = fit[data["valid_end"][fit]]
    if ctx["max_train_windows"] and len(fit_w) > ctx["max_train_windows"]:
        rng = np.random.default_rng(ctx["seed"])
        fit_w = np.sort(rng.choice(fit_w, ctx["max_train_windows"], replace=False))
    val = np.asarray(fold["val"], dtype=np.int64)
    test = np.asarray(fold["test"], dtype=np.int64)
    xf, mf = _windows(xs, marks, fit_w, run.seq_len)
    xv, mv = _windows(xs, marks, val, run.seq_len)
    xt, mtt = _windows(xs, marks, test, run.seq_len)
    device = ctx["device"]
    model: Any = InformerClassifier(model_config(run, x.shape[1], ctx["seed"]))
    if ctx["distributed"]:
        import ray.train.torch

        model = ray.train.torch.prepare_model(model)
    else:
        model = model.to(device)
    loader = DataLoader(
        TensorDataset(
            torch.from_numpy(xf), torch.from_numpy(mf), torch.from_numpy(y[fit_w].astype(np.int64))
        ),
        batch_size=run.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(ctx["seed"]),
    )
    if ctx["distributed"]:
        import ray.train.torch

        loader = ray.train.torch.prepare_data_loader(loader)
    opt = torch.optim.Adam(model.parameters(), lr=run.lr)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=run.label_smoothing)
    yv = y[val]
    best_loss, best_state, bad, epochs_run = np.inf, None, 0, 0
    samples, train_seconds = 0, 0.0
    for epoch in range(run.epochs):
        if ctx["distributed"] and hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        model.train()
        started = time.perf_counter()
        for xb, mb, yb in loader:
            xb, mb, yb = xb.to(device), mb.to(device), yb.to(device)
            opt.zero_grad()
            loss = loss_fn(model(xb, mb), yb)
            loss.backward()
            opt.step()
            samples += len(yb) * ctx["world_size"]  # each worker sees 1/world_size of the batch stream
        train_seconds += time.perf_counter() - started
        epochs_run += 1
        pv = np.clip(_predict(model, xv, mv, device), 1e-7, 1 - 1e-7)
        val_loss = float(-np.mean(yv * np.log(pv) + (1 - yv) * np.log(1 - pv)))
        if ctx["rank"] == 0:
            print(
                f"fold {fold['number']} epoch {epoch + 1}: val log loss {val_loss:.4f} ({time.perf_counter() - started:.1f}s)",
                flush=True,
            )
        if val_loss < best_loss - 1e-5:
            best_loss, bad = val_loss, 0
            inner = model.module if hasattr(model, "module") else model
            best_state = {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}
        else:
            bad += 1
            if bad >= run.patience:
                break
    inner = model.module if hasattr(model, "module") else model
    if best_state is not None:
        inner.load_state_dict(best_state)
    return {
        "val_loss": best_loss,
        "epochs_run": epochs_run,
        "p_val": _predict(inner, xv, mv, device),
        "p_test": _predict(inner, xt, mtt, device),
        "state": {k: v.detach().cpu() for k, v in inner.state_dict().items()},
        "train_windows": len(fit_w),
        "samples": samples,
        "train_seconds": train_seconds,
        "run": asdict(run),
        "scaler": {"mean": mu.tolist(), "std": sd.tolist()},
    }


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker body (also called in-process with distributed=False)."""
    import torch

    distributed = bool(config["distributed"])
    rank, world_size = 0, 1
    if distributed:
        import ray.train
        import ray.train.torch

        rank = ray.train.get_context().get_world_rank()
        world_size = ray.train.get_context().get_world_size()
        device = ray.train.torch.get_device()
    else:
        device = torch.device("cuda" if config["use_gpu"] and torch.cuda.is_available() else "cpu")
    ctx = {
        "seed": config["seed"],
        "device": device,
        "distributed": distributed,
        "max_train_windows": config["max_train_windows"],
        "rank": rank,
        "world_size": world_size,
    }
    data = config["data"]
    folds_out = []
    last_state: dict[str, Any] = {}
    for fold in config["folds"]:
        fits = [_fit_one(ClassifierRun(**c), data, fold, ctx) for c in config["candidates"]]
        best = min(fits, key=lambda r: r["val_loss"])
        last_state = best["state"]
        folds_out.append(
            {
                "fold": fold["number"],
                "p_val": best["p_val"].tolist(),
                "p_test": best["p_test"].tolist(),
                "val_loss": best["val_loss"],
                "epochs_run": best["epochs_run"],
                "chosen": best["run"],
                "candidates_val_loss": [r["val_loss"] for r in fits],
                "train_windows": best["train_windows"],
                "samples": int(sum(r["samples"] for r in fits)),
                "train_seconds": float(sum(r["train_seconds"] for r in fits)),
                "scaler": best["scaler"],
            }
        )
    result_dir = (
        Path(config["result_dir"]) if not distributed else Path(tempfile.mkdtemp(prefix="informer-result-"))
    )
    if rank == 0:
        result_dir.mkdir(parents=True, exist_ok=True)
        (result_dir / "folds.json").write_text(json.dumps(folds_out))
        torch.save(last_state, result_dir / "state_dict.pt")
    if distributed:
        import ray.train

        summary = {"folds": len(folds_out), "samples": sum(f["samples"] for f in folds_out)}
        if rank == 0:
            ray.train.report(summary, checkpoint=ray.train.Checkpoint.from_directory(str(result_dir)))
        else:
            ray.train.report(summary)


# -- driver ------------------------------------------------------------------------------------


def ray_init(num_cpus: int) -> None:
    """Loopback-only local Ray, or plain ray.init() inside a cluster (RAY_ADDRESS set)."""
    os.environ.setdefault(
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"
    )  # node IP 127.0.0.1, listeners on loopback
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="mt5db-ray-"))
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(num_cpus=num_cpus, object_store_memory=256 * 1024 * 1024, include_dashboard=False)


def fit_through_ray(
    config: dict[str, Any], workers: int, use_gpu: bool, storage: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `train_loop` via TorchTrainer (workers ≥ 1) or in-process (workers = 0); returns (folds, state_dict)."""
    import torch

    if workers == 0:
        config = config | {"distributed": False, "result_dir": str(storage / "local-result")}
        train_loop(config)
        result_dir = Path(config["result_dir"])
    else:
        ray_init(max(workers, 1))
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        trainer = TorchTrainer(
            train_loop,
            train_loop_config=config | {"distributed": True, "result_dir": ""},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
            run_config=RunConfig(name=f"informer-{int(time.time())}", storage_path=str(storage.resolve())),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train returned no checkpoint (error: {result.error})")
        local = Path(tempfile.mkdtemp(prefix="informer-ckpt-"))
        result_dir = Path(result.checkpoint.to_directory(str(local)))
    folds = json.loads((result_dir / "folds.json").read_text())
    state: dict[str, Any] = torch.load(result_dir / "state_dict.pt", weights_only=True)
    return folds, state
