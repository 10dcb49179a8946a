"""Degenerate feedback loops: is exposure concentrating on fewer items over time?

A recommender trained on its own clicks shows popular items more, which makes them more
popular. These metrics over windows of recommendation-like outputs make that visible:
the Gini coefficient of exposure, aggregate diversity (share of the catalog shown at all)
and the long tail's share of exposure and coverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, SchemaError
from loopml.monitoring._windows import Window, split_by_windows

__all__ = [
    "FeedbackLoopMetrics",
    "aggregate_diversity",
    "exposure_gini",
    "feedback_loop_metrics",
    "feedback_loop_over_windows",
    "long_tail",
]


def exposure_gini(items: Any, *, catalog: Any = None) -> float:
    """Gini coefficient of how often each item was shown (0 = even, 1 = one item only).

    Items of ``catalog`` never shown count as zero exposure.

    >>> exposure_gini(["a", "b", "c", "d"])
    0.0
    >>> round(exposure_gini(["a"] * 99, catalog=["a", "b", "c", "d"]), 2)
    0.75
    """
    counts = pd.Series(items).value_counts()
    if catalog is not None:
        counts = counts.reindex(
            pd.Index(pd.unique(np.asarray(catalog, dtype=object))).union(counts.index), fill_value=0
        )
    x = np.sort(counts.to_numpy(np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return float("nan")
    index = np.arange(1, n + 1)
    return float(np.sum((2 * index - n - 1) * x) / (n * x.sum()))


def aggregate_diversity(items: Any, catalog_size: int) -> float:
    """Share of the catalog recommended at least once.

    >>> aggregate_diversity(["a", "b", "a"], catalog_size=4)
    0.5
    """
    if catalog_size < 1:
        raise ConfigError(
            f"The 'catalog_size' parameter must be >= 1. Got {catalog_size!r} instead."
        )
    return float(pd.Series(items).nunique() / catalog_size)


def long_tail(popularity: Any, *, head_mass: float = 0.8) -> set[Any]:
    """The long tail: items outside the most popular ones that make ``head_mass`` of interactions.

    ``popularity`` is a sequence of interactions (item ids) or a mapping item -> count.

    >>> sorted(long_tail({"a": 80, "b": 10, "c": 6, "d": 4}))
    ['b', 'c', 'd']
    """
    if not 0 < head_mass < 1:
        raise ConfigError(
            f"The 'head_mass' parameter must be between 0 and 1. Got {head_mass!r} instead."
        )
    counts = (
        pd.Series(popularity)
        if isinstance(popularity, dict)
        else pd.Series(popularity).value_counts()
    ).sort_values(ascending=False, kind="stable")
    values = counts.to_numpy(np.float64)
    cumulative = np.cumsum(values) / values.sum()
    head_size = int(np.searchsorted(cumulative, head_mass, side="left")) + 1
    return set(counts.index[head_size:])


@dataclass(frozen=True)
class FeedbackLoopMetrics:
    """Exposure concentration of one window."""

    n: int
    gini: float
    aggregate_diversity: float
    tail_exposure_share: float
    tail_coverage: float


def feedback_loop_metrics(
    items: Any, *, catalog: Any, tail: set[Any] | None = None
) -> FeedbackLoopMetrics:
    """Gini, aggregate diversity and long-tail exposure/coverage of one set of recommendations.

    >>> m = feedback_loop_metrics(["a", "a", "b"], catalog=["a", "b", "c"], tail={"b", "c"})
    >>> m.tail_exposure_share, m.tail_coverage
    (0.3333333333333333, 0.5)
    """
    series = pd.Series(items).dropna()
    catalog_items = pd.unique(np.asarray(catalog, dtype=object))
    shown = set(series.unique())
    tail_items = tail or set()
    return FeedbackLoopMetrics(
        n=len(series),
        gini=exposure_gini(series, catalog=catalog_items),
        aggregate_diversity=len(shown) / len(catalog_items) if len(catalog_items) else float("nan"),
        tail_exposure_share=float(series.isin(tail_items).mean()) if len(series) else float("nan"),
        tail_coverage=len(shown & tail_items) / len(tail_items) if tail_items else float("nan"),
    )


def feedback_loop_over_windows(
    frame: pd.DataFrame,
    windows: list[Window],
    *,
    item_column: str,
    catalog: Any = None,
    popularity: Any = None,
    head_mass: float = 0.8,
) -> pd.DataFrame:
    """The feedback-loop metrics of each window; the tail comes from ``popularity``
    (reference interactions) or, if not given, from the first window."""
    if item_column not in frame.columns:
        raise SchemaError(
            f"no '{item_column}' column for feedback-loop metrics",
            hint=f"columns: {list(frame.columns)}",
        )
    parts = list(split_by_windows(frame, windows))
    items_all = frame[item_column].dropna()
    catalog_items = items_all.unique() if catalog is None else catalog
    base = (
        popularity
        if popularity is not None
        else (parts[0][1][item_column].dropna() if parts else [])
    )
    tail = long_tail(base, head_mass=head_mass) if len(base) else set()
    rows = []
    for window, part in parts:
        metrics = feedback_loop_metrics(part[item_column], catalog=catalog_items, tail=tail)
        rows.append({"window": window.index, "start": window.start, **metrics.__dict__})
    return pd.DataFrame(rows)
