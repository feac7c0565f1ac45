"""`mt5db train --model informer`: the Informer direction classifier under the same purged
walk-forward protocol as the RandomForest (protocol.py), trained through Ray Train (informer_fit.py),
then the report, the model card and the artifact. Reads data → protocol → report; registering and
publishing are the driver's (train.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.artifacts import TORCH_STATE_FORMAT, torch_bytes, write_artifact
from mt5db_training.card import serving_facts
from mt5db_training.config import TrainConfig
from mt5db_training.dataset import Dataset, load_dataset
from mt5db_training.gate import ChampionRecipe
from mt5db_training.informer_fit import ClassifierRun, classifier_candidates, fit_through_ray, model_config
from mt5db_training.predictor import load_predictor
from mt5db_training.protocol import (
    FoldBaselines,
    FoldOutput,
    evaluate_horizon,
    make_protocol,
    protocol_folds,
    walk_forward_oos,
)
from mt5db_training.report import base_report, finish
from mt5db_training.splits import Fold

MODEL = "informer"


def window_validity(ds: Dataset, seq_len: int) -> npt.NDArray[np.bool_]:
    """True where the window ending at row t has seq_len contiguous bars of one segment (no gap, no warm-up hole)."""
    pos = ds.positions
    ok = np.zeros(len(pos), dtype=bool)
    ok[seq_len - 1 :] = (pos[seq_len - 1 :] - pos[: len(pos) - seq_len + 1]) == seq_len - 1
    return ok


def whole_window_fold(ds: Dataset, proto: Any, valid: npt.NDArray[np.bool_], number: int) -> Fold:
    """The registered model's fit: every development row before a last validation block (early
    stopping and the threshold need one), purged from it like every fold; its "test" rows are the
    validation rows again (nothing is scored on them)."""
    n = len(ds.features)
    n_val = max(round(n * proto.val_fraction), 1)
    val = np.arange(n - n_val, n, dtype=np.int64)
    fit = np.arange(0, n - n_val - proto.gap_bars, dtype=np.int64)
    return Fold(number, fit[valid[fit]], val[valid[val]], val[valid[val]])


def run(cfg: TrainConfig, champion: ChampionRecipe | None = None) -> tuple[dict[str, Any], Path]:
    """--model informer: walk-forward Informer classifier with the §6 baselines → (report, path).

    The registered model is trained once more on the whole development window (whole_window_fold).
    A current champion's recipe is not re-trained on these folds (an Informer fit per fold is too
    costly to repeat inside a run): the gate then keeps the version a challenger and says why.
    """
    from mt5db_training.models.informer import time_features

    started = time.perf_counter()
    opts = cfg.informer
    h = opts.horizon
    ds = load_dataset(cfg.data, (h,))
    candidates = classifier_candidates(opts.config, opts.epochs)
    max_len = max(c.seq_len for c in candidates)
    proto = make_protocol(ds, h, opts.n_folds, opts.test_bars, 0.15)
    folds = protocol_folds(ds, proto)[-opts.informer_folds :]
    valid = window_validity(ds, max_len)
    # every row of a test/val block needs a full window; rows without one are dropped for all models alike
    folds = [Fold(f.number, f.fit[valid[f.fit]], f.val[valid[f.val]], f.test[valid[f.test]]) for f in folds]
    x = ds.features.to_numpy(np.float64)
    y = ds.targets[f"up_net_{h}"].to_numpy(np.float64)
    refit = whole_window_fold(ds, proto, valid, number=len(protocol_folds(ds, proto)))
    config = {
        "data": {"x": x, "marks": time_features(ds.index), "y": y, "valid_end": valid},
        "folds": [
            {"number": f.number, "fit": f.fit.tolist(), "val": f.val.tolist(), "test": f.test.tolist()}
            for f in [*folds, refit]  # the last one is the registered model's (not a protocol fold)
        ],
        "candidates": [asdict(c) for c in candidates],
        "seed": opts.seed,
        "max_train_windows": opts.max_train_windows,
        "use_gpu": opts.use_gpu,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    fold_results, state = fit_through_ray(config, opts.workers, opts.use_gpu, cfg.out / "ray")
    refit_result, fold_results = fold_results[-1], fold_results[:-1]
    results = {f.number: r for f, r in zip(folds, fold_results, strict=True)}
    gross, cost = ds.gross_pips[h], ds.cost_pips

    def fit_fold(f: Fold, base: FoldBaselines) -> FoldOutput:
        # the model is already fitted (by Ray Train, above): here it only meets the protocol
        r = results[f.number]
        p_val, p_test = np.asarray(r["p_val"]), np.asarray(r["p_test"])
        thr = scoring.choose_threshold(p_val, gross[f.val], cost[f.val], h)
        record = {
            "fold": f.number,
            "auc_informer": round(scoring.auc(y[f.test], p_test), 4),
            "auc_lr": round(scoring.auc(y[f.test], base.lr_p), 4),
            "threshold": thr,
            "lr_threshold": base.lr_threshold,
            "epochs_run": r["epochs_run"],
            "val_loss": r["val_loss"],
            "chosen_config": r["chosen"],
            "train_windows": r["train_windows"],
            "samples_per_second": r["samples"] / r["train_seconds"] if r["train_seconds"] > 0 else None,
        }
        signal = (p_test > thr).astype(np.float64)
        return FoldOutput(record=record, score=p_test, signal=signal, probability=p_test)

    oos, per_fold = walk_forward_oos(ds, h, folds, MODEL, fit_fold)
    block = evaluate_horizon(
        ds,
        proto,
        folds,
        oos,
        per_fold,
        MODEL,
        task="classification",
        reps=opts.bootstrap_reps,
        seed=opts.seed,
        protocol_extra={"informer_folds": len(folds), "window_len_max": max_len},
    )
    samples = sum(r["samples"] for r in fold_results)
    seconds = sum(r["train_seconds"] for r in fold_results)
    cfg_dict = {
        "config": opts.config,
        "candidates": [asdict(c) for c in candidates],
        "workers": opts.workers,
        "use_gpu": opts.use_gpu,
        "max_train_windows": opts.max_train_windows,
        "seed": opts.seed,
        "horizon": h,
    }
    report = base_report(cfg.run, ds, "informer", "classification", cfg_dict, configs_tried=len(candidates))
    report["configs_tried_note"] = (
        f"{len(candidates)} config(s) per fold, selected on each fold's validation block"
    )
    report["horizons"] = {str(h): block}
    report["training"] = {
        "samples": samples,
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(samples / seconds, 1) if seconds > 0 else None,
        "ray_workers": opts.workers,
        "torch_threads_note": "Ray sets OMP_NUM_THREADS=1 per worker",
    }
    chosen = ClassifierRun(**refit_result["chosen"])
    data = torch_bytes(state)
    uri, sha = write_artifact(data, cfg.out, "pt")
    model_cfg = asdict(model_config(chosen, x.shape[1], opts.seed))
    scaler = refit_result["scaler"] | {"fitted_on": "fit rows of the whole-window fit (population std)"}
    threshold = scoring.choose_threshold(
        np.asarray(refit_result["p_val"]), gross[refit.val], cost[refit.val], h
    )
    fitted_on = (
        f"development rows {ds.index[refit.fit[0]]} → {ds.index[refit.fit[-1]]} ({len(refit.fit)} rows); "
        f"early stopping and the threshold on the last {len(refit.val)} rows"
    )
    report["artifact"] = {
        "uri": uri,
        "sha256": sha,
        "format": TORCH_STATE_FORMAT,
        "horizons": [h],
        "fitted_on": fitted_on,
        "note": "state_dict of the recipe refit on the whole development window; load with weights_only=True",
    }
    report["artifacts"] = {str(h): {"uri": uri, "sha256": sha, "note": report["artifact"]["note"]}}
    report["signal"] = {
        "horizon": h,
        "output": "probability",
        "threshold": threshold,
        "threshold_rule": "P(up net of cost) above the threshold maximising validation net pips (long only)",
        "thresholds": {str(h): threshold},
        "pip_size": ds.cost.pip,
    }
    card = {"artifact": {"format": TORCH_STATE_FORMAT}, "model_config": model_cfg, "scaler": scaler,
            "signal": {"horizon": h}}  # fmt: skip
    predictor = load_predictor(data, sha, card)
    report["serving"] = serving_facts(ds, predictor) | {"model_config": model_cfg, "scaler": scaler}
    (cfg.out / "model_card.json").write_text(
        json.dumps(
            {
                "intended_use": "research: direction net of cost; live signals only as a champion beating its baselines",
                "model_config": model_cfg,
                "features": list(ds.features.columns),
                "warmup_bars": ds.extra["warmup_bars"],
                "artifact": report["artifact"],
                "scaler": scaler,
                "clock": ds.extra["clock"],
            },
            indent=2,
        )
    )
    if champion is not None:
        report["champion_on_same_folds_note"] = (
            f"the champion {champion.label}'s recipe was not re-trained on these folds"
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    path = finish(cfg.out, report, {h: oos}, {h: None})
    print(f"informer training throughput: {report['training']['samples_per_second']} samples/s")
    return report, path
