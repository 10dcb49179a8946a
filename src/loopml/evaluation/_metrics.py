"""Metrics by task, and bootstrap confidence intervals on every headline metric.

Classification metrics take scores (the probability of the positive class for binary tasks,
an ``n x k`` matrix for multiclass); regression metrics take predictions; ranking metrics
take a relevance and a score per row with a query id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.core import ConfigError

__all__ = [
    "HIGHER_IS_BETTER",
    "MetricInterval",
    "bootstrap_interval",
    "classification_metrics",
    "compute_metrics",
    "expected_calibration_error",
    "headline_intervals",
    "headline_metrics",
    "metric_function",
    "paired_difference_interval",
    "ranking_metrics",
    "regression_metrics",
    "threshold_for_cost",
    "threshold_for_precision",
]

FloatArray = npt.NDArray[np.float64]
Metric = Callable[[FloatArray, FloatArray], float]

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "average_precision": True,
    "log_loss": False,
    "brier": False,
    "f1": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "expected_calibration_error": False,
    "mae": False,
    "rmse": False,
    "mape": False,
    "r2": True,
    "ndcg": True,
    "map": True,
    "mrr": True,
}
"""Which direction is better for each metric name loopml reports."""

_EPS = 1e-15


def roc_auc(y: FloatArray, score: FloatArray) -> float:
    """Area under the ROC curve, ties counted as half (Mann-Whitney U).

    >>> round(roc_auc(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.4, 0.35, 0.8])), 3)
    0.75
    """
    from scipy.stats import rankdata

    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: FloatArray, score: FloatArray) -> float:
    """Area under the precision-recall curve (step-wise, as scikit-learn computes it)."""
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    y_sorted, s_sorted = y[order], score[order]
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], len(y) - 1]
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y: FloatArray, score: FloatArray) -> float:
    """Mean negative log-likelihood of the labels under the predicted probabilities."""
    p = np.clip(score, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: FloatArray, score: FloatArray) -> float:
    """Mean squared difference between probability and label."""
    return float(np.mean((score - y) ** 2))


def expected_calibration_error(y: FloatArray, score: FloatArray, *, bins: int = 15) -> float:
    """Expected calibration error over equal-width probability bins.

    The weighted mean, over bins, of ``|mean label - mean score|``.

    >>> y, s = np.array([0, 1, 1, 1.0]), np.array([0.2, 0.2, 0.9, 0.9])
    >>> round(expected_calibration_error(y, s, bins=10), 6)  # (|1 - 0.4| + |2 - 1.8|) / 4
    0.2
    """
    index = np.minimum((score * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    label_sum = np.bincount(index, weights=y, minlength=bins)
    score_sum = np.bincount(index, weights=score, minlength=bins)
    used = counts > 0
    gap = np.abs(label_sum[used] - score_sum[used])
    return float(gap.sum() / len(y))


def _confusion(y: FloatArray, score: FloatArray, threshold: float) -> tuple[float, float, float]:
    predicted = score >= threshold
    tp = float(np.sum(predicted & (y == 1)))
    fp = float(np.sum(predicted & (y == 0)))
    fn = float(np.sum(~predicted & (y == 1)))
    return tp, fp, fn


def classification_metrics(
    y: npt.ArrayLike, score: npt.ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """Binary classification metrics from labels (0/1) and positive-class probabilities.

    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9])
    >>> m["roc_auc"], m["precision"], m["recall"]
    (1.0, 0.6666666666666666, 1.0)
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    tp, fp, fn = _confusion(y_arr, s_arr, threshold)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": roc_auc(y_arr, s_arr),
        "average_precision": average_precision(y_arr, s_arr),
        "log_loss": log_loss(y_arr, s_arr),
        "brier": brier(y_arr, s_arr),
        "expected_calibration_error": expected_calibration_error(y_arr, s_arr),
        "accuracy": float(np.mean((s_arr >= threshold) == (y_arr == 1))),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def multiclass_metrics(y: npt.ArrayLike, proba: npt.ArrayLike) -> dict[str, float]:
    """Accuracy, log loss, Brier, macro one-vs-rest ROC AUC and macro F1 for ``n x k`` scores."""
    y_arr = np.asarray(y, dtype=np.int64)
    p = np.asarray(proba, dtype=np.float64)
    k = p.shape[1]
    onehot = np.eye(k)[y_arr]
    predicted = p.argmax(axis=1)
    aucs = [roc_auc(onehot[:, c], p[:, c]) for c in range(k)]
    f1s = []
    for c in range(k):
        tp = np.sum((predicted == c) & (y_arr == c))
        fp = np.sum((predicted == c) & (y_arr != c))
        fn = np.sum((predicted != c) & (y_arr == c))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {
        "accuracy": float(np.mean(predicted == y_arr)),
        "log_loss": float(-np.mean(np.log(np.clip(p[np.arange(len(y_arr)), y_arr], _EPS, 1)))),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "roc_auc": float(np.nanmean(aucs)),
        "f1": float(np.mean(f1s)),
    }


def regression_metrics(y: npt.ArrayLike, prediction: npt.ArrayLike) -> dict[str, float]:
    """MAE, RMSE, R2, and MAPE where it is defined (no zero targets).

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])["mae"]
    0.3333333333333333
    """
    y_arr = np.asarray(y, dtype=np.float64)
    p_arr = np.asarray(prediction, dtype=np.float64)
    error = p_arr - y_arr
    total = np.sum((y_arr - y_arr.mean()) ** 2)
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": float(1 - np.sum(error**2) / total) if total > 0 else float("nan"),
    }
    if np.all(y_arr != 0):
        metrics["mape"] = float(np.mean(np.abs(error / y_arr)))
    return metrics


def ranking_metrics(
    query: npt.ArrayLike, relevance: npt.ArrayLike, score: npt.ArrayLike, *, k: int = 10
) -> dict[str, float]:
    """NDCG@k, MAP and MRR averaged over queries (relevance > 0 counts as relevant).

    >>> m = ranking_metrics([1, 1, 1], [0, 1, 0], [0.9, 0.5, 0.1])
    >>> m["mrr"], round(m["ndcg"], 4)
    (0.5, 0.6309)
    """
    q = np.asarray(query)
    rel = np.asarray(relevance, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    order = np.lexsort((-s, q))
    q, rel = q[order], rel[order]
    starts = np.r_[0, np.nonzero(q[1:] != q[:-1])[0] + 1, len(q)]
    ndcgs, aps, rrs = [], [], []
    for begin, end in zip(starts[:-1], starts[1:], strict=True):
        r = rel[begin:end]
        discounts = 1 / np.log2(np.arange(2, len(r) + 2))
        ideal = np.sort(r)[::-1]
        idcg = np.sum((2 ** ideal[:k] - 1) * discounts[:k])
        ndcgs.append(np.sum((2 ** r[:k] - 1) * discounts[:k]) / idcg if idcg > 0 else 0.0)
        hits = r > 0
        if hits.any():
            precision_at = np.cumsum(hits) / np.arange(1, len(r) + 1)
            aps.append(float(np.sum(precision_at[hits]) / hits.sum()))
            rrs.append(1.0 / (int(np.argmax(hits)) + 1))
        else:
            aps.append(0.0)
            rrs.append(0.0)
    return {"ndcg": float(np.mean(ndcgs)), "map": float(np.mean(aps)), "mrr": float(np.mean(rrs))}


_BINARY: dict[str, Metric] = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "log_loss": log_loss,
    "brier": brier,
    "expected_calibration_error": expected_calibration_error,
    "accuracy": lambda y, s: float(np.mean((s >= 0.5) == (y == 1))),
}
_REGRESSION: dict[str, Metric] = {
    "mae": lambda y, p: float(np.mean(np.abs(p - y))),
    "rmse": lambda y, p: float(np.sqrt(np.mean((p - y) ** 2))),
    "r2": lambda y, p: regression_metrics(y, p)["r2"],
}


def metric_function(name: str, task: str) -> Metric:
    """The function computing metric ``name`` for ``task`` (used by bootstrap and slices)."""
    table = _REGRESSION if task == "regression" else _BINARY
    if name not in table:
        raise ConfigError(
            f"The 'metric' parameter must be one of {sorted(table)} for task {task!r}. "
            f"Got {name!r} instead."
        )
    return table[name]


def compute_metrics(
    y: npt.ArrayLike, score: npt.ArrayLike, *, task: str, threshold: float = 0.5
) -> dict[str, float]:
    """Every metric loopml reports for ``task``."""
    if task == "binary_classification":
        return classification_metrics(y, score, threshold=threshold)
    if task == "multiclass_classification":
        return multiclass_metrics(y, score)
    if task == "regression":
        return regression_metrics(y, score)
    raise ConfigError(
        "The 'task' parameter must be one of 'binary_classification', "
        f"'multiclass_classification' or 'regression'. Got {task!r} instead."
    )


@dataclass(frozen=True)
class MetricInterval:
    """A metric's value with a bootstrap confidence interval."""

    value: float
    low: float
    high: float
    level: float
    resamples: int
    resample_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "resamples": self.resamples,
            "resample_size": self.resample_size,
        }


def bootstrap_interval(
    metric: Metric,
    y: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    max_resample_size: int = 50_000,
    seed: int = 0,
) -> MetricInterval:
    """Basic bootstrap interval of ``metric(y, score)``.

    Up to ``max_resample_size`` rows this is the ordinary bootstrap. Above it, each
    resample draws ``m = max_resample_size`` rows and the spread is scaled by
    ``sqrt(m / n)`` (the m-out-of-n bootstrap, valid for smooth metrics), so a million
    rows and a thousand resamples take seconds instead of minutes.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500).astype(float)
    >>> s = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    >>> ci = bootstrap_interval(roc_auc, y, s, resamples=200)
    >>> ci.low < ci.value < ci.high
    True
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    return _bootstrap(
        lambda index: metric(y_arr[index], s_arr[index]),
        len(y_arr),
        resamples=resamples,
        level=level,
        max_resample_size=max_resample_size,
        seed=seed,
    )


def paired_difference_interval(
    metric: Metric,
    y: npt.ArrayLike,
    score_a: npt.ArrayLike,
    score_b: npt.ArrayLike,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    max_resample_size: int = 50_000,
    seed: int = 0,
) -> MetricInterval:
    """Interval of ``metric(y, a) - metric(y, b)`` from the same resampled rows (paired).

    >>> y = np.array([0, 1] * 100, dtype=float)
    >>> good, bad = y * 0.8 + 0.1, np.full(200, 0.5)
    >>> paired_difference_interval(brier, y, bad, good, resamples=100).low > 0
    True
    """
    y_arr = np.asarray(y, dtype=np.float64)
    a_arr = np.asarray(score_a, dtype=np.float64)
    b_arr = np.asarray(score_b, dtype=np.float64)
    return _bootstrap(
        lambda index: metric(y_arr[index], a_arr[index]) - metric(y_arr[index], b_arr[index]),
        len(y_arr),
        resamples=resamples,
        level=level,
        max_resample_size=max_resample_size,
        seed=seed,
    )


def _bootstrap(
    statistic: Callable[[npt.NDArray[np.int64] | slice], float],
    n: int,
    *,
    resamples: int,
    level: float,
    max_resample_size: int,
    seed: int,
) -> MetricInterval:
    intervals = _bootstrap_many(
        lambda index: np.array([statistic(index)]),
        n,
        resamples=resamples,
        level=level,
        max_resample_size=max_resample_size,
        seed=seed,
    )
    return intervals[0]


def _bootstrap_many(
    statistic: Callable[[npt.NDArray[np.int64] | slice], FloatArray],
    n: int,
    *,
    resamples: int,
    level: float,
    max_resample_size: int,
    seed: int,
) -> list[MetricInterval]:
    """Basic (m-out-of-n above ``max_resample_size``) intervals of a vector statistic."""
    values = np.asarray(statistic(slice(None)), dtype=np.float64)
    if resamples == 0 or n < 2:
        return [MetricInterval(float(v), float("nan"), float("nan"), level, 0, 0) for v in values]
    m = min(n, max_resample_size)
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(rng.integers(0, n, m)) for _ in range(resamples)])
    scale = np.sqrt(m / n)
    alpha = (1 - level) / 2
    out = []
    for k, value in enumerate(values):
        column = stats[:, k][np.isfinite(stats[:, k])]
        if len(column) == 0:
            out.append(
                MetricInterval(float(value), float("nan"), float("nan"), level, resamples, m)
            )
            continue
        q_low, q_high = np.quantile(column, [alpha, 1 - alpha])
        out.append(
            MetricInterval(
                float(value),
                float(value - scale * (q_high - value)),
                float(value - scale * (q_low - value)),
                level,
                resamples,
                m,
            )
        )
    return out


def headline_metrics(y: FloatArray, score: FloatArray, task: str) -> FloatArray:
    """The headline metrics of ``task`` at once (one sort for the binary ones).

    Binary: ROC AUC, average precision, log loss, Brier; regression: MAE, RMSE, R2.

    >>> y, s = np.array([0, 0, 1, 1.0]), np.array([0.1, 0.4, 0.35, 0.8])
    >>> headline_metrics(y, s, "binary_classification")[:2].round(4).tolist()
    [0.75, 0.8333]
    """
    if task == "regression":
        error = score - y
        total = np.sum((y - y.mean()) ** 2)
        r2 = 1 - np.sum(error**2) / total if total > 0 else np.nan
        return np.array([np.mean(np.abs(error)), np.sqrt(np.mean(error**2)), r2])
    order = np.argsort(score, kind="stable")
    ys, ss = y[order], score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]
    sizes = np.diff(np.r_[starts, len(ss)])
    pos = np.add.reduceat(ys, starts)
    neg = sizes - pos
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        auc = ap = np.nan
    else:
        below = np.cumsum(neg) - neg
        auc = float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))
        tps, fps = np.cumsum(pos[::-1]), np.cumsum(neg[::-1])
        ap = float(np.sum(pos[::-1] / n_pos * tps / (tps + fps)))
    p = np.clip(score, _EPS, 1 - _EPS)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    return np.array([auc, ap, loss, np.mean((score - y) ** 2)])


HEADLINE_NAMES = {
    "binary_classification": ["roc_auc", "average_precision", "log_loss", "brier"],
    "regression": ["mae", "rmse", "r2"],
}


def headline_intervals(
    y: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    task: str,
    reference: npt.ArrayLike | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    max_resample_size: int = 50_000,
    seed: int = 0,
) -> dict[str, MetricInterval]:
    """Intervals on every headline metric, or on its difference from ``reference`` scores.

    Each resample computes all the metrics from the same rows, so the paired differences
    keep their correlation and one sort serves four metrics.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    a = np.asarray(score, dtype=np.float64)
    b = None if reference is None else np.asarray(reference, dtype=np.float64)

    def statistic(index: npt.NDArray[np.int64] | slice) -> FloatArray:
        value = headline_metrics(y_arr[index], a[index], task)
        if b is not None:
            value = value - headline_metrics(y_arr[index], b[index], task)
        return value

    intervals = _bootstrap_many(
        statistic,
        len(y_arr),
        resamples=resamples,
        level=level,
        max_resample_size=max_resample_size,
        seed=seed,
    )
    return dict(zip(HEADLINE_NAMES[task], intervals, strict=True))


def threshold_for_precision(y: npt.ArrayLike, score: npt.ArrayLike, target: float) -> float:
    """The lowest threshold whose precision reaches ``target`` (highest recall at that precision).

    >>> threshold_for_precision([0, 1, 0, 1, 1], [0.1, 0.4, 0.5, 0.8, 0.9], 1.0)
    0.8
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s_arr, kind="mergesort")
    tps = np.cumsum(y_arr[order])
    precision = tps / np.arange(1, len(y_arr) + 1)
    reaching = np.nonzero(precision >= target)[0]
    if len(reaching) == 0:
        return 1.0 + 1e-12
    return float(s_arr[order][reaching[-1]])


def threshold_for_cost(
    y: npt.ArrayLike, score: npt.ArrayLike, *, false_positive: float, false_negative: float
) -> float:
    """The threshold that minimises ``false_positive * FP + false_negative * FN``.

    >>> threshold_for_cost([0, 0, 1, 1], [0.2, 0.6, 0.7, 0.9], false_positive=1, false_negative=1)
    0.7
    """
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(score, dtype=np.float64)
    candidates = np.unique(s_arr)
    order = np.argsort(-s_arr, kind="mergesort")
    y_sorted, s_sorted = y_arr[order], s_arr[order]
    tps = np.cumsum(y_sorted)
    fps = np.arange(1, len(y_arr) + 1) - tps
    last = np.searchsorted(-s_sorted, -candidates, side="right") - 1
    cost = false_positive * fps[last] + false_negative * (y_arr.sum() - tps[last])
    return float(candidates[int(np.argmin(cost))])
