"""Fairness: per-group rates and the gaps between groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["fairness_report"]


def fairness_report(
    group: npt.ArrayLike,
    y: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    threshold: float = 0.5,
    min_size: int = 30,
) -> dict[str, Any]:
    """Per group: selection rate, TPR, FPR, mean score vs observed rate; and the gaps.

    ``demographic_parity_difference`` is the largest minus the smallest selection rate;
    ``equalized_odds_difference`` the larger of the TPR and FPR gaps (groups smaller than
    ``min_size`` are listed but left out of the gaps).

    >>> r = fairness_report(["a", "a", "b", "b"], [1, 0, 1, 0], [0.9, 0.2, 0.4, 0.1], min_size=1)
    >>> r["demographic_parity_difference"], r["equalized_odds_difference"]
    (0.5, 1.0)
    """
    frame = pd.DataFrame(
        {
            "group": np.asarray(group),
            "y": np.asarray(y, dtype=float),
            "s": np.asarray(score, dtype=float),
        }
    )
    frame["selected"] = frame["s"] >= threshold
    groups: dict[str, dict[str, float]] = {}
    for name, part in frame.groupby("group", sort=True, dropna=False):
        positives, negatives = part["y"] == 1, part["y"] == 0
        groups[str(name)] = {
            "size": float(len(part)),
            "selection_rate": float(part["selected"].mean()),
            "tpr": float(part.loc[positives, "selected"].mean())
            if positives.any()
            else float("nan"),
            "fpr": float(part.loc[negatives, "selected"].mean())
            if negatives.any()
            else float("nan"),
            "mean_score": float(part["s"].mean()),
            "observed_rate": float(part["y"].mean()),
        }
    big = {k: v for k, v in groups.items() if v["size"] >= min_size}

    def gap(key: str) -> float:
        values = [v[key] for v in big.values() if np.isfinite(v[key])]
        return float(max(values) - min(values)) if len(values) >= 2 else 0.0

    return {
        "groups": groups,
        "demographic_parity_difference": gap("selection_rate"),
        "equalized_odds_difference": max(gap("tpr"), gap("fpr")),
        "threshold": threshold,
    }
