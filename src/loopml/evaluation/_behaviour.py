"""Behaviour tests: perturbation, invariance and directional expectations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["BehaviourResult", "directional_test", "invariance_test", "perturbation_test"]

Scorer = Callable[[pd.DataFrame], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class BehaviourResult:
    """One behaviour test: pass or fail, a summary number, and failing examples."""

    name: str
    kind: str
    passed: bool
    summary: dict[str, float]
    failing_examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "summary": self.summary,
            "failing_examples": self.failing_examples,
        }


def _examples(
    frame: pd.DataFrame,
    index: npt.NDArray[np.int64],
    before: npt.NDArray[np.float64],
    after: npt.NDArray[np.float64],
    limit: int = 5,
) -> list[dict[str, Any]]:
    rows = []
    for i in index[:limit]:
        record = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[int(i)].items()}
        rows.append(
            {
                "row": int(i),
                "score_before": float(before[i]),
                "score_after": float(after[i]),
                "features": record,
            }
        )
    return rows


def perturbation_test(
    score: Scorer,
    frame: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    scale: float = 0.05,
    threshold: float = 0.5,
    min_stability: float = 0.95,
    seed: int = 0,
) -> BehaviourResult:
    """Add Gaussian noise of ``scale`` x each numeric feature's standard deviation.

    Reports the share of decisions (score >= threshold) that stay the same and the mean
    absolute score change; passes when stability is at least ``min_stability``.
    """
    rng = np.random.default_rng(seed)
    numeric = [
        c
        for c in (columns or list(frame.columns))
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    noisy = frame.copy()
    for column in numeric:
        values = frame[column].to_numpy(dtype=float)
        spread = np.nanstd(values)
        noisy[column] = values + rng.normal(0.0, scale * spread if spread > 0 else 0.0, len(values))
    before, after = score(frame), score(noisy)
    changed = (before >= threshold) != (after >= threshold)
    stability = 1.0 - float(changed.mean())
    return BehaviourResult(
        name=f"perturbation(scale={scale})",
        kind="perturbation",
        passed=stability >= min_stability,
        summary={
            "stability": stability,
            "mean_abs_change": float(np.mean(np.abs(after - before))),
            "min_stability": min_stability,
        },
        failing_examples=_examples(frame, np.nonzero(changed)[0], before, after),
    )


def invariance_test(
    score: Scorer, frame: pd.DataFrame, *, column: str, tolerance: float = 0.01
) -> BehaviourResult:
    """Swap a sensitive attribute's values (a random other observed value per row).

    Passes when no prediction moves by more than ``tolerance``.
    """
    values = frame[column].dropna().unique()
    swapped = frame.copy()
    if len(values) > 1:
        codes = pd.Categorical(frame[column], categories=values).codes
        shifted = np.where(codes >= 0, (codes + 1) % len(values), -1)
        swapped[column] = pd.Series(
            np.where(shifted >= 0, values[np.maximum(shifted, 0)], frame[column].to_numpy()),
            index=frame.index,
        ).astype(frame[column].dtype)
    before, after = score(frame), score(swapped)
    moved = np.abs(after - before)
    failing = np.nonzero(moved > tolerance)[0]
    return BehaviourResult(
        name=f"invariance({column})",
        kind="invariance",
        passed=len(failing) == 0,
        summary={
            "max_abs_change": float(moved.max(initial=0.0)),
            "share_failing": float(len(failing) / max(len(frame), 1)),
            "tolerance": tolerance,
        },
        failing_examples=_examples(frame, failing[np.argsort(-moved[failing])], before, after),
    )


def directional_test(
    score: Scorer,
    frame: pd.DataFrame,
    *,
    column: str,
    direction: str,
    step: float = 0.5,
    tolerance: float = 1e-9,
) -> BehaviourResult:
    """Raise ``column`` by ``step`` x its standard deviation; the score must move in ``direction``.

    ``direction`` is ``"increasing"`` (a higher value must not lower the score) or
    ``"decreasing"``.
    """
    values = frame[column].to_numpy(dtype=float)
    spread = float(np.nanstd(values)) or 1.0
    raised = frame.copy()
    raised[column] = values + step * spread
    before, after = score(frame), score(raised)
    delta = after - before
    wrong = delta < -tolerance if direction == "increasing" else delta > tolerance
    failing = np.nonzero(wrong)[0]
    return BehaviourResult(
        name=f"directional({column} {direction})",
        kind="directional",
        passed=len(failing) == 0,
        summary={
            "share_failing": float(wrong.mean()),
            "worst_move": float(
                delta[failing].min() if direction == "increasing" else delta[failing].max()
            )
            if len(failing)
            else 0.0,
        },
        failing_examples=_examples(frame, failing, before, after),
    )
