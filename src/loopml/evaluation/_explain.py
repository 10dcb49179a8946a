"""Explanations: permutation importance, TreeSHAP for LightGBM, one example at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["explain_one", "permutation_importance", "prediction_churn", "tree_shap"]

Scorer = Callable[[pd.DataFrame], npt.NDArray[np.float64]]
Metric = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], float]


def permutation_importance(
    score: Scorer,
    frame: pd.DataFrame,
    y: npt.ArrayLike,
    metric: Metric,
    *,
    higher_is_better: bool = True,
    repeats: int = 3,
    max_rows: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Drop in ``metric`` when each column is shuffled (mean and std over ``repeats``).

    Uses at most ``max_rows`` rows (a seeded sample) so it stays fast on large test sets.
    """
    rng = np.random.default_rng(seed)
    y_arr = np.asarray(y, dtype=np.float64)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), max_rows, replace=False))
        frame, y_arr = frame.iloc[keep].reset_index(drop=True), y_arr[keep]
    base = metric(y_arr, score(frame))
    rows = []
    for column in frame.columns:
        drops = []
        for _ in range(repeats):
            shuffled = frame.copy()
            values = frame[column].to_numpy()[rng.permutation(len(frame))]
            shuffled[column] = pd.Series(values, index=frame.index, dtype=frame[column].dtype)
            value = metric(y_arr, score(shuffled))
            drops.append(base - value if higher_is_better else value - base)
        rows.append(
            {"feature": column, "importance": float(np.mean(drops)), "std": float(np.std(drops))}
        )
    return pd.DataFrame(rows).sort_values("importance", ascending=False, ignore_index=True)


def tree_shap(booster: Any, features: pd.DataFrame | npt.NDArray[Any]) -> pd.DataFrame:
    """TreeSHAP values from LightGBM's native ``pred_contrib`` (one column per feature + bias).

    Each row's values add up to the model's raw score (log-odds for binary tasks).
    """
    contributions = np.asarray(booster.predict(features, pred_contrib=True))
    names = list(booster.feature_name()) + ["bias"]
    return pd.DataFrame(contributions[:, : len(names)], columns=names)


def explain_one(booster: Any, row: pd.DataFrame, *, top: int = 10) -> list[dict[str, float | str]]:
    """The ``top`` features that moved one prediction most, with their SHAP values."""
    shap = tree_shap(booster, row).iloc[0]
    bias = float(shap.pop("bias"))
    order = shap.abs().sort_values(ascending=False).index[:top]
    explained: list[dict[str, float | str]] = [
        {
            "feature": str(name),
            "value": _plain(row[name].iloc[0]) if name in row else float("nan"),
            "contribution": float(shap[name]),
        }
        for name in order
    ]
    explained.append({"feature": "(bias)", "value": float("nan"), "contribution": bias})
    return explained


def _plain(value: Any) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def prediction_churn(
    candidate: npt.ArrayLike, champion: npt.ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """Share of rows whose decision changes between champion and candidate.

    >>> prediction_churn([0.9, 0.2, 0.6], [0.8, 0.7, 0.4])["churn"]
    0.6666666666666666
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(champion, dtype=np.float64)
    flips = (a >= threshold) != (b >= threshold)
    return {
        "churn": float(flips.mean()),
        "mean_abs_score_change": float(np.mean(np.abs(a - b))),
        "rows": float(len(a)),
    }
