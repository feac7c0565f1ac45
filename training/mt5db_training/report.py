"""Report assembly, shared by every model's run: the top of report.json (run, data identity, label,
features), the plots, report.json itself and the printed tables (docs/ml-protocol.md §6, §11).

The per-horizon blocks come from protocol.evaluate_horizon; a run puts them under `horizons` and
calls `finish`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5db_training import scoring
from mt5db_training.dataset import Dataset
from mt5db_training.evaluation import OutOfSample
from mt5db_training.features import FEATURE_SET_VERSION, WARMUP_BARS
from mt5db_training.sources import DECLARED_CLOCK

F64 = npt.NDArray[np.float64]

LABEL_DEFINITION = (
    "regression r_h[t] = ln(close[t+h] / open[t+1]); classification y_h[t] = 1[(close[t+h] - open[t+1]) - cost_t > 0]; "
    "decision at the close of bar t, entry at the open of t+1"
)


def base_report(
    run: str, ds: Dataset, algo: str, task: str, config: dict[str, Any], configs_tried: int
) -> dict[str, Any]:
    """Everything a report carries besides the per-horizon blocks."""
    return {
        "run": run,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "algo": algo,
        "task": task,
        "code_version": code_version(),
        "config": config,
        "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ],
        "configs_tried": configs_tried,
        "data": {
            "source": ds.source.kind,
            "name": ds.source.name,
            "symbol": ds.source.symbol,
            "timeframe": ds.source.timeframe,
            "sha256": ds.source.sha256,
            "clock": DECLARED_CLOCK,
            "range": f"{ds.full_range[0]} → {ds.full_range[1]} ({ds.full_range[2]} bars)",
            "development_range": f"{ds.index[0]} → {ds.index[-1]} ({len(ds.index)} rows after warm-up/purge)",
            "lockbox": {
                "range": f"{ds.lockbox_range[0]} → {ds.lockbox_range[1]}",
                "rows": ds.lockbox_range[2],
                "evaluated": False,
                "note": "untouched until a release decision; no number in this report uses it",
            },
            "quality": asdict(ds.quality),
        },
        "label": {
            "definition": LABEL_DEFINITION,
            "cost": asdict(ds.cost)
            | {
                "source": "spread column"
                if ds.extra.get("has_spread")
                else "declared constant per round trip"
            },
        },
        "features": {
            "version": FEATURE_SET_VERSION,
            "names": list(ds.features.columns),
            "warmup_bars": WARMUP_BARS,
        },
        "bars_per_year_for_sharpe": ds.bars_per_year,
    }


def overall_verdict(blocks: dict[str, Any]) -> str:
    """'beats baselines at h=…' if any horizon passes, else 'does not beat baselines'."""
    winners = [h for h, b in blocks.items() if b["verdict"] == "beats baselines"]
    return f"beats baselines at h={','.join(winners)}" if winners else "does not beat baselines (any horizon)"


def finish(
    out: Path,
    report: dict[str, Any],
    oos: dict[int, OutOfSample],
    importance: dict[int, dict[str, float] | None],
) -> Path:
    """Plots per horizon, then report.json, then the printed tables."""
    plots: list[str] = []
    for h, block in report["horizons"].items():
        curves = block.pop("_curves")
        plots += write_plots(out, f"h{h}", oos[int(h)], curves, importance.get(int(h)))
    report["plots"] = plots
    report["verdict"] = overall_verdict(report["horizons"])
    path = write_report(out, report)
    print(format_tables(report))
    print(f"report: {path}")
    return path


# -- plots -------------------------------------------------------------------------------------


def _roc_points(y: F64, score: F64) -> tuple[F64, F64]:
    order = np.argsort(-score, kind="stable")
    ys = y[order]
    tpr = np.concatenate([[0.0], np.cumsum(ys) / max(ys.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - ys) / max((1 - ys).sum(), 1)])
    return fpr, tpr


def write_plots(
    out_dir: Path,
    tag: str,
    oos: OutOfSample,
    curves: dict[str, F64],
    importance: dict[str, float] | None,
) -> list[str]:
    """ROC, calibration, feature importance (when known) and equity-curve PNGs; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, score in oos.score.items():
        fpr, tpr = _roc_points(oos.y_up, score)
        ax.plot(fpr, tpr, label=f"{name} AUC {scoring.auc(oos.y_up, score):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="prior (0.5)")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC {tag} (pooled OOS)")
    ax.legend(fontsize=7)
    files.append(_save(fig, out_dir / f"roc_{tag}.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in oos.probability.items():
        rel = scoring.reliability(oos.y_up, p)
        ax.plot(rel["predicted"], rel["observed"], "o-", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="predicted P(up net of cost)", ylabel="observed frequency", title=f"calibration {tag}")
    ax.legend(fontsize=7)
    files.append(_save(fig, out_dir / f"calibration_{tag}.png"))

    if importance:
        names = sorted(importance, key=importance.__getitem__)
        fig, ax = plt.subplots(figsize=(6, 6))
        ax.barh(names, [importance[n] for n in names])
        ax.set(title=f"feature importance {tag} (mean impurity decrease over folds)")
        files.append(_save(fig, out_dir / f"feature_importance_{tag}.png"))

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, eq in curves.items():
        ax.plot(oos.index, eq, label=name, lw=1)
    ax.set(ylabel="cumulative net pips", title=f"equity {tag} (entry next open, net of cost)")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    files.append(_save(fig, out_dir / f"equity_{tag}.png"))
    return files


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


# -- report ------------------------------------------------------------------------------------


def code_version() -> str:
    """git sha of the code that ran (`-dirty` when the tree had local changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty.strip() else "")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and inf become None (report.json is strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_report(out_dir: Path, report: dict[str, Any]) -> Path:
    """report.json (NaN/inf written as null)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=False))
    return path


def format_tables(report: dict[str, Any]) -> str:
    """Human-readable summary of report.json: every model row beside its baselines."""
    lines = [
        f"run {report['run']} ({report['algo']}): data {report['data']['range']}, verdict: {report['verdict']}"
    ]
    for h, block in report["horizons"].items():
        lines.append(f"\n== horizon {h} bars: {block['verdict']} ==")
        if "regression" in block:
            lines.append(f"{'forecast':<22}{'R2_OOS':>10}{'95% CI':>24}{'MAE':>12}{'dir.acc':>9}{'IC':>8}")
            for name, r in block["regression"].items():
                if name.startswith("_"):
                    continue
                ci = "[{:+.4f}, {:+.4f}]".format(*r["r2_oos_ci95"])
                lines.append(
                    f"{name:<22}{r['r2_oos']:>10.4f}{ci:>24}{r['mae']:>12.3e}{r['directional_accuracy']:>9.3f}{r['spearman_ic']:>8.3f}"
                )
        cls = block["classification"]
        lines.append(
            f"{'classifier/score':<22}{'AUC':>8}{'95% CI':>18}{'Brier':>9}{'skill':>9}{'prec@thr':>10}{'cover':>8}"
        )
        for name, c in cls.items():
            if "auc" not in c:
                continue
            ci = "[{:.3f}, {:.3f}]".format(*c["auc_ci95"]) if "auc_ci95" in c else ""
            at = c.get("at_threshold", {})
            brier = f"{c['brier']:.4f}" if "brier" in c else ""
            skill = f"{c['brier_skill']:+.4f}" if c.get("brier_skill") is not None else ""
            prec = f"{at['precision']:.3f}" if at else ""
            cov = f"{at['coverage']:.3f}" if at else ""
            lines.append(f"{name:<22}{c['auc']:>8.3f}{ci:>18}{brier:>9}{skill:>9}{prec:>10}{cov:>8}")
        lines.append(
            f"{'backtest':<22}{'trades':>8}{'hit':>7}{'mean pips':>11}{'net pips':>11}{'95% CI':>18}{'maxDD':>9}{'Sharpe':>8}"
        )
        for name, b in block["backtest"].items():
            lines.append(
                f"{name:<22}{int(b['trades']):>8}{b['hit_rate']:>7.3f}{b['mean_net_pips']:>11.2f}{b['total_net_pips']:>11.1f}"
                + "{:>18}".format("[{:.0f}, {:.0f}]".format(*b["total_net_pips_ci95"]))
                + f"{b['max_drawdown_pips']:>9.1f}{b['sharpe_annualised']:>8.2f}"
            )
        if "leakage_check" in block:
            lines.append(f"leakage check: {json.dumps(block['leakage_check'])}")
        for reason in block.get("verdict_reasons", []):
            lines.append(f"  - {reason}")
    return "\n".join(lines)
