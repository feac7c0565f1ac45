"""The model card of a registered version (docs/ml-protocol.md §11.3), built from its report.

A card is immutable with its version: it says what was trained on which data, under which
protocol, how it compares with its baselines, which threshold its signals use and how that was
chosen, what the artifact is (and that it was refit on the whole development window), and what
serving needs to trust it (feature ranges for the out-of-distribution flag, a smoke sample). Who
promoted it, when and why is not in the card: aliases move, so that lives in
`model_alias_history`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mt5db_training.dataset import Dataset
from mt5db_training.features import feature_set_hash
from mt5db_training.predictor import Predictor, smoke_sample

MODEL_KEY = {"random_forest": "random_forest", "informer": "informer"}
KIND = {"random_forest": "rf", "informer": "informer"}

LIMITATIONS = [
    "one market regime: the development window only; the lockbox is untouched until a release decision",
    "tick volume is broker-specific (the OBV feature depends on the broker's tick counts)",
    "costs are a declared constant per round trip when the data has no spread column",
    "calendar features read the broker clock as labelled; another clock shifts them",
]


def signal_horizon(blocks: dict[str, Any], forced: int | None = None) -> int:
    """The horizon whose forecast drives signals: the forced one, else the first horizon that
    beats its baselines, else the first horizon (in the report's order)."""
    horizons = [int(h) for h in blocks]
    if forced is not None:
        if forced not in horizons:
            raise ValueError(f"--signal-horizon {forced} is not one of the trained horizons {horizons}")
        return forced
    winners = [int(h) for h, b in blocks.items() if b.get("verdict") == "beats baselines"]
    return (winners or horizons)[0]


def serving_facts(ds: Dataset, predictor: Predictor) -> dict[str, Any]:
    """What serving needs from the development window: feature ranges (out-of-distribution flag),
    the smoke sample it must reproduce, and the training window's label statistics (evaluate's
    prior and training-mean baselines)."""
    feats = ds.features
    ranges = {c: [float(feats[c].min()), float(feats[c].max())] for c in feats.columns}
    stats = {
        str(h): {
            "up_rate": float(np.mean(ds.targets[f"up_net_{h}"])),
            "mean_return": float(np.mean(ds.targets[f"ret_fwd_{h}"])),
        }
        for h in ds.horizons
    }
    index = pd.DatetimeIndex(ds.index)
    return {
        "feature_ranges": ranges,
        "smoke": smoke_sample(feats, predictor),
        "train_stats": stats,
        "train_window": [index[0].isoformat(), index[-1].isoformat()],
    }


def _deltas(block: dict[str, Any], model: str) -> dict[str, Any]:
    """The model's pooled out-of-sample figures beside each baseline's (the same folds)."""
    out: dict[str, Any] = {}
    reg = block.get("regression") or {}
    if model in reg:
        out["r2_oos"] = {name: reg[name]["r2_oos"] for name in reg if not name.startswith("_")}
        out["mae"] = {name: reg[name]["mae"] for name in reg if not name.startswith("_")}
    cls = block.get("classification") or {}
    out["auc"] = {name: c["auc"] for name, c in cls.items() if "auc" in c}
    bt = block.get("backtest") or {}
    out["net_pips"] = {name: b["total_net_pips"] for name, b in bt.items()}
    if model in bt:
        mine = bt[model]["total_net_pips"]
        out["net_pips_minus"] = {name: mine - b["total_net_pips"] for name, b in bt.items() if name != model}
    return out


def build_card(report: dict[str, Any]) -> dict[str, Any]:
    """The card of the version a report registers (pure: the report only)."""
    algo = report["algo"]
    model = MODEL_KEY.get(algo, algo)
    signal = report["signal"]
    h = str(signal["horizon"])
    block = report["horizons"][h]
    data = report["data"]
    feats = report["features"]
    serving = report["serving"]
    card: dict[str, Any] = {
        "model": KIND.get(algo, algo),
        "algo": algo,
        "task": report["task"],
        "intended_use": (
            f"trading signals on {data['symbol']} {data['timeframe']} for the executor EA; delivered live only "
            "while this version is the champion and its report beats its baselines after costs, "
            "otherwise recorded in shadow"
        ),
        "data": {
            k: data[k]
            for k in (
                "source",
                "name",
                "symbol",
                "timeframe",
                "sha256",
                "clock",
                "range",
                "development_range",
            )
        }
        | {"lockbox": data["lockbox"]},
        "label": report["label"],
        "protocol": block["protocol"] | {"test_blocks": [f["test"] for f in block["folds"]]},
        "baselines": _deltas(block, model),
        "calibration": (block.get("classification") or {}).get(model, {}).get("calibration"),
        "signal": signal,
        "configs_tried": report["configs_tried"],
        "limitations": LIMITATIONS,
        "promotion": "who or what promoted this version, when and why: model_alias_history",
        "artifact": report["artifact"],
        "features": list(feats["names"]),
        "feature_set_version": feats["version"],
        "warmup_bars": feats["warmup_bars"],
        "feature_set_hash": feature_set_hash(feats["version"], list(feats["names"]), feats["warmup_bars"]),
        "feature_ranges": serving["feature_ranges"],
        "smoke": serving["smoke"],
        "train_stats": serving["train_stats"],
        "train_window": serving["train_window"],
        "verdict": block["verdict"],
        "verdict_reasons": block.get("verdict_reasons", []),
        "report_verdict": report.get("verdict"),
        "code_version": report.get("code_version"),
        "config": report.get("config"),
        "config_hash": report.get("config_hash"),
        "run": report.get("run"),
    }
    for key in ("model_config", "scaler"):
        if key in serving:
            card[key] = serving[key]
    return card
