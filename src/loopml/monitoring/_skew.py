"""Training-serving skew: the same requests' features as served vs as computed offline.

The feature log records, per ``request_id``, the feature values the online path produced;
recomputing them offline (the point-in-time join the training set uses) for the same
requests and comparing value by value finds skew that distribution tests miss: a unit
change, a stale online value, a different default for missing data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import SchemaError
from loopml.monitoring._reference import is_numeric_series

__all__ = ["SkewResult", "training_serving_skew"]


@dataclass(frozen=True)
class SkewResult:
    """Per-feature mismatch between served and offline values of the same requests."""

    matched: int
    only_served: int
    only_offline: int
    features: pd.DataFrame

    @property
    def skewed(self) -> list[str]:
        """Features with any mismatch above tolerance."""
        return self.features.loc[self.features["mismatch_rate"] > 0, "feature"].tolist()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "matched": self.matched,
            "only_served": self.only_served,
            "only_offline": self.only_offline,
            "features": self.features.to_dict("records"),
        }


def training_serving_skew(
    served: pd.DataFrame,
    offline: pd.DataFrame,
    *,
    key: str = "request_id",
    features: list[str] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> SkewResult:
    """Compare feature values of the same requests, served vs offline.

    Numbers match within ``rtol``/``atol`` (two nulls match); other values must be equal.

    >>> served = pd.DataFrame({"request_id": [1, 2, 3], "amount": [10.0, 20.0, 30.0]})
    >>> offline = pd.DataFrame({"request_id": [1, 2, 3], "amount": [10.0, 20.0, 3.0]})
    >>> result = training_serving_skew(served, offline)
    >>> result.skewed, float(result.features.loc[0, "mismatch_rate"])
    (['amount'], 0.3333333333333333)
    """
    for name, frame in (("served", served), ("offline", offline)):
        if key not in frame.columns:
            raise SchemaError(f"the {name} features have no '{key}' column to join on")
    names = features or [c for c in served.columns if c in offline.columns and c != key]
    if not names:
        raise SchemaError("the served and offline features share no column besides the key")
    joined = served[[key, *names]].merge(offline[[key, *names]], on=key, suffixes=("_s", "_o"))
    rows = []
    for name in names:
        left, right = joined[f"{name}_s"], joined[f"{name}_o"]
        if is_numeric_series(left) and is_numeric_series(right):
            a, b = (
                left.to_numpy(np.float64, na_value=np.nan),
                right.to_numpy(np.float64, na_value=np.nan),
            )
            same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
            diff = np.abs(a - b)
            mean_diff = float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")
        else:
            same = ((left == right) | (left.isna() & right.isna())).to_numpy(bool)
            mean_diff = float("nan")
        rows.append(
            {
                "feature": name,
                "mismatch_rate": float(1 - same.mean()) if same.size else 0.0,
                "mean_abs_diff": mean_diff,
            }
        )
    served_keys, offline_keys = set(served[key]), set(offline[key])
    return SkewResult(
        len(joined),
        len(served_keys - offline_keys),
        len(offline_keys - served_keys),
        pd.DataFrame(rows),
    )
