"""Multiplicity corrections for a family of tests (one test per column)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from loopml.core import ConfigError

__all__ = ["Correction", "adjust_p_values"]

Correction = Literal["holm", "bh", "none"]


def adjust_p_values(p_values: Any, method: Correction = "holm") -> np.ndarray:
    """Adjusted p-values: Holm (family-wise error) or Benjamini-Hochberg (false discovery rate).

    Compare the adjusted p-values with alpha directly. NaN p-values (a test that could
    not run) stay NaN and do not count in the family.

    >>> adjust_p_values([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_p_values([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if method not in ("holm", "bh", "none"):
        raise ConfigError(
            f"The 'correction' parameter must be one of 'holm', 'bh', 'none'. Got {method!r} "
            "instead."
        )
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    values = p[valid]
    m = values.size
    if m == 0 or method == "none":
        out[valid] = values
        return out
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        adjusted = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    out[valid] = result
    return out
