"""Promotion gates: every declared rule checked against an evaluation, each with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.core import GateConfig
from loopml.evaluation._metrics import HIGHER_IS_BETTER

__all__ = ["GateResult", "check_gates"]


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate."""

    gate: str
    passed: bool
    value: float
    reference: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "value": self.value,
            "reference": self.reference,
            "reason": self.reason,
        }


def check_gates(gates: list[GateConfig], evaluation: dict[str, Any]) -> list[GateResult]:
    """Check each gate against an evaluation summary (``Evaluation.to_dict()``).

    A metric missing from the evaluation fails its gate (never passes silently).

    >>> summary = {"metrics": {"roc_auc": {"value": 0.9}}, "baselines": {"prior": {"roc_auc": 0.5}}}
    >>> gate = GateConfig(metric="roc_auc", beats="baseline", by=0.1)
    >>> [g.passed for g in check_gates([gate], summary)]
    [True]
    """
    return [_check(gate, evaluation) for gate in gates]


def _value(
    evaluation: dict[str, Any], metric: str, slice_name: str | None
) -> list[tuple[str, float]]:
    if metric.startswith("behaviour"):
        tests = evaluation.get("behaviour", [])
        return [
            (
                "all behaviour tests",
                float(all(t["passed"] for t in tests)) if tests else float("nan"),
            )
        ]
    if metric.startswith("fairness."):
        key = metric.split(".", 1)[1]
        return [
            (group, float(report.get(key, float("nan"))))
            for group, report in evaluation.get("fairness", {}).items()
        ]
    if metric == "latency_p99_ms":
        return [("latency", float(evaluation.get("latency", {}).get("p99_ms", float("nan"))))]
    if slice_name is not None:
        rows = [
            r
            for r in evaluation.get("slices", [])
            if r["slice"] == slice_name and not r["too_small"]
        ]
        return [(f"{slice_name}={r['value']}", float(r.get(metric, float("nan")))) for r in rows]
    found = evaluation.get("metrics", {}).get(metric)
    value = None if found is None else found.get("value")
    return [("overall", float("nan") if value is None else float(value))]


def _reference(gate: GateConfig, evaluation: dict[str, Any]) -> float | None:
    if gate.beats == "baseline":
        values = [m.get(gate.metric) for m in evaluation.get("baselines", {}).values()]
        finite = [float(v) for v in values if v is not None and np.isfinite(v)]
        if not finite:
            return None
        return max(finite) if HIGHER_IS_BETTER.get(gate.metric, True) else min(finite)
    if gate.beats == "champion":
        champion = evaluation.get("champion") or {}
        value = champion.get("metrics", {}).get(gate.metric)
        return None if value is None else float(value)
    return None


def _check(gate: GateConfig, evaluation: dict[str, Any]) -> GateResult:
    name = _describe(gate)
    values = _value(evaluation, gate.metric, gate.slice)
    if not values or any(not np.isfinite(v) for _, v in values):
        return GateResult(name, False, float("nan"), None, f"{gate.metric} was not measured")
    where, worst = _worst(values, gate.metric)
    reference = _reference(gate, evaluation)
    if gate.beats is not None:
        if reference is None:
            passed = gate.beats == "champion"  # no champion yet: the first model may pass
            reason = f"no {gate.beats} to compare with" + (
                "" if passed else " (a baseline is required)"
            )
            return GateResult(name, passed, worst, None, reason)
        higher = HIGHER_IS_BETTER.get(gate.metric, True)
        margin = worst - reference if higher else reference - worst
        passed = margin >= gate.by
        reason = (
            f"{gate.metric} {worst:.4g} vs {gate.beats} {reference:.4g}: "
            f"{'better' if margin >= 0 else 'worse'} by {abs(margin):.4g}, needs {gate.by:.4g}"
        )
        return GateResult(name, passed, worst, reference, reason)
    low_ok = gate.at_least is None or worst >= gate.at_least
    high_ok = gate.at_most is None or worst <= gate.at_most
    bound = f"at least {gate.at_least}" if gate.at_least is not None else f"at most {gate.at_most}"
    return GateResult(
        name,
        low_ok and high_ok,
        worst,
        None,
        f"{gate.metric} {worst:.4g} at {where}; must be {bound}",
    )


def _worst(values: list[tuple[str, float]], metric: str) -> tuple[str, float]:
    higher = HIGHER_IS_BETTER.get(metric.split(".")[-1], True)
    if metric.startswith("fairness.") or metric == "latency_p99_ms":
        higher = False
    return (
        min(values, key=lambda item: item[1]) if higher else max(values, key=lambda item: item[1])
    )


def _describe(gate: GateConfig) -> str:
    target = f" on slice {gate.slice}" if gate.slice else ""
    if gate.beats:
        return f"{gate.metric}{target} beats {gate.beats} by {gate.by}"
    if gate.at_most is not None:
        return f"{gate.metric}{target} at most {gate.at_most}"
    return f"{gate.metric}{target} at least {gate.at_least}"
