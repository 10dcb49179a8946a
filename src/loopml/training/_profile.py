"""The distribution of a model's scores on its validation rows, stored with the model.

(The profile of the input features is ``loopml.data.profile``'s.) Monitoring compares live
scores against it.

>>> import numpy as np
>>> score_profile(np.linspace(0, 1, 101))["score_0"]["quantiles"]["0.5"]
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["score_profile"]

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


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


def score_profile(scores: np.ndarray) -> dict[str, Any]:
    """Summary of model scores (one column, or one per class)."""
    matrix = scores.reshape(len(scores), -1)
    return {f"score_{j}": _numeric(matrix[:, j].astype(np.float64)) for j in range(matrix.shape[1])}
