"""Synthetic data of real shapes for tests (no network, no vendored third-party files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def write_ett_like(path: Path, rows: int = 14_600, seed: int = 0) -> Path:
    """ETTh1-shaped CSV: `date` + 7 hourly channels = sums of daily/weekly sinusoids + AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    cols = {}
    for i, name in enumerate(ETT_COLUMNS):
        noise = np.zeros(rows)
        eps = rng.normal(0, 0.3, rows)
        for k in range(1, rows):
            noise[k] = 0.9 * noise[k - 1] + eps[k]
        cols[name] = (
            (i + 1) * np.sin(2 * np.pi * t / 24 + i)
            + 0.5 * np.sin(2 * np.pi * t / (24 * 7) + 2 * i)
            + 0.001 * t
            + noise
            + 10 * i
        )
    frame = pd.DataFrame(cols)
    frame.insert(0, "date", pd.date_range("2016-07-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(path, index=False)
    return path
