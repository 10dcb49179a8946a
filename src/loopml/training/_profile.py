"""The reference profile of a model's training data, stored with the model as JSON.

Monitoring compares live inputs and predictions against it: per feature the null share,
quantiles and a 10-bin histogram (numeric) or category shares (categorical), and the
distribution of the target and of the model's scores on the validation rows.

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"x": np.arange(100.0), "c": ["a"] * 70 + ["b"] * 30})
>>> prof = reference_profile(frame, ["x", "c"])
>>> prof["features"]["x"]["quantiles"]["0.5"], prof["features"]["c"]["shares"]
(49.5, {'a': 0.7, 'b': 0.3})
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["reference_profile", "score_profile"]

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_TOP = 50


def _numeric(values: np.ndarray) -> dict[str, Any]:
    seen = values[~np.isnan(values)]
    if seen.size == 0:
        return {"kind": "numeric", "count": 0}
    edges = np.unique(np.quantile(seen, np.linspace(0, 1, 11)))
    counts = np.histogram(seen, bins=edges)[0] if len(edges) > 1 else np.array([seen.size])
    return {
        "kind": "numeric",
        "count": int(seen.size),
        "mean": float(seen.mean()),
        "std": float(seen.std()),
        "min": float(seen.min()),
        "max": float(seen.max()),
        "quantiles": {
            str(q): float(v) for q, v in zip(_QUANTILES, np.quantile(seen, _QUANTILES), strict=True)
        },
        "histogram": {"edges": edges.tolist(), "shares": (counts / seen.size).tolist()},
    }


def _categorical(series: pd.Series) -> dict[str, Any]:
    shares = series.dropna().astype(str).value_counts(normalize=True)
    top = shares.head(_TOP)
    return {
        "kind": "categorical",
        "count": int(series.notna().sum()),
        "distinct": int(len(shares)),
        "shares": {str(k): round(float(v), 12) for k, v in top.items()},
        "other_share": float(max(0.0, 1.0 - top.sum())),
    }


def reference_profile(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Per-column summary of ``frame`` (the training rows)."""
    features: dict[str, Any] = {}
    for name in columns:
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            summary = _numeric(series.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            summary = _categorical(series)
        summary["null_share"] = float(series.isna().mean()) if len(series) else 0.0
        features[str(name)] = summary
    return {"format": "loopml.reference_profile/1", "rows": int(len(frame)), "features": features}


def score_profile(scores: np.ndarray) -> dict[str, Any]:
    """Summary of model scores (one column, or one per class)."""
    matrix = scores.reshape(len(scores), -1)
    return {f"score_{j}": _numeric(matrix[:, j].astype(np.float64)) for j in range(matrix.shape[1])}
