"""The promotion gate (docs/ml-protocol.md §6.7, §11.4), as a pure decision over a finished report.

`--promote ifBetter` promotes a new version to champion only when both hold at its signal horizon:

1. its report says it beats its baselines after costs (the report's verdict, every §6.7 condition);
2. it beats the current champion on the same purged walk-forward folds. The champion's recipe is
   re-evaluated on this run's folds (report key `champion_on_same_folds`): more net pips after
   costs and a primary metric (R²_OOS, or AUC for a classifier) at least as good. An identical
   recipe therefore ties and does not promote.

Otherwise the version becomes the challenger, with every failed condition as a reason. `always`
promotes and records that the gate was overridden (with what the gate would have said); `never`
registers only. The numbers behind the decision travel with it into `model_alias_history`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("never", "ifBetter", "always")


@dataclass(frozen=True)
class ChampionRecipe:
    """The current champion of a series, as the run needs it: its label and its recipe."""

    label: str  # e.g. "rf_ret_EURUSD_H1:v3"
    version_id: int
    params: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    mode: str
    alias: str | None  # "champion", "challenger", or None (registered only)
    action: str  # "promote" | "override" | "challenger" | "register"
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.alias == "champion"

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def line(self, version: str) -> str:
        """The decision in one plain sentence (printed by `mt5db train` and the demo)."""
        if self.action == "promote":
            return f"gate (ifBetter): {version} PROMOTED to champion: {self.reason}"
        if self.action == "override":
            return f"gate overridden (--promote always): {version} is champion; the gate said: {self.reason}"
        if self.action == "challenger":
            return f"gate (ifBetter): {version} NOT promoted, stays challenger: {self.reason}"
        return f"registered {version} (--promote never: no alias changed)"


def _metric_name(task: str) -> str:
    return "r2_oos" if task == "regression" else "auc"


def _figures(block: dict[str, Any], model: str, task: str) -> dict[str, Any]:
    """(net pips, primary metric) of one model in a horizon block or a re-evaluation."""
    table = block.get("regression") if task == "regression" else block.get("classification")
    metric = (table or {}).get(model, table or {})
    backtest = (block.get("backtest") or {}).get(model, block.get("backtest") or {})
    return {
        "net_pips": float(backtest.get("total_net_pips", float("nan"))),
        _metric_name(task): float(metric.get(_metric_name(task), float("nan"))),
        "trades": int(backtest.get("trades", 0)),
    }


def evaluate(
    report: dict[str, Any], champion: str | None
) -> tuple[bool, bool | None, list[str], dict[str, Any]]:
    """(beats baselines, beats champion or None without one, reasons, numbers) at the signal horizon."""
    task = report["task"]
    model = "random_forest" if report["algo"] == "random_forest" else report["algo"]
    h = str(report["signal"]["horizon"])
    block = report["horizons"][h]
    mine = _figures(block, model, task)
    name = _metric_name(task)
    reasons: list[str] = []
    beats_baselines = block["verdict"] == "beats baselines"
    if beats_baselines:
        reasons.append(f"beats its baselines after costs at h={h}")
    else:
        reasons.append(
            f"does not beat its baselines after costs at h={h} ("
            + "; ".join(block.get("verdict_reasons", []))
            + ")"
        )
    numbers: dict[str, Any] = {"horizon": int(h), "candidate": mine | {"verdict": block["verdict"]}}
    beats_champion: bool | None = None
    if champion is not None:
        other = report.get("champion_on_same_folds")
        if not other:
            beats_champion = False
            reasons.append(f"the champion {champion}'s recipe could not be re-evaluated on these folds")
        else:
            theirs = _figures(other, model, task)
            numbers["champion"] = theirs | {"version": champion, "verdict": other.get("verdict")}
            versus = (
                f"net pips {mine['net_pips']:.1f} vs {theirs['net_pips']:.1f}, "
                f"{name} {mine[name]:.4f} vs {theirs[name]:.4f} on the same folds"
            )
            if mine["net_pips"] == theirs["net_pips"] and mine[name] == theirs[name]:
                beats_champion = False
                reasons.append(
                    f"ties the champion {champion} ({versus}): an identical recipe does not promote"
                )
            elif mine["net_pips"] > theirs["net_pips"] and mine[name] >= theirs[name]:
                beats_champion = True
                reasons.append(f"beats the champion {champion} ({versus})")
            else:
                beats_champion = False
                reasons.append(f"does not beat the champion {champion} ({versus})")
    numbers["beats_baselines"] = beats_baselines
    numbers["beats_champion"] = beats_champion
    return beats_baselines, beats_champion, reasons, numbers


def decide(mode: str, report: dict[str, Any], champion: str | None) -> Decision:
    """The gate's decision for a finished report; `champion` is the current champion's label."""
    if mode not in MODES:
        raise ValueError(f"--promote must be one of {MODES}, got {mode!r}")
    beats_baselines, beats_champion, reasons, numbers = evaluate(report, champion)
    numbers["mode"] = mode
    if champion is None:
        reasons.append("there is no champion yet")
    if mode == "never":
        return Decision(mode, None, "register", reasons, numbers)
    passed = beats_baselines and beats_champion is not False
    if mode == "always":
        said = "it would pass" if passed else "it would not pass"
        return Decision(mode, "champion", "override", [said, *reasons], numbers | {"overridden": True})
    if passed:
        return Decision(mode, "champion", "promote", reasons, numbers)
    return Decision(mode, "challenger", "challenger", reasons, numbers)
