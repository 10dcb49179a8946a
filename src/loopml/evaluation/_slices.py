"""Metrics per slice, worst-slice discovery with a correction for searching, Simpson's paradox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.evaluation._metrics import Metric

__all__ = [
    "SliceFinding",
    "bucketize",
    "find_worst_slices",
    "row_loss",
    "simpsons_paradox",
    "slice_codes",
    "slice_metrics",
]


def bucketize(column: pd.Series, *, buckets: int = 4) -> pd.Series:
    """Categorical labels for a column: its values, or quantile buckets for numbers.

    >>> bucketize(pd.Series([1.0, 2.0, 3.0, 4.0]), buckets=2).tolist()
    ['[1, 2.5]', '[1, 2.5]', '(2.5, 4]', '(2.5, 4]']
    """
    codes, labels = slice_codes(column, buckets=buckets)
    return pd.Series(np.asarray(labels, dtype=object)[codes], index=column.index)


def slice_codes(column: pd.Series, *, buckets: int = 4) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer slice codes of a column and the label of each code (no strings per row)."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    values = column.to_numpy(dtype=float) if numeric else None
    if values is not None and column.nunique() > buckets:
        edges = np.unique(np.nanquantile(values, np.linspace(0, 1, buckets + 1)))
        labels = [
            f"{'[' if i == 0 else '('}{edges[i]:.4g}, {edges[i + 1]:.4g}]"
            for i in range(len(edges) - 1)
        ]
        codes = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(labels) - 1)
        missing = np.isnan(values)
    else:
        raw, uniques = pd.factorize(column, sort=True)
        codes, labels = raw.astype(np.int64), [str(u) for u in uniques]
        missing = raw < 0
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = [*labels, "(missing)"]
    return codes.astype(np.int64), labels


def row_loss(
    y: npt.NDArray[np.float64], score: npt.NDArray[np.float64], task: str, *, excess: bool = True
) -> npt.NDArray[np.float64]:
    """A per-row loss whose mean tells slices apart.

    For classification it is the log loss minus the log loss the model itself expects
    at that score (the entropy of ``p``): zero on average in any slice where the model is as
    good as its confidence says, positive where it is worse. Without this, slices of
    naturally uncertain rows (scores near 0.5) would always look "worst" even for a perfect
    model. ``excess=False`` gives the raw log loss. Regression uses the squared error.
    """
    if task == "regression":
        return np.asarray((score - y) ** 2, dtype=np.float64)
    p = np.clip(score, 1e-15, 1 - 1e-15)
    loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if excess:
        loss = loss + (p * np.log(p) + (1 - p) * np.log1p(-p))
    return np.asarray(loss, dtype=np.float64)


def slice_metrics(
    frame: pd.DataFrame,
    y: npt.NDArray[np.float64],
    score: npt.NDArray[np.float64],
    *,
    columns: list[str],
    metrics: dict[str, Metric],
    min_size: int = 50,
) -> pd.DataFrame:
    """One row per (column, value) slice with its size and every metric.

    Slices smaller than ``min_size`` are listed with ``too_small=True`` and no metrics.
    A crossing is written ``"a*b"`` and slices on both columns at once.
    """
    rows: list[dict[str, Any]] = []
    for spec in columns:
        codes, labels = _spec_codes(frame, spec)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        for code, value in enumerate(labels):
            index = order[bounds[code] : bounds[code + 1]]
            if len(index) == 0:
                continue
            row: dict[str, Any] = {"slice": spec, "value": value, "size": len(index)}
            row["too_small"] = len(index) < min_size
            if not row["too_small"]:
                for name, metric in metrics.items():
                    row[name] = metric(y[index], score[index])
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SliceFinding:
    """A slice whose loss is significantly worse than the rest of the data."""

    slice: str
    value: str
    size: int
    loss: float
    rest_loss: float
    p_value: float
    adjusted_p_value: float
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.slice,
            "value": self.value,
            "size": self.size,
            "loss": self.loss,
            "rest_loss": self.rest_loss,
            "p_value": self.p_value,
            "adjusted_p_value": self.adjusted_p_value,
            "metrics": self.metrics,
        }


def find_worst_slices(
    frame: pd.DataFrame,
    y: npt.NDArray[np.float64],
    score: npt.NDArray[np.float64],
    *,
    task: str,
    columns: list[str] | None = None,
    pairs: bool = True,
    min_size: int = 50,
    alpha: float = 0.05,
    min_effect: float = 0.02,
    top: int = 10,
) -> list[SliceFinding]:
    """Search single columns and pairs for slices whose mean loss is worse than the rest.

    Each candidate slice is compared with the rows outside it by Welch's t-test on the
    per-row loss; the p-values of every slice searched are adjusted together (Holm), so
    searching many slices does not manufacture findings. A finding must also be worse by
    ``min_effect`` in absolute loss (nats for classification, squared units for
    regression), so huge samples do not flag trivia.
    """
    from scipy import stats

    columns = list(frame.columns) if columns is None else columns
    columns = list(dict.fromkeys(part for spec in columns for part in spec.split("*")))
    loss = row_loss(y, score, task)
    coded = {c: slice_codes(frame[c]) for c in columns}
    specs = [c for c in columns]
    if pairs:
        specs += [f"{a}*{b}" for i, a in enumerate(columns) for b in columns[i + 1 :]]
    total, total_sq, n = loss.sum(), (loss**2).sum(), len(loss)
    candidates: list[tuple[str, str, int, float, float, float]] = []
    for name in specs:
        codes, labels = _spec_codes(frame, name, coded)
        sizes = np.bincount(codes, minlength=len(labels))
        sums = np.bincount(codes, weights=loss, minlength=len(labels))
        squares = np.bincount(codes, weights=loss**2, minlength=len(labels))
        for code in np.nonzero((sizes >= min_size) & (n - sizes >= min_size))[0]:
            a_n, a_mean = sizes[code], sums[code] / sizes[code]
            b_n, b_mean = n - a_n, (total - sums[code]) / (n - sizes[code])
            a_var = max(squares[code] / a_n - a_mean**2, 0.0) * a_n / (a_n - 1)
            b_var = max((total_sq - squares[code]) / b_n - b_mean**2, 0.0) * b_n / (b_n - 1)
            se = np.sqrt(a_var / a_n + b_var / b_n)
            t = (a_mean - b_mean) / se if se > 0 else 0.0
            df = (a_var / a_n + b_var / b_n) ** 2 / (
                (a_var / a_n) ** 2 / (a_n - 1) + (b_var / b_n) ** 2 / (b_n - 1) + 1e-300
            )
            p = float(stats.t.sf(t, df)) if se > 0 else 1.0
            candidates.append((name, labels[int(code)], int(a_n), a_mean, b_mean, p))
    if not candidates:
        return []
    p_values = np.array([c[5] for c in candidates])
    adjusted = _holm(p_values)
    findings = [
        SliceFinding(name, value, size, loss_in, loss_out, p, float(adj))
        for (name, value, size, loss_in, loss_out, p), adj in zip(candidates, adjusted, strict=True)
        if adj < alpha and loss_in - loss_out > min_effect
    ]
    findings.sort(key=lambda f: (f.adjusted_p_value, -f.loss))
    return findings[:top]


def _spec_codes(
    frame: pd.DataFrame,
    spec: str,
    cache: dict[str, tuple[npt.NDArray[np.int64], list[str]]] | None = None,
) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Codes of a slice spec: one column, or a crossing ``"a*b"`` of columns."""
    parts = spec.split("*")
    cache = cache if cache is not None else {}
    codes, labels = cache.get(parts[0]) or slice_codes(frame[parts[0]])
    for part in parts[1:]:
        more, more_labels = cache.get(part) or slice_codes(frame[part])
        codes = codes * len(more_labels) + more
        labels = [f"{a} & {b}" for a in labels for b in more_labels]
    return codes, labels


def _holm(p_values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(p_values)
    m = len(p_values)
    adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p_values[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


def simpsons_paradox(
    overall_difference: float, slice_differences: list[float], metric: str
) -> bool:
    """True when the candidate-minus-champion difference reverses sign within every slice.

    >>> simpsons_paradox(0.02, [-0.01, -0.03], "roc_auc")
    True
    >>> simpsons_paradox(0.02, [-0.01, 0.03], "roc_auc")
    False
    """
    del metric  # the sign test does not depend on the direction of "better"
    finite = [d for d in slice_differences if np.isfinite(d)]
    if len(finite) < 2 or overall_difference == 0:
        return False
    return all(np.sign(d) == -np.sign(overall_difference) for d in finite)
