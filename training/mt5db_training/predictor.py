"""A registered version as something that predicts: artifact bytes + model card → Predictor.

The one loader of artifacts for every consumer (serving, `mt5db models evaluate`, the smoke
prediction recorded at registration). Features always come from `features.compute_features`, the
same function training used; a predictor only maps feature rows to outputs:

* RandomForest bundle (`mt5db-rf-bundle/1`): one regressor per horizon, the forecast of
  r_h = ln(close[t+h] / open[t+1]) at each requested row;
* Informer classifier (`torch-state-dict/1`): P(a long entered at open[t+1] wins net of cost
  after h bars) from the window of `seq_len` z-scored feature rows ending at each requested row.

`check_loadable` is what serving runs before swapping a version in: the sha256 of the bytes, the
feature-set hash against this code's feature function, and a smoke prediction that must
reproduce the one recorded when the version was registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5db_training.artifacts import (
    RF_BUNDLE_FORMAT,
    TORCH_STATE_FORMAT,
    load_joblib_bytes,
    load_torch_bytes,
    verify_bytes,
)
from mt5db_training.features import FEATURE_SET_VERSION, FEATURES, WARMUP_BARS, feature_set_hash

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SMOKE_RTOL = 1e-9  # the same bytes on the same rows: only float noise may differ


class NotLoadable(RuntimeError):
    """A version that must not serve: wrong bytes, another feature set, or a failed smoke prediction."""


class Predictor(Protocol):
    kind: str  # "rf" | "informer"
    output: str  # "return" (forecast of r_h) | "probability" (P(up net of cost))

    @property
    def horizons(self) -> tuple[int, ...]: ...

    @property
    def min_rows(self) -> int:
        """Feature rows needed up to the decision row (1, or the Informer's seq_len)."""
        ...

    def predict_at(self, features: pd.DataFrame, positions: I64) -> dict[int, F64]:
        """Outputs per horizon for the rows at `positions` (their features must be finite)."""
        ...


@dataclass
class RFPredictor:
    models: dict[int, Any]
    kind: str = "rf"
    output: str = "return"

    @property
    def min_rows(self) -> int:
        return 1

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(sorted(self.models))

    def predict_at(self, features: pd.DataFrame, positions: I64) -> dict[int, F64]:
        x = features.to_numpy(np.float64)[positions]
        return {h: np.asarray(m.predict(x), dtype=np.float64) for h, m in sorted(self.models.items())}


@dataclass
class InformerPredictor:
    model: Any  # InformerClassifier in eval mode
    horizon: int
    seq_len: int
    mean: F64
    std: F64
    kind: str = "informer"
    output: str = "probability"

    @property
    def horizons(self) -> tuple[int, ...]:
        return (self.horizon,)

    @property
    def min_rows(self) -> int:
        return self.seq_len

    def predict_at(self, features: pd.DataFrame, positions: I64) -> dict[int, F64]:
        import torch

        from mt5db_training.models.informer import time_features

        x = features.to_numpy(np.float64)
        xs = ((x - self.mean) / np.where(self.std > 0, self.std, 1.0)).astype(np.float32)
        marks = time_features(pd.DatetimeIndex(features.index))
        rows = np.asarray(positions, dtype=np.int64)[:, None] + np.arange(-self.seq_len + 1, 1)[None, :]
        if rows.size and rows.min() < 0:
            raise ValueError(f"the Informer needs {self.seq_len} feature rows before each decision row")
        with torch.no_grad():
            logits = self.model(torch.from_numpy(xs[rows]), torch.from_numpy(marks[rows]))
            p = torch.softmax(logits, dim=-1)[:, 1].double().numpy()
        return {self.horizon: p}


def expected_feature_set_hash() -> str:
    """The hash of the feature set this code computes (what a loadable version must record)."""
    return feature_set_hash(FEATURE_SET_VERSION, FEATURES, WARMUP_BARS)


def load_predictor(data: bytes, sha256: str, card: dict[str, Any]) -> Predictor:
    """Verify the bytes, then build the predictor the card's artifact format names."""
    fmt = (card.get("artifact") or {}).get("format")
    if fmt == RF_BUNDLE_FORMAT:
        bundle = load_joblib_bytes(data, sha256)
        if not isinstance(bundle, dict) or bundle.get("format") != RF_BUNDLE_FORMAT:
            raise NotLoadable("the artifact is not an RF bundle")
        models = {int(h): m for h, m in bundle["models"].items()}
        for m in models.values():
            m.n_jobs = 1  # one row at a time: process pools cost more than the trees
        return RFPredictor(models)
    if fmt == TORCH_STATE_FORMAT:
        from mt5db_training.models.informer import InformerClassifier, InformerConfig

        state = load_torch_bytes(data, sha256)
        model = InformerClassifier(InformerConfig(**card["model_config"]))
        model.load_state_dict(state)
        model.eval()
        scaler = card["scaler"]
        return InformerPredictor(
            model=model,
            horizon=int(card["signal"]["horizon"]),
            seq_len=int(card["model_config"]["seq_len"]),
            mean=np.asarray(scaler["mean"], dtype=np.float64),
            std=np.asarray(scaler["std"], dtype=np.float64),
        )
    raise NotLoadable(f"unknown artifact format {fmt!r}")


def smoke_sample(features: pd.DataFrame, predictor: Predictor) -> dict[str, Any]:
    """What a version records at registration: its last decision rows and what it predicted there."""
    rows = max(predictor.min_rows, 3)
    frame = features.iloc[-rows:]
    out = predictor.predict_at(frame, np.array([len(frame) - 1], dtype=np.int64))
    return {
        "index": [ts.isoformat() for ts in pd.DatetimeIndex(frame.index)],
        "features": frame.to_numpy(np.float64).tolist(),
        "predictions": {str(h): float(v[0]) for h, v in out.items()},
    }


def run_smoke(predictor: Predictor, smoke: dict[str, Any], columns: list[str]) -> None:
    """Raise NotLoadable unless the predictor reproduces the recorded smoke predictions."""
    frame = pd.DataFrame(
        np.asarray(smoke["features"], dtype=np.float64),
        index=pd.DatetimeIndex(pd.to_datetime(smoke["index"])),
        columns=columns,
    )
    got = predictor.predict_at(frame, np.array([len(frame) - 1], dtype=np.int64))
    for h, want in smoke["predictions"].items():
        value = float(got[int(h)][0])
        if not np.isclose(value, float(want), rtol=SMOKE_RTOL, atol=1e-12):
            raise NotLoadable(f"smoke prediction h={h}: {value!r} != recorded {float(want)!r}")


def check_loadable(data: bytes, sha256: str, card: dict[str, Any], recorded_hash: str) -> Predictor:
    """Everything serving checks before a version may answer: bytes, feature set, smoke prediction."""
    verify_bytes(data, sha256)
    expected = expected_feature_set_hash()
    if recorded_hash != expected:
        raise NotLoadable(
            f"feature set {recorded_hash[:12]}… is not this code's {expected[:12]}… "
            f"({FEATURE_SET_VERSION}, {len(FEATURES)} columns, warm-up {WARMUP_BARS})"
        )
    try:
        predictor = load_predictor(data, sha256, card)
    except NotLoadable:
        raise
    except Exception as exc:  # a broken pickle or state_dict: refuse it, say what failed
        raise NotLoadable(f"the artifact does not load: {type(exc).__name__}: {exc}") from exc
    run_smoke(predictor, card["smoke"], list(card["features"]))
    return predictor
