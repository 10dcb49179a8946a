"""The reference a window is compared with, as summary statistics rather than rows.

A reference column holds what ``loopml.data.Profile`` persists: for a numeric column the
count, nulls, min, max, mean, standard deviation, 101 quantiles (0 %, 1 %, ..., 100 %) and a
histogram; for a categorical column the count of each category (``"__other__"`` for the
rare ones). Drift statistics are computed from these fields, so a 10M-row reference is
never read again. ``reference_from_frame`` builds the same summary from rows (a previous
window, a fixed period), and ``reference_from_profile`` reads a persisted profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import DataError, SchemaError

__all__ = [
    "OTHER",
    "CategoricalReference",
    "NumericReference",
    "reference_from_frame",
    "reference_from_profile",
]

OTHER = "__other__"
"""The bucket that holds the categories a profile did not keep one by one."""

_QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class NumericReference:
    """Summary of a numeric reference column.

    >>> ref = NumericReference.from_values(np.arange(1000.0))
    >>> ref.count, round(ref.mean, 1), len(ref.quantiles), int(ref.histogram_counts.sum())
    (1000, 499.5, 101, 1000)
    """

    count: int
    nulls: int
    min: float
    max: float
    mean: float
    std: float
    quantiles: np.ndarray
    histogram_edges: np.ndarray
    histogram_counts: np.ndarray

    @classmethod
    def from_values(cls, values: Any, *, bins: int = 50) -> NumericReference:
        """Summarise an array of numbers (nulls counted, then dropped)."""
        array = np.asarray(values, dtype=np.float64)
        finite = array[~np.isnan(array)]
        if finite.size == 0:
            empty = np.array([], dtype=np.float64)
            return cls(0, int(array.size), np.nan, np.nan, np.nan, np.nan, empty, empty, empty)
        counts, edges = np.histogram(finite, bins=bins)
        return cls(
            count=int(finite.size),
            nulls=int(array.size - finite.size),
            min=float(finite.min()),
            max=float(finite.max()),
            mean=float(finite.mean()),
            std=float(finite.std()),
            quantiles=np.quantile(finite, _QUANTILE_LEVELS),
            histogram_edges=edges.astype(np.float64),
            histogram_counts=counts.astype(np.float64),
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile fields, JSON-ready."""
        return {
            "kind": "numeric",
            "count": self.count,
            "nulls": self.nulls,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "quantiles": self.quantiles.tolist(),
            "histogram": {
                "edges": self.histogram_edges.tolist(),
                "counts": self.histogram_counts.tolist(),
            },
        }


@dataclass(frozen=True)
class CategoricalReference:
    """Summary of a categorical reference column: the count of each category.

    >>> ref = CategoricalReference.from_values(["a", "b", "a", None])
    >>> ref.count, ref.nulls, ref.categories
    (3, 1, {'a': 2, 'b': 1})
    """

    count: int
    nulls: int
    categories: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Any, *, max_categories: int = 1000) -> CategoricalReference:
        """Count the categories of an array; beyond ``max_categories`` they go to ``__other__``."""
        series = pd.Series(values)
        nulls = int(series.isna().sum())
        counts = series.dropna().astype(str).value_counts()
        kept = {str(k): int(v) for k, v in counts.iloc[:max_categories].items()}
        rest = int(counts.iloc[max_categories:].sum())
        if rest:
            kept[OTHER] = kept.get(OTHER, 0) + rest
        return cls(count=int(counts.sum()), nulls=nulls, categories=kept)

    def to_dict(self) -> dict[str, Any]:
        """The profile fields, JSON-ready."""
        return {
            "kind": "categorical",
            "count": self.count,
            "nulls": self.nulls,
            "categories": dict(self.categories),
        }


ColumnReference = NumericReference | CategoricalReference


def is_numeric_series(series: pd.Series) -> bool:
    """Numbers (not booleans) are numeric; everything else is treated as a category."""
    return bool(
        pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series)
    )


def reference_from_frame(
    frame: pd.DataFrame, *, columns: list[str] | None = None, bins: int = 50
) -> dict[str, ColumnReference]:
    """Summarise the columns of a DataFrame into references.

    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    >>> sorted((name, type(ref).__name__) for name, ref in reference_from_frame(frame).items())
    [('c', 'CategoricalReference'), ('x', 'NumericReference')]
    """
    names = list(frame.columns) if columns is None else columns
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"reference data has no column(s) {missing}",
            hint=f"available columns: {list(frame.columns)}",
        )
    result: dict[str, ColumnReference] = {}
    for name in names:
        series = frame[name]
        if is_numeric_series(series):
            result[name] = NumericReference.from_values(
                series.to_numpy(np.float64, na_value=np.nan), bins=bins
            )
        else:
            result[name] = CategoricalReference.from_values(series)
    return result


def reference_from_profile(profile: Any) -> dict[str, ColumnReference]:
    """Read a persisted profile (``loopml.data.Profile``, its dict, or a mapping of columns).

    Accepts an object with a ``columns`` attribute or key mapping a column name to its
    statistics (attributes or dict keys named as in ``loopml.data.Profile``).

    >>> profile = {"columns": {"x": {"count": 3, "nulls": 0, "min": 0.0, "max": 2.0,
    ...     "mean": 1.0, "std": 0.8, "quantiles": [0.0, 1.0, 2.0],
    ...     "histogram": {"edges": [0.0, 1.0, 2.0], "counts": [1, 2]}}}}
    >>> reference_from_profile(profile)["x"].max
    2.0
    """
    if not isinstance(profile, Mapping):
        for method in ("to_json", "to_dict"):
            if callable(getattr(profile, method, None)):
                profile = getattr(profile, method)()
                break
    columns = profile.get("columns", profile) if isinstance(profile, Mapping) else None
    if not isinstance(columns, Mapping):
        raise DataError(
            "the reference profile has no 'columns' mapping",
            hint="pass a loopml.data.Profile, its to_json(), or {column: statistics}",
        )
    return {
        str(name): _column_from_profile(str(name), stats)
        for name, stats in columns.items()
        if _get(stats, "kind") != "timestamp"
    }


def _get(stats: Any, key: str, default: Any = None) -> Any:
    if isinstance(stats, Mapping):
        return stats.get(key, default)
    return getattr(stats, key, default)


def _column_from_profile(name: str, stats: Any) -> ColumnReference:
    categories = _get(stats, "categories")
    if categories is not None and _get(stats, "quantiles") is None:
        return CategoricalReference(
            count=int(_get(stats, "count", sum(categories.values()))),
            nulls=int(_get(stats, "nulls", 0) or 0),
            categories={str(k): int(v) for k, v in categories.items()},
        )
    quantiles = _get(stats, "quantiles")
    histogram = _get(stats, "histogram") or {}
    if quantiles is None and not histogram:
        raise DataError(
            f"profile column '{name}' has neither 'quantiles' nor 'histogram' nor 'categories'",
            hint="re-profile the reference with loopml.data",
        )
    edges = np.asarray(_get(histogram, "edges", []) or [], dtype=np.float64)
    counts = np.asarray(_get(histogram, "counts", []) or [], dtype=np.float64)
    if edges.size and edges.size != counts.size + 1:
        raise DataError(
            f"profile column '{name}': the histogram has {edges.size} edges for "
            f"{counts.size} counts; it needs one edge more than counts"
        )
    return NumericReference(
        count=int(_get(stats, "count", counts.sum())),
        nulls=int(_get(stats, "nulls", 0) or 0),
        min=float(_get(stats, "min", np.nan)),
        max=float(_get(stats, "max", np.nan)),
        mean=float(_get(stats, "mean", np.nan)),
        std=float(_get(stats, "std", np.nan)),
        quantiles=np.asarray(quantiles if quantiles is not None else [], dtype=np.float64),
        histogram_edges=edges,
        histogram_counts=counts,
    )
