"""Model artifacts as bytes: content addressing, the hash check before any load, the formats.

An artifact is stored under the sha256 of its bytes (on disk next to the report as
`artifacts/<sha256>.<ext>`, and in the registry's `model_artifacts` table). joblib and pickle
execute code while loading, so bytes are loaded only after their sha256 equals the one the
registry recorded: only our own artifacts are ever unpickled. Torch models are plain state_dicts
(`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

RF_BUNDLE_FORMAT = "mt5db-rf-bundle/1"  # {"format", "models": {horizon: fitted estimator}}
TORCH_STATE_FORMAT = "torch-state-dict/1"
MEDIA_TYPES = {RF_BUNDLE_FORMAT: "application/x-joblib", TORCH_STATE_FORMAT: "application/x-torch-state-dict"}


class ArtifactHashMismatch(RuntimeError):
    """The bytes are not the artifact the registry recorded."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, expected_sha256: str, what: str = "artifact") -> None:
    """Raise ArtifactHashMismatch unless sha256(data) equals the recorded digest."""
    actual = sha256_of(data)
    if actual != expected_sha256:
        raise ArtifactHashMismatch(f"{what}: sha256 {actual} != recorded {expected_sha256}")


def joblib_bytes(obj: Any) -> bytes:
    """A joblib dump (compress 3) as bytes."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def load_joblib_bytes(data: bytes, expected_sha256: str) -> Any:
    """Verify, then joblib-load (only ever our own, hash-checked artifacts)."""
    import joblib

    verify_bytes(data, expected_sha256)
    return joblib.load(io.BytesIO(data))


def torch_bytes(state_dict: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def load_torch_bytes(data: bytes, expected_sha256: str) -> dict[str, Any]:
    """Verify, then torch.load(weights_only=True)."""
    import torch

    verify_bytes(data, expected_sha256)
    state: dict[str, Any] = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    return state


def write_artifact(data: bytes, out_dir: Path, ext: str) -> tuple[str, str]:
    """Write bytes as `out_dir/artifacts/<sha256>.<ext>`; returns (uri relative to out_dir, sha256)."""
    sha = sha256_of(data)
    target_dir = out_dir / "artifacts"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{sha}.{ext}"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return f"artifacts/{target.name}", sha
