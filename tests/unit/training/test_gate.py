"""The gate's decision as a pure function of a report (docs/ml-protocol.md §6.7, §11.4)."""

from __future__ import annotations

from typing import Any

import pytest

from mt5db_training.gate import decide


def _report(
    verdict: str, net: float, r2: float, champion: tuple[float, float] | None = None
) -> dict[str, Any]:
    block = {
        "verdict": verdict,
        "verdict_reasons": []
        if verdict == "beats baselines"
        else ["net pips 95% CI [-5, 9]: lower bound not above 0"],
        "regression": {"random_forest": {"r2_oos": r2}},
        "backtest": {"random_forest": {"total_net_pips": net, "trades": 300}},
    }
    report: dict[str, Any] = {"task": "regression", "algo": "random_forest", "signal": {"horizon": 5},
                              "horizons": {"5": block}}  # fmt: skip
    if champion is not None:
        report["champion_on_same_folds"] = {
            "regression": {"r2_oos": champion[1]}, "backtest": {"total_net_pips": champion[0], "trades": 280},
            "verdict": "beats baselines",
        }  # fmt: skip
    return report


def test_without_a_champion_beating_the_baselines_promotes() -> None:
    d = decide("ifBetter", _report("beats baselines", 120.0, 0.01), None)
    assert d.promoted and d.action == "promote" and "there is no champion yet" in d.reason
    stays = decide("ifBetter", _report("does not beat baselines", 120.0, 0.01), None)
    assert stays.alias == "challenger" and "does not beat its baselines after costs at h=5" in stays.reason
    assert "lower bound not above 0" in stays.reason


@pytest.mark.parametrize(
    ("candidate", "champion", "promoted", "says"),
    [
        ((150.0, 0.012), (120.0, 0.010), True, "beats the champion"),
        ((120.0, 0.010), (120.0, 0.010), False, "ties the champion"),
        ((150.0, 0.008), (120.0, 0.010), False, "does not beat the champion"),
        ((110.0, 0.020), (120.0, 0.010), False, "does not beat the champion"),
    ],
)
def test_against_a_champion_on_the_same_folds(
    candidate: tuple[float, float], champion: tuple[float, float], promoted: bool, says: str
) -> None:
    d = decide("ifBetter", _report("beats baselines", *candidate, champion=champion), "rf_ret_EURUSD_H1:v2")
    assert d.promoted is promoted and says in d.reason
    assert (
        d.numbers["champion"]["net_pips"] == champion[0]
        and d.numbers["candidate"]["net_pips"] == candidate[0]
    )


def test_always_records_the_override_and_never_registers_only() -> None:
    report = _report("does not beat baselines", 1.0, -0.01)
    always = decide("always", report, None)
    assert always.promoted and always.action == "override" and always.numbers["overridden"] is True
    assert always.reasons[0] == "it would not pass"
    never = decide("never", report, None)
    assert never.alias is None and never.action == "register"
    missing = decide("ifBetter", _report("beats baselines", 9.0, 0.1), "rf_ret_EURUSD_H1:v1")
    assert not missing.promoted and "could not be re-evaluated" in missing.reason
    with pytest.raises(ValueError, match="--promote"):
        decide("sometimes", report, None)
